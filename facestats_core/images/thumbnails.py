"""Small preview images for dashboards: a strip of thumbnails as JPEG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image


def thumbnail_strip(paths: Sequence[Any], tile: int = 64, limit: int = 8) -> bytes | None:
    """Up to ``limit`` images side by side, each ``tile`` px square, as JPEG; None if none load."""
    tiles: list[Image.Image] = []
    for path in paths[:limit]:
        try:
            with Image.open(io.BytesIO(path.read_bytes())) as image:
                tiles.append(image.convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS))
        except (OSError, ValueError):
            continue
    if not tiles:
        return None
    strip = Image.new("RGB", (tile * len(tiles), tile), (255, 255, 255))
    for index, thumb in enumerate(tiles):
        strip.paste(thumb, (index * tile, 0))
    buffer = io.BytesIO()
    strip.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
