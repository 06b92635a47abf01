"""Face chips: each face cropped from the upright original, eyes level, resampled once per size.

The chip of a face is the square around its box grown by ``margin`` on every side
(FairFace pads dlib's box by 25 %), centred on the box and rotated about its centre so
the eyes are level when they are known. It is written twice from the original pixels:
at ``embed_size`` (what CLIP sees, 224) and at ``composite_size`` (what composites
average, 512). Landmarks are mapped into the composite chip's coordinates.

Large downscales are anti-aliased: the source is first reduced by an integer box filter
(``Image.reduce``) to at most twice the chip's resolution, then one bicubic affine
resample makes the chip (Pillow's for the embedding chip, OpenCV's for the larger composite chip:
:func:`extract_composite_chip`). Each image is decoded once for all its faces; a JPEG whose chip
squares all span at least twice the chip's pixels is decoded at a power-of-two scale by the
JPEG decoder (draft) instead of whole, never below the chip's resolution: that stands in for
the box reduction (such chips differ slightly from a whole decode; docs/performance.md). Images are chipped in
threads over the cores. Chip files are a cache, rebuilt from the originals: they are written
atomically but not fsynced (the manifest that lists them is).
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from PIL import Image

from facestats_core.faces.detection import eye_centres
from facestats_core.faces.quality import QUALITY_SCHEMA, QualityConfig, face_quality
from facestats_core.images.decode import DEFAULT_MAX_PIXELS, ImageReadError, load_rgb
from facestats_core.images.preprocess import laplacian_variance
from facestats_core.io.atomic import atomic_write_bytes


@dataclass(frozen=True)
class ChipConfig:
    """Chip geometry and encoding; :attr:`version` names the cache folder."""

    margin: float = 0.25
    embed_size: int = 224
    composite_size: int = 512
    jpeg_quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin <= 2.0:
            raise ValueError(f"margin must be in [0, 2], got {self.margin}")
        for name in ("embed_size", "composite_size"):
            if not 32 <= getattr(self, name) <= 2048:
                raise ValueError(f"{name} must be in [32, 2048], got {getattr(self, name)}")

    @property
    def version(self) -> str:
        return f"chip-m{round(self.margin * 100):03d}-e{self.embed_size}-c{self.composite_size}-q{self.jpeg_quality}-v2"


def chip_geometry(
    box: tuple[float, float, float, float], eyes: tuple[tuple[float, float], tuple[float, float]] | None,
    margin: float, whole_image: bool = False,
) -> tuple[float, float, float, float]:
    """``(cx, cy, side, angle)`` of a face's chip in source pixels; ``angle`` (radians) is the
    tilt of the line from the face's first to its second eye (:func:`eye_centres` order; up to
    ±π for a face upside down; 0 without eyes). A whole-image face keeps its box as is (no margin)."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    side = max(x1 - x0, y1 - y0) * (1.0 if whole_image else 1.0 + 2.0 * margin)
    angle = 0.0
    if eyes is not None:  # in the face's order: a face lying sideways or upside down is turned upright
        (lx, ly), (rx, ry) = eyes
        if math.hypot(rx - lx, ry - ly) > 1e-6:
            angle = math.atan2(ry - ly, rx - lx)
    return cx, cy, side, angle


def chip_to_source(cx: float, cy: float, side: float, angle: float, size: int) -> np.ndarray:
    """3×3 matrix mapping chip pixel-index coordinates to source pixel-index coordinates."""
    scale = side / size
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    centre = (size - 1) / 2.0
    return np.array([
        [cos, -sin, cx - cos * centre + sin * centre],
        [sin, cos, cy - sin * centre - cos * centre],
        [0.0, 0.0, 1.0],
    ])


def reduction_for(side: float, size: int) -> int:
    """The integer reduction applied to the source before a ``side``-pixel square becomes a ``size``
    chip: the largest that keeps at least twice the chip's resolution (1 = none)."""
    return max(1, int(side / size / 2.0))


