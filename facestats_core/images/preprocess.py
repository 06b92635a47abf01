"""Preprocessing: upright RGB, square resize/crop, quality measures.

The output of one image is a square JPEG of ``PreprocessConfig.size`` pixels
plus a ``PreprocessResult`` row. Face detection/alignment columns exist in the
result (``face_count`` …) and stay empty until a detector is configured, so the
manifest schema does not change when alignment is added.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
from PIL import Image

from facestats_core.images.decode import DEFAULT_MAX_PIXELS, ImageReadError, load_rgb
from facestats_core.io.atomic import atomic_write_bytes


@dataclass(frozen=True)
class PreprocessConfig:
    """How raw images become model-ready squares.

    ``size`` defaults to 256: CLIP's processor resizes to 224 itself, and the
    extra margin is kept for later face alignment and composites.
    """

    size: int = 256
    jpeg_quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS
    tiny_side: int = 64
    blur_threshold: float = 20.0

    def __post_init__(self) -> None:
        if not 32 <= self.size <= 2048:
            raise ValueError(f"size must be in [32, 2048], got {self.size}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")

    @property
    def version(self) -> str:
        """Identifies the output: images made with another version are redone."""
        return f"square{self.size}-q{self.jpeg_quality}-v1"


@dataclass(frozen=True)
class PreprocessResult:
    """One row of the preprocessing manifest (``output_path`` is relative to the preproc folder)."""

    image_id: str
    ok: bool
    preproc_version: str
    output_path: str | None = None
    sharpness: float | None = None
    flags: list[str] = field(default_factory=list)
    error: str | None = None
    face_count: int | None = None
    face_box: list[float] | None = None
    landmarks: list[float] | None = None
    detection_score: float | None = None
    aligned: bool = False

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def square_resize(image: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to ``size`` (Lanczos) and centre-crop to a square."""
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    resized = image.resize((new_w, new_h), Image.Resampling.LANCZOS, reducing_gap=3.0)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return resized.crop((left, top, left + size, top + size))


def laplacian_variance(image: Image.Image, mask: np.ndarray | None = None) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image: low means blurry.

    ``mask`` (``h×w`` bool) limits it to the pixels inside (e.g. a composite's face hull).
    """
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    lap = (
        gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    )
    if mask is not None:
        lap = lap[np.asarray(mask, dtype=bool)[1:-1, 1:-1]]
        if lap.size == 0:
            return 0.0
    return float(lap.var())


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=False)
    return buffer.getvalue()


def preprocess_image(
    data: bytes, image_id: str, output_dir: Any, config: PreprocessConfig
) -> PreprocessResult:
    """Turn one raw file's bytes into ``output_dir/<image_id>.jpg``; never raises for bad images.

    ``output_dir`` may be a local ``Path`` or any ``UPath``.
    """
    try:
        rgb = load_rgb(data, max_pixels=config.max_pixels, draft_size=config.size)
    except ImageReadError as exc:
        return PreprocessResult(
            image_id=image_id,
            ok=False,
            preproc_version=config.version,
            flags=["unreadable"],
            error=f"{exc.reason}: {exc.detail}",
        )
    # JPEG draft decoding never shrinks below ``size``, so this is the source's tiny-ness.
    width, height = rgb.size
    square = square_resize(rgb, config.size)
    sharpness = laplacian_variance(square)
    flags: list[str] = []
    if min(width, height) < config.tiny_side:
        flags.append("tiny")
    if sharpness < config.blur_threshold:
        flags.append("blurry")
    output = output_dir / f"{image_id}.jpg"
    atomic_write_bytes(output, encode_jpeg(square, config.jpeg_quality))
    return PreprocessResult(
        image_id=image_id,
        ok=True,
        preproc_version=config.version,
        output_path=output.name,
        sharpness=round(sharpness, 3),
        flags=flags,
    )


PREPROCESSED_SCHEMA: dict[str, Any] = {
    "image_id": pl.String,
    "path": pl.String,
    "ok": pl.Boolean,
    "preproc_version": pl.String,
    "output_path": pl.String,
    "sharpness": pl.Float64,
    "flags": pl.List(pl.String),
    "error": pl.String,
    "face_count": pl.Int64,
    "face_box": pl.List(pl.Float64),
    "landmarks": pl.List(pl.Float64),
    "detection_score": pl.Float64,
    "aligned": pl.Boolean,
}


@dataclass(frozen=True)
class PreprocessStats:
    images: int
    processed: int
    reused: int
    failed: int


def _reusable(previous: pl.DataFrame | None, config: PreprocessConfig) -> dict[str, dict[str, Any]]:
    """Earlier rows made with the same settings whose output file still exists."""
    if previous is None or previous.height == 0:
        return {}
    rows = previous.filter(pl.col("preproc_version") == config.version).iter_rows(named=True)
    return {row["image_id"]: row for row in rows}


def preprocess_manifest(
    raw_manifest: pl.DataFrame,
    raw_root: Any,
    output_dir: Any,
    config: PreprocessConfig,
    previous: pl.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, PreprocessStats]:
    """Preprocess every image of a raw manifest, skipping images already done.

    Unreadable raw files become ``ok=False`` rows flagged ``unreadable`` with
    the raw manifest's reason, so no image silently disappears downstream.
    """
    reusable = _reusable(previous, config)
    rows: list[dict[str, Any]] = []
    processed = reused = 0
    total = raw_manifest.height
    for done, raw in enumerate(raw_manifest.iter_rows(named=True), start=1):
        image_id = raw["image_id"]
        old = reusable.get(image_id)
        if old is not None and (not old["ok"] or (output_dir / f"{image_id}.jpg").exists()):
            rows.append({**old, "path": raw["path"]})
            reused += 1
        elif not raw["readable"]:
            result = PreprocessResult(
                image_id=image_id, ok=False, preproc_version=config.version,
                flags=["unreadable"], error=f"{raw['error']}: {raw['error_detail']}",
            )
            rows.append({**result.as_row(), "path": raw["path"]})
        else:
            try:
                data = (raw_root / raw["path"]).read_bytes()
            except OSError as exc:  # moved or deleted since the scan
                result = PreprocessResult(
                    image_id=image_id, ok=False, preproc_version=config.version,
                    flags=["unreadable"], error=f"missing: {exc}",
                )
            else:
                result = preprocess_image(data, image_id, output_dir, config)
                processed += 1
            rows.append({**result.as_row(), "path": raw["path"]})
        if progress is not None:
            progress(done, total)
    frame = pl.DataFrame(rows, schema=PREPROCESSED_SCHEMA) if rows else pl.DataFrame(schema=PREPROCESSED_SCHEMA)
    failed = int((~frame["ok"]).sum()) if frame.height else 0
    return frame, PreprocessStats(images=frame.height, processed=processed, reused=reused, failed=failed)
