from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageFilter

from facestats_core.images.preprocess import PreprocessConfig, laplacian_variance, preprocess_manifest, square_resize
from facestats_core.images.scan import scan_shards
from facestats_core.io.hashing import shard_keys


def _raw_manifest(raw):
    manifests, _ = scan_shards(raw, shard_keys(1), 1)
    return manifests["00"]


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


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="size"):
        PreprocessConfig(size=8)


def test_manifest_keeps_unreadable_and_is_incremental(raw_folder, tmp_path) -> None:
    raw = _raw_manifest(raw_folder)
    out = tmp_path / "preproc"
    config = PreprocessConfig(size=64)
    first, stats = preprocess_manifest(raw, raw_folder, out, config)
    assert first.height == raw.height  # no silent loss
    assert stats.failed == int((~raw["readable"]).sum())
    assert first.filter(~pl.col("ok"))["flags"].to_list() == [["unreadable"]] * stats.failed
    for row in first.filter(pl.col("ok")).iter_rows(named=True):
        with Image.open(out / row["output_path"]) as image:
            assert image.size == (64, 64) and image.mode == "RGB"

    second, stats2 = preprocess_manifest(raw, raw_folder, out, config, previous=first)
    assert stats2.processed == 0 and stats2.reused == raw.height
    assert second.sort("image_id").equals(first.sort("image_id"))

    third, stats3 = preprocess_manifest(raw, raw_folder, out, PreprocessConfig(size=48), previous=first)
    assert stats3.processed == stats.processed  # other settings: redone


def test_deleted_output_is_redone(raw_folder, tmp_path) -> None:
    raw = _raw_manifest(raw_folder)
    out = tmp_path / "preproc"
    first, _ = preprocess_manifest(raw, raw_folder, out, PreprocessConfig(size=64))
    victim = first.filter(pl.col("ok"))["output_path"][0]
    (out / victim).unlink()
    _, stats = preprocess_manifest(raw, raw_folder, out, PreprocessConfig(size=64), previous=first)
    assert stats.processed == 1
    assert (out / victim).exists()


def test_tiny_images_are_flagged(tmp_path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(raw / "tiny.png")
    result, _ = preprocess_manifest(_raw_manifest(raw), raw, tmp_path / "out", PreprocessConfig(size=64))
    assert result["flags"][0].to_list() == ["tiny", "blurry"]


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
