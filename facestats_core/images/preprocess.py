"""Image helpers shared by the stages: square resize, sharpness (Laplacian variance), JPEG encoding."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


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
