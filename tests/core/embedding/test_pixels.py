"""The pixel reader: CLIP's preprocessing, uint8 batches, bounded prefetch."""

from __future__ import annotations

import numpy as np
from PIL import Image

import facestats_core.embedding.pixels as pixels_module
from facestats_core.embedding.pixels import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    clip_pixels,
    clip_pixels_uint8,
    iter_pixel_batches,
    normalize_pixels,
)
from tests.conftest import write_photos


def test_pixels_match_transformers_processor() -> None:
    try:
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    yy, xx = np.mgrid[0:48, 0:64]
    smooth = np.stack([127 + 100 * np.sin(xx / 6 + c) * np.cos(yy / 8) for c in range(3)], axis=-1)
    image = Image.fromarray(smooth.astype(np.uint8))
    processor = Processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                          image_mean=list(OPENAI_CLIP_MEAN), image_std=list(OPENAI_CLIP_STD))
    expected = processor(images=image, return_tensors="np")["pixel_values"][0]
    ours = clip_pixels(image, 32, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
    assert ours.shape == expected.shape == (3, 32, 32)
    # Same resize, crop and normalisation; only the bicubic kernels' rounding differs.
    assert np.abs(ours - expected).mean() < 0.1
    assert np.corrcoef(ours.ravel(), expected.ravel())[0, 1] > 0.99


def test_clip_pixels_is_the_uint8_crop_normalised() -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    mean, std = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)
    crop = clip_pixels_uint8(image, 32)
    assert crop.dtype == np.uint8 and crop.shape == (3, 32, 32)
    expected = (np.asarray(image.resize((45, 32), Image.Resampling.BICUBIC).crop((6, 0, 38, 32)), dtype=np.float32)
                / 255.0 - np.float32(mean)) / np.float32(std)
    np.testing.assert_allclose(clip_pixels(image, 32, mean, std), expected.transpose(2, 0, 1), atol=1e-5)
    np.testing.assert_array_equal(normalize_pixels(crop, mean, std), clip_pixels(image, 32, mean, std))


def test_reader_never_holds_more_than_prefetch_batches(tmp_path, monkeypatch) -> None:
    paths = write_photos(tmp_path, 12)
    decoded: list[int] = []
    original = pixels_module.decode_batch

    def counting(p, indices, image_size):
        decoded.append(len(indices))
        return original(p, indices, image_size)

    monkeypatch.setattr(pixels_module, "decode_batch", counting)
    consumed = 0
    for indices, pixels, _ in iter_pixel_batches(paths, 32, batch_size=2, prefetch=2):
        consumed += 1
        assert len(decoded) <= consumed + 1  # current batch + at most one ahead
        assert pixels.shape == (len(indices), 3, 32, 32)
    assert consumed == 6


def test_reader_yields_uint8_in_order_and_reports_unreadable_files(tmp_path) -> None:
    paths = write_photos(tmp_path, 5)
    paths[3].write_bytes(b"not a jpeg")
    batches = list(iter_pixel_batches(paths, 32, batch_size=2))
    assert [indices for indices, _, _ in batches] == [[0, 1], [2], [4]]
    assert all(pixels.dtype == np.uint8 and pixels.shape == (len(i), 3, 32, 32) for i, pixels, _ in batches)
    assert list(batches[1][2]) == [3] and batches[1][2][3].startswith("UnidentifiedImageError")
