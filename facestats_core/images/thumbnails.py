"""Small preview images for dashboards and the report, as JPEG bytes.

* :func:`thumbnail_jpeg`: one image shrunk to fit a square (aspect kept).
* :func:`thumbnail_strip`: several images side by side, each squeezed to a square tile.

Sources are image bytes or a path (``pathlib.Path``, ``str`` or UPath).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from facestats_core.images.preprocess import encode_jpeg

THUMBNAIL_QUALITY = 85
"""JPEG quality of every thumbnail."""


def _read(source: bytes | str | os.PathLike[str] | Any) -> bytes:
    """The bytes of ``source``: bytes as they are, else the file it names (Path, str or UPath)."""
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    path = Path(source) if isinstance(source, str) else source
    return path.read_bytes()


def _open_rgb(source: bytes | str | os.PathLike[str] | Any) -> Image.Image:
    """``source`` decoded into memory as an RGB image (the file is closed again)."""
    with Image.open(io.BytesIO(_read(source))) as image:
        return image.convert("RGB")


def thumbnail_jpeg(source: bytes | str | os.PathLike[str] | Any, side: int = 192) -> bytes:
    """``source`` shrunk to fit ``side`` × ``side`` px (aspect kept, never enlarged) as JPEG.

    Raises ``OSError`` when the file cannot be read and ``OSError``/``ValueError`` when it
    is not an image PIL can decode.
    """
    picture = _open_rgb(source)
    picture.thumbnail((side, side))
    return encode_jpeg(picture, THUMBNAIL_QUALITY)


def thumbnail_strip(paths: Sequence[Any], tile: int = 64, limit: int = 8) -> bytes | None:
    """Up to ``limit`` images side by side, each ``tile`` px square, as JPEG; None if none load."""
    tiles: list[Image.Image] = []
    for path in paths[:limit]:
        try:
            tiles.append(_open_rgb(path).resize((tile, tile), Image.Resampling.LANCZOS))
        except (OSError, ValueError):
            continue
    if not tiles:
        return None
    strip = Image.new("RGB", (tile * len(tiles), tile), (255, 255, 255))
    for index, thumb in enumerate(tiles):
        strip.paste(thumb, (index * tile, 0))
    return encode_jpeg(strip, THUMBNAIL_QUALITY)
