"""A photo with its detected faces outlined (for the UI and the report)."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

Box = tuple[float, float, float, float]


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
