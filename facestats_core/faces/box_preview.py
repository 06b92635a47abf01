"""A photo with its detected faces outlined (for the UI and the report)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import polars as pl
from PIL import Image, ImageDraw

from facestats_core.images.decode import ImageReadError, load_rgb

Box = tuple[float, float, float, float]
BOX_COLUMNS: tuple[str, ...] = ("box_x0", "box_y0", "box_x1", "box_y1")


def draw_face_boxes(image: Image.Image, boxes: Sequence[Box], max_side: int = 640,
                    colour: tuple[int, int, int] = (255, 64, 64)) -> Image.Image:
    """``image`` scaled to at most ``max_side`` with each box (original pixels) outlined and numbered."""
    rgb = image.convert("RGB")
    scale = min(1.0, max_side / max(rgb.size))
    if scale < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
                         Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(rgb)
    width = max(2, round(max(rgb.size) / 250))
    for number, (x0, y0, x1, y1) in enumerate(boxes):
        shape = [x0 * scale, y0 * scale, x1 * scale, y1 * scale]
        draw.rectangle(shape, outline=colour, width=width)
        draw.text((shape[0] + width + 1, shape[1] + width), str(number), fill=colour)
    return rgb


def busiest_photo(faces: pl.DataFrame, raw_dir: Any) -> tuple[bytes, str] | None:
    """JPEG of the photo with the most faces (rows with ``path`` and the box columns), its faces outlined,
    and a caption; None without a photo of two or more faces, or when that photo cannot be read again."""

    if faces.height == 0:
        return None
    path, count = faces.group_by("path").len().sort(["len", "path"], descending=[True, False]).row(0)
    if count < 2:
        return None
    try:
        image = load_rgb((raw_dir / path).read_bytes())
    except (ImageReadError, OSError):
        return None
    boxes = faces.filter(pl.col("path") == path).select(BOX_COLUMNS).rows()
    buffer = io.BytesIO()
    draw_face_boxes(image, boxes).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), f"{path}: {count} faces"
