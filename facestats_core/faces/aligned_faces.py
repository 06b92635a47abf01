"""The aligned-face cache: eyes per preprocessed image, aligned crops on disk.

For every row of a preprocessing manifest, :func:`align_manifest` finds the
eye centres in the *preprocessed* square:

1. from a landmarks file (:func:`~facestats_core.faces.alignment.read_landmarks_csv`),
   whose coordinates are in the *raw* image (after EXIF orientation) and are
   mapped through the preprocessing resize + centre crop with
   :func:`raw_to_preprocessed` (source ``landmarks``);
2. else from an :class:`~facestats_core.faces.alignment.EyeDetector` such as dlib,
   run on the preprocessed square (source ``detector``);

then warps the square so the eyes land on fixed points
(:func:`~facestats_core.faces.alignment.align_face`) and caches the JPEG at
``<cache_dir>/<alignment version>/<image_id>.jpg``. The cache is incremental:
an image whose previous row has the same alignment version and the same eyes,
and whose file exists, is not redone; detector results (found or not) are
reused too, so the detector runs once per image.

Failures are rows with ``aligned_ok = false`` and a reason in ``error``
(:data:`ALIGN_ERRORS`); they are excluded from aligned composites and counted.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from PIL import Image

from facestats_core.faces.alignment import AlignmentConfig, EyeDetector, align_face, aligned_face_path
from facestats_core.io.atomic import atomic_write_bytes

EYE_COLUMNS: tuple[str, ...] = ("left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y")

ALIGN_ERRORS: dict[str, str] = {
    "not_preprocessed": "the image has no preprocessed square (unreadable file)",
    "no_landmarks": "no eye landmarks in the landmarks file and no detector configured",
    "no_face_detected": "the detector found no face",
    "bad_landmarks": "the eyes coincide or lie outside the image",
    "detector_error": "the detector raised an error",
    "align_error": "reading or warping the image failed",
}
"""``error`` values of the aligned-faces manifest."""

ALIGNED_SCHEMA: dict[str, Any] = {
    "image_id": pl.String,
    "path": pl.String,
    "eyes_source": pl.String,
    **{c: pl.Float64 for c in EYE_COLUMNS},
    "interocular": pl.Float64,
    "aligned_ok": pl.Boolean,
    "alignment_version": pl.String,
    "aligned_path": pl.String,
    "error": pl.String,
    "error_detail": pl.String,
}


def raw_to_preprocessed(
    x: float, y: float, width: int, height: int, size: int
) -> tuple[float, float]:
    """Map a pixel-index point of a ``width × height`` raw image into the ``size`` preprocessed square.

    Mirrors :func:`facestats_core.images.preprocess.square_resize`: the shorter side
    is scaled to ``size`` (``scale = size / min(w, h)``, sides rounded) and
    the centre ``size × size`` is cropped (offset ``(new - size) // 2``).
    Pixel centres sit at ``i + 0.5`` in continuous coordinates.
    """
    if width < 1 or height < 1 or size < 1:
        raise ValueError(f"bad sizes {width}x{height} -> {size}")
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return (x + 0.5) * new_w / width - 0.5 - left, (y + 0.5) * new_h / height - 0.5 - top


def map_landmarks(
    landmarks: pl.DataFrame, raw_manifest: pl.DataFrame, size: int, prefix: str = ""
) -> tuple[pl.DataFrame, int]:
    """Eyes of each raw image in preprocessed coordinates: ``image_id`` + :data:`EYE_COLUMNS`.

    ``landmarks`` has ``file`` (relative to the raw folder, after ``prefix``)
    and raw-image eye coordinates; a file matches the manifest's ``path`` or one
    of its ``alias_paths``. Returns the table (one row per image id, first
    match wins) and the number of landmark rows that matched no image.
    """
    rows = raw_manifest.filter(pl.col("readable")) if "readable" in raw_manifest.columns else raw_manifest
    by_path: dict[str, tuple[str, int, int]] = {}
    aliases = "alias_paths" in rows.columns
    for row in rows.iter_rows(named=True):
        entry = (row["image_id"], int(row["width"] or 0), int(row["height"] or 0))
        by_path.setdefault(row["path"], entry)
        for alias in (row["alias_paths"] or []) if aliases else []:
            by_path.setdefault(alias, entry)
    out: dict[str, tuple[float, float, float, float]] = {}
    unmatched = 0
    for file, lx, ly, rx, ry in landmarks.select("file", *EYE_COLUMNS).iter_rows():
        key = f"{prefix}{file}".replace("\\", "/").removeprefix("./") if file is not None else None
        entry = by_path.get(key) if key is not None else None
        if entry is None or entry[1] < 1 or entry[2] < 1:
            unmatched += 1
            continue
        image_id, width, height = entry
        if image_id in out:
            continue
        left = raw_to_preprocessed(lx, ly, width, height, size)
        right = raw_to_preprocessed(rx, ry, width, height, size)
        out[image_id] = (*left, *right)
    schema = {"image_id": pl.String, **{c: pl.Float64 for c in EYE_COLUMNS}}
    table = pl.DataFrame([(k, *v) for k, v in out.items()], schema=schema, orient="row")
    return table, unmatched


@dataclass
class AlignStats:
    aligned: int = 0
    reused: int = 0
    detected: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)


def _valid_eyes(eyes: tuple[float, float, float, float], size: int) -> bool:
    lx, ly, rx, ry = eyes
    if not all(math.isfinite(v) for v in eyes):
        return False
    if math.dist((lx, ly), (rx, ry)) < 2.0:
        return False
    return all(-0.5 <= v <= size - 0.5 for v in eyes)


def _reusable(previous: pl.DataFrame | None) -> dict[str, dict[str, Any]]:
    if previous is None or previous.height == 0 or "image_id" not in previous.columns:
        return {}
    return {row["image_id"]: row for row in previous.iter_rows(named=True)}


def align_manifest(
    preprocessed: pl.DataFrame,
    preproc_dir: Any,
    cache_dir: Any,
    config: AlignmentConfig,
    size: int,
    eyes: pl.DataFrame | None = None,
    detector: EyeDetector | None = None,
    detector_name: str = "detector",
    previous: pl.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, AlignStats]:
    """Align every preprocessed image of a manifest; one row per manifest row (schema :data:`ALIGNED_SCHEMA`).

    ``size``: side of the preprocessed squares (eyes outside it are ``bad_landmarks``).
    ``eyes``: ``image_id`` + :data:`EYE_COLUMNS` in preprocessed coordinates
    (see :func:`map_landmarks`); ``detector`` is tried for images without
    them and recorded as ``eyes_source = detector_name``. ``previous``: the
    earlier manifest, for reuse. ``preproc_dir`` and ``cache_dir`` may be
    Paths or UPaths.
    """
    known: Mapping[str, tuple[float, ...]] = (
        {row[0]: tuple(row[1:]) for row in eyes.select("image_id", *EYE_COLUMNS).iter_rows()}
        if eyes is not None
        else {}
    )
    old = _reusable(previous)
    stats = AlignStats()
    rows: list[dict[str, Any]] = []
    total = preprocessed.height
    for done, pre in enumerate(preprocessed.iter_rows(named=True), start=1):
        rows.append(
            _align_one(pre, known, old, preproc_dir, cache_dir, config, size, detector, detector_name, stats)
        )
        if progress is not None:
            progress(done, total)
    frame = pl.DataFrame(rows, schema=ALIGNED_SCHEMA, orient="row") if rows else pl.DataFrame(schema=ALIGNED_SCHEMA)
    return frame, stats


def _align_one(
    pre: dict[str, Any],
    known: Mapping[str, tuple[float, ...]],
    old: Mapping[str, dict[str, Any]],
    preproc_dir: Any,
    cache_dir: Any,
    config: AlignmentConfig,
    size: int,
    detector: EyeDetector | None,
    detector_name: str,
    stats: AlignStats,
) -> dict[str, Any]:
    image_id = pre["image_id"]
    row: dict[str, Any] = {c: None for c in ALIGNED_SCHEMA}
    row.update(image_id=image_id, path=pre.get("path"), aligned_ok=False, alignment_version=config.version)

    def fail(reason: str, detail: str | None = None) -> dict[str, Any]:
        row.update(error=reason, error_detail=detail)
        stats.failed[reason] += 1
        return row

    if not pre.get("ok") or not pre.get("output_path"):
        return fail("not_preprocessed", pre.get("error"))
    previous = old.get(image_id)
    found = known.get(image_id)
    source = "landmarks" if found is not None else None
    square: Image.Image | None = None
    if found is None and detector is not None:
        if previous is not None and previous.get("eyes_source") == detector_name:
            found = tuple(previous[c] for c in EYE_COLUMNS)
            source = detector_name
        elif previous is not None and previous.get("error") == "no_face_detected" and previous.get(
            "error_detail"
        ) == detector_name:
            return fail("no_face_detected", detector_name)
        else:
            try:
                square = _load(preproc_dir / pre["output_path"])
                detections = detector.detect_eyes(square)
            except Exception as exc:  # noqa: BLE001 - one image must not sink the shard
                return fail("detector_error", f"{type(exc).__name__}: {exc}")
            stats.detected += 1
            if not detections:
                return fail("no_face_detected", detector_name)
            best = detections[0]
            found, source = (*best.left_eye, *best.right_eye), detector_name
    if found is None:
        return fail("no_landmarks")
    eyes_tuple = tuple(float(v) for v in found)
    row.update(dict(zip(EYE_COLUMNS, eyes_tuple, strict=True)), eyes_source=source)
    stats.sources[str(source)] += 1
    if not _valid_eyes(eyes_tuple, size):  # type: ignore[arg-type]
        return fail("bad_landmarks", f"eyes {tuple(round(v, 1) for v in eyes_tuple)} in a {size} px square")
    row["interocular"] = math.dist(eyes_tuple[:2], eyes_tuple[2:])
    target = aligned_face_path(cache_dir, image_id, config.version)
    relative = f"{config.version}/{image_id}.jpg"
    if (
        previous is not None
        and previous.get("aligned_ok")
        and previous.get("alignment_version") == config.version
        and tuple(previous.get(c) for c in EYE_COLUMNS) == eyes_tuple
        and target.exists()
    ):
        stats.reused += 1
        row.update(aligned_ok=True, aligned_path=relative)
        return row
    try:
        if square is None:
            square = _load(preproc_dir / pre["output_path"])
        aligned = align_face(
            square, eyes_tuple[:2], eyes_tuple[2:], config.output_size, config.eye_targets  # type: ignore[arg-type]
        )
        buffer = io.BytesIO()
        aligned.save(buffer, format="JPEG", quality=config.jpeg_quality)
        atomic_write_bytes(target, buffer.getvalue())
    except Exception as exc:  # noqa: BLE001
        return fail("align_error", f"{type(exc).__name__}: {exc}")
    stats.aligned += 1
    row.update(aligned_ok=True, aligned_path=relative)
    return row


def _load(path: Any) -> Image.Image:
    with path.open("rb") as fh:
        image = Image.open(io.BytesIO(fh.read()))
        image.load()
    return image.convert("RGB")

