"""One thumbnail helper for the report and the dashboards: a JPEG that fits a square."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from facestats_core.images.thumbnails import thumbnail_jpeg


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        return image.size


def test_thumbnail_keeps_aspect_and_takes_bytes_or_paths(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGBA", (300, 150), (200, 10, 10, 255)).save(path)
    from_bytes = thumbnail_jpeg(path.read_bytes(), 160)
    assert _size(from_bytes) == (160, 80)
    assert thumbnail_jpeg(path, 160) == from_bytes == thumbnail_jpeg(str(path), 160)
    assert _size(thumbnail_jpeg(path)) == (192, 96)  # default side
    small = tmp_path / "small.png"
    Image.new("L", (20, 40), 90).save(small)
    assert _size(thumbnail_jpeg(small, 192)) == (20, 40)  # never enlarged


def test_thumbnail_of_a_non_image_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        thumbnail_jpeg(b"not an image")
    with pytest.raises(OSError):
        thumbnail_jpeg(tmp_path / "missing.png")