class ReducedCopies:
    """An image that is already ``reduced_by`` times smaller than the pixel coordinates used with
    it (a JPEG decoded with draft scaling), and its further box-reduced copies, each made once
    (also as arrays, for :func:`extract_composite_chip`)."""

    def __init__(self, image: Image.Image, reduced_by: int = 1) -> None:
        self.image = image if image.mode == "RGB" else image.convert("RGB")
        self.reduced_by = reduced_by
        self._copies: dict[int, Image.Image] = {1: self.image}
        self._arrays: dict[int, np.ndarray] = {}

    def array_at_most(self, factor: int) -> tuple[np.ndarray, int]:
        """:meth:`at_most` as an ``h×w×3`` uint8 array (made once per copy)."""
        copy, total = self.at_most(factor)
        if total not in self._arrays:
            self._arrays[total] = np.asarray(copy, dtype=np.uint8)
        return self._arrays[total], total

    def at_most(self, factor: int) -> tuple[Image.Image, int]:
        """The copy reduced by the largest multiple of :attr:`reduced_by` up to ``factor`` (at
        least :attr:`reduced_by`: a draft may already be reduced more than ``factor``), and that
        total reduction."""
        further = max(1, factor // self.reduced_by)
        if further not in self._copies:
            self._copies[further] = self.image.reduce(further)
        return self._copies[further], further * self.reduced_by


def extract_chip(image: Image.Image | ReducedCopies, geometry: tuple[float, float, float, float], size: int
                 ) -> Image.Image:
    """The ``size``-pixel chip of ``geometry`` from ``image`` (RGB; outside the image is black):
    one bicubic affine resample of the source box-reduced by :func:`reduction_for`."""
    copies = image if isinstance(image, ReducedCopies) else ReducedCopies(image)
    source, factor = copies.at_most(reduction_for(geometry[2], size))
    matrix = _reduced_geometry(geometry, size, factor)
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    minus_half = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    coeffs = (half @ matrix @ minus_half)[:2, :].ravel()
    return source.transform((size, size), Image.Transform.AFFINE, tuple(float(v) for v in coeffs),
                            resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


def _reduced_geometry(geometry: tuple[float, float, float, float], size: int, factor: int) -> np.ndarray:
    """:func:`chip_to_source` in the pixel-index coordinates of the source box-reduced by ``factor``."""
    cx, cy, side, angle = geometry
    shift = (factor - 1) / 2.0  # the reduced image's pixel centres: source (i) = reduced (i') * factor + shift
    return chip_to_source((cx - shift) / factor, (cy - shift) / factor, side / factor, angle, size)


def extract_composite_chip(image: Image.Image | ReducedCopies, geometry: tuple[float, float, float, float],
                           size: int) -> Image.Image:
    """The chip :func:`extract_chip` cuts, resampled by OpenCV's bicubic affine warp (``cv2.warpAffine``,
    ``INTER_CUBIC``) instead of Pillow's: 4-5 times faster for a 512-px chip, the same box-reduced source,
    edge pixels repeated for the taps and black where the chip leaves the image (as Pillow). The two
    bicubics differ (OpenCV's kernel has a = -0.75, Pillow's -0.5; OpenCV tabulates positions in 1/32 px)
    by 0.5-0.75 levels on average, less than the q95 JPEG the chip is stored as (0.5-1.1 levels;
    ``docs/performance.md``). Used for the composite chip only: the embedding chip stays Pillow's."""
    import cv2  # noqa: PLC0415 - heavy, imported where it is used

    copies = image if isinstance(image, ReducedCopies) else ReducedCopies(image)
    source, factor = copies.array_at_most(reduction_for(geometry[2], size))
    matrix = _reduced_geometry(geometry, size, factor)[:2, :]
    chip = cv2.warpAffine(source, matrix, (size, size), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)
    outside = _outside_source(matrix, size, source.shape[1], source.shape[0])
    if outside is not None:
        chip[outside] = 0
    return Image.fromarray(chip, "RGB")


def _outside_source(matrix: np.ndarray, size: int, width: int, height: int) -> np.ndarray | None:
    """``size×size`` bool: the chip pixels whose centre ``matrix`` maps outside the source (Pillow's fill
    rule: outside ``[-0.5, side - 0.5)``); None when the whole chip lies inside (checked on its corners)."""
    corners = np.array([[0.0, 0.0, 1.0], [size - 1.0, 0.0, 1.0], [0.0, size - 1.0, 1.0], [size - 1.0, size - 1.0, 1.0]])
    mapped = corners @ matrix.T
    if (mapped[:, 0] >= -0.5).all() and (mapped[:, 0] < width - 0.5).all() and \
            (mapped[:, 1] >= -0.5).all() and (mapped[:, 1] < height - 0.5).all():
        return None
    steps = np.arange(size, dtype=np.float64)
    sx = (matrix[0, 0] * steps + matrix[0, 2])[None, :] + (matrix[0, 1] * steps)[:, None]
    sy = (matrix[1, 0] * steps + matrix[1, 2])[None, :] + (matrix[1, 1] * steps)[:, None]
    return (sx < -0.5) | (sx >= width - 0.5) | (sy < -0.5) | (sy >= height - 0.5)


def landmarks_in_chip(landmarks: np.ndarray, geometry: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Source-pixel landmarks ``(k, 2)`` mapped into the ``size`` chip's pixel coordinates."""
    inverse = np.linalg.inv(chip_to_source(*geometry, size))
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    return points @ inverse[:2, :2].T + inverse[:2, 2]


CHIPS_SCHEMA: dict[str, Any] = {
    "face_id": pl.String,
    "image_id": pl.String,
    "path": pl.String,
    "ok": pl.Boolean,
    "chip_version": pl.String,
    "source_key": pl.String,
    "chip_path": pl.String,
    "composite_path": pl.String,
    "chip_landmarks": pl.List(pl.Float64),
    "landmark_points": pl.Int32,
    "face_px": pl.Float64,
    "sharpness": pl.Float64,
    "flags": pl.List(pl.String),
    "error": pl.String,
    **QUALITY_SCHEMA,
}


def _encode(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def source_key(face: dict[str, Any]) -> str:
    """What a chip is cut from: the face's box and landmarks (a chip is redone when they change)."""
    parts = [face["box_x0"], face["box_y0"], face["box_x1"], face["box_y1"], *(face["landmarks"] or [])]
    return hashlib.sha1(",".join(f"{float(v):.3f}" for v in parts).encode()).hexdigest()[:16]


def chip_files(face_id: str, config: ChipConfig) -> tuple[str, str]:
    """Paths, relative to the chips folder, of a face's embedding and composite chips."""
    return (f"{config.version}/{config.embed_size}/{face_id}.jpg",
            f"{config.version}/{config.composite_size}/{face_id}.jpg")


CHIP_FLAGS: tuple[str, ...] = ("tiny", "blurry")
"""Quality reasons that are also chip ``flags`` (carried into ``attribute_flags``)."""


def judged(face: dict[str, Any], face_px: float | None, sharpness: float | None, quality: QualityConfig
           ) -> dict[str, Any]:
    """The quality columns and ``flags`` of a face's chip row (:mod:`facestats_core.faces.quality`),
    from its detection row (landmarks, score) and its chip's measurements."""
    columns = face_quality(face["landmarks"], sharpness, face_px, face.get("score"), quality)
    return {**columns, "flags": [r for r in columns["quality_reasons"] if r in CHIP_FLAGS]}


def _geometry(face: dict[str, Any], config: ChipConfig) -> tuple[tuple[float, float, float, float], Any]:
    box = (face["box_x0"], face["box_y0"], face["box_x1"], face["box_y1"])
    points = None if face["landmarks"] is None else np.asarray(face["landmarks"]).reshape(-1, 2)
    return chip_geometry(box, eye_centres(points), config.margin, face["face_source"] == "whole_image"), points


def draft_reduction(faces: list[dict[str, Any]], config: ChipConfig) -> int:
    """The JPEG draft scale (1, 2, 4 or 8) an image can be decoded at for these faces: the largest
    power of two that leaves every chip's square at least as many source pixels as the chip has
    (no chip is upsampled from the draft where the full image would not upsample it)."""
    factor = min((max(1, int(_geometry(face, config)[0][2] / size)) for face in faces
                  for size in (config.embed_size, config.composite_size)), default=1)
    return max(k for k in (1, 2, 4, 8) if k <= factor)


def chips_of_image(image: Image.Image | ReducedCopies, faces: list[dict[str, Any]], chips_dir: Any,
                   config: ChipConfig, quality: QualityConfig | None = None) -> list[dict[str, Any]]:
    """Write the chips of one image's face rows (detection-table rows); one chip row per face,
    with its quality columns (``quality`` thresholds, the defaults when None). ``image`` may be a
    :class:`ReducedCopies` (a draft-decoded JPEG); its reduced copies are shared by all the image's chips."""
    quality = quality or QualityConfig()
    copies = image if isinstance(image, ReducedCopies) else ReducedCopies(image)
    rows = []
    for face in faces:
        geometry, points = _geometry(face, config)
        box = (face["box_x0"], face["box_y0"], face["box_x1"], face["box_y1"])
        embed_rel, comp_rel = chip_files(face["face_id"], config)
        embed_chip = extract_chip(copies, geometry, config.embed_size)
        atomic_write_bytes(chips_dir / embed_rel, _encode(embed_chip, config.jpeg_quality), durable=False)
        if comp_rel != embed_rel:
            composite_chip = extract_composite_chip(copies, geometry, config.composite_size)
            atomic_write_bytes(chips_dir / comp_rel, _encode(composite_chip, config.jpeg_quality), durable=False)
        sharpness = round(laplacian_variance(embed_chip), 3)
        face_px = float(min(box[2] - box[0], box[3] - box[1]))
        chip_points = None if points is None else landmarks_in_chip(points, geometry, config.composite_size)
        rows.append({
            "face_id": face["face_id"], "image_id": face["image_id"], "path": face["path"], "ok": True,
            "chip_version": config.version, "source_key": source_key(face), "chip_path": embed_rel,
            "composite_path": comp_rel,
            "chip_landmarks": None if chip_points is None else chip_points.ravel().tolist(),
            "landmark_points": 0 if points is None else len(points), "face_px": face_px,
            "sharpness": sharpness, "error": None, **judged(face, face_px, sharpness, quality),
        })
    return rows


def decode_for_chips(data: bytes, faces: list[dict[str, Any]], config: ChipConfig) -> ReducedCopies:
    """One decode of an image for its faces' chips. A JPEG whose chip squares all span at least
    twice their chip's pixels is decoded at a power-of-two scale ``k`` by the JPEG decoder (draft,
    :func:`draft_reduction`), several times faster than a whole decode; it stands in for the box
    reduction (which keeps twice the chip's resolution when decoding whole). ``k`` divides both
    sides, so every drafted pixel is exactly a ``k × k`` block of the original in any EXIF
    orientation. Anything else is decoded whole. Raises :class:`ImageReadError` / ``OSError``."""
    k = draft_reduction(faces, config)
    stored = (0, 0)
    if k > 1:
        try:
            with Image.open(io.BytesIO(data)) as header:
                stored = header.size if header.format == "JPEG" else (0, 0)
        except (OSError, ValueError, Image.DecompressionBombError):
            pass  # load_rgb below says why, with its reason
        while k > 1 and (stored[0] % k or stored[1] % k):
            k //= 2
        if k > 1 and min(stored) >= k:
            image = load_rgb(data, max_pixels=config.max_pixels, draft_size=min(stored) // k)
            if image.size in ((stored[0] // k, stored[1] // k), (stored[1] // k, stored[0] // k)):
                return ReducedCopies(image, k)
            if image.size in (stored, stored[::-1]):  # the decoder did not scale it
                return ReducedCopies(image)
    return ReducedCopies(load_rgb(data, max_pixels=config.max_pixels))


def _failed(face: dict[str, Any], config: ChipConfig, error: str) -> dict[str, Any]:
    row = dict.fromkeys(CHIPS_SCHEMA)
    row.update(face_id=face["face_id"], image_id=face["image_id"], path=face["path"], ok=False,
               chip_version=config.version, flags=["unreadable"], error=error)
    return row


@dataclass
class ChipStats:
    faces: int = 0
    made: int = 0
    reused: int = 0
    failed: int = 0


def _chips_of_group(todo: list[dict[str, Any]], raw_root: Any, chips_dir: Any, config: ChipConfig,
                    quality: QualityConfig) -> tuple[list[dict[str, Any]], bool]:
    """The chip rows of one image's faces to make, and whether they were made (else failed rows)."""
    try:
        image = decode_for_chips((raw_root / todo[0]["path"]).read_bytes(), todo, config)
    except (ImageReadError, OSError) as exc:
        return [_failed(face, config, f"unreadable: {exc}") for face in todo], False
    return chips_of_image(image, todo, chips_dir, config, quality), True


def chip_manifest(
    detections: pl.DataFrame, raw_root: Any, chips_dir: Any, config: ChipConfig,
    previous: pl.DataFrame | None = None, progress: Callable[[int, int], None] | None = None,
    quality: QualityConfig | None = None, workers: int = 1,
) -> tuple[pl.DataFrame, ChipStats]:
    """Chips of every face row of a detections table, decoding each image once
    (:func:`decode_for_chips`), ``workers`` images at a time in threads (decoding, resampling and
    encoding release the GIL; the chips do not depend on ``workers``).

    A face whose previous row has the same chip version and the same source (box and
    landmarks, :func:`source_key`) and whose files exist is reused; its quality columns are
    judged again under ``quality`` (cheap: no pixels). A face whose image cannot be read again
    is an ``ok = false`` row.
    """
    quality = quality or QualityConfig()
    faces = detections.filter(pl.col("face_id").is_not_null())
    reusable: dict[str, dict[str, Any]] = {}
    if previous is not None and previous.height and "chip_version" in previous.columns:
        reusable = {r["face_id"]: r for r in previous.filter(pl.col("chip_version") == config.version)
                    .iter_rows(named=True) if r["ok"]}
    stats = ChipStats()
    rows: list[dict[str, Any]] = []
    groups = faces.partition_by("image_id", maintain_order=True) if faces.height else []
    todos: list[list[dict[str, Any]]] = []
    for group in groups:
        todo = []
        for face in group.iter_rows(named=True):
            stats.faces += 1
            old = reusable.get(face["face_id"])
            if old is not None and old.get("source_key") == source_key(face) and (
                    chips_dir / old["chip_path"]).exists() and (chips_dir / old["composite_path"]).exists():
                rows.append({**old, "path": face["path"], **judged(face, old["face_px"], old["sharpness"], quality)})
                stats.reused += 1
            else:
                todo.append(face)
        if todo:
            todos.append(todo)

    def make(todo: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        return _chips_of_group(todo, raw_root, chips_dir, config, quality)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, (made, ok) in enumerate(pool.map(make, todos) if workers > 1 else map(make, todos), start=1):
            rows.extend(made)
            if ok:
                stats.made += len(made)
            else:
                stats.failed += len(made)
            if progress is not None:
                progress(done, len(todos))
    frame = pl.DataFrame(rows, schema=CHIPS_SCHEMA) if rows else pl.DataFrame(schema=CHIPS_SCHEMA)
    return frame.sort("face_id"), stats
