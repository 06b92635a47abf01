from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from facestats_core.images.preprocess import laplacian_variance, square_resize


def test_square_resize_centre_crops() -> None:
    image = Image.new("RGB", (400, 200), (0, 0, 0))
    image.paste((255, 255, 255), (150, 0, 250, 200))  # white band in the middle
    square = square_resize(image, 64)
    assert square.size == (64, 64)
    array = np.asarray(square)
    assert array[32, 32].min() > 200  # centre kept
    assert array[32, 0].max() < 60 and array[32, 63].max() < 60


def test_blur_lowers_laplacian_variance() -> None:
    rng = np.random.default_rng(0)
    sharp = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert laplacian_variance(sharp.filter(ImageFilter.GaussianBlur(3))) < laplacian_variance(sharp) / 10


def test_thumbnail_strip_skips_unreadable(tmp_path) -> None:
    import io

    from facestats_core.images.thumbnails import thumbnail_strip

    good = tmp_path / "a.jpg"
    Image.new("RGB", (100, 80), (200, 10, 10)).save(good)
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"nope")
    strip = Image.open(io.BytesIO(thumbnail_strip([good, bad, good], tile=32)))
    assert strip.size == (64, 32)
    assert thumbnail_strip([bad]) is None
