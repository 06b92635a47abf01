from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

import facestats_core.embedding.clip as embedding
from facestats_core.embedding.clip import (
    ClipConfig,
    ClipLoadError,
    clip_pixels,
    embed_manifest,
    embed_paths,
    forward_batch,
    iter_pixel_batches,
    l2_normalize,
    load_clip,
    normalize_pixels,
)
from tests.conftest import write_photos


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir: Path):
    return load_clip(ClipConfig(model=str(tiny_clip_dir), precision="fp32"))  # exact numbers: not `auto`


def test_l2_normalize_rows_and_zero_rows() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-6)
    assert np.all(out[1] == 0)


def test_load_from_saved_folder_uses_its_processor_config(tiny_clip) -> None:
    assert tiny_clip.image_size == 32
    assert tiny_clip.dim == 16
    assert tiny_clip.model.training is False


def test_load_error_names_what_was_tried(tmp_path) -> None:
    missing = tmp_path / "no-such-clip"
    with pytest.raises(ClipLoadError) as raised:
        load_clip(ClipConfig(model=str(missing), local_files_only=True))
    message = str(raised.value)
    assert str(missing) in message and "FACESTATS_CLIP_MODEL" in message and "save_pretrained" in message


def test_pixels_match_transformers_processor(tiny_clip) -> None:
    try:
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    yy, xx = np.mgrid[0:48, 0:64]
    smooth = np.stack([127 + 100 * np.sin(xx / 6 + c) * np.cos(yy / 8) for c in range(3)], axis=-1)
    image = Image.fromarray(smooth.astype(np.uint8))
    processor = Processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    expected = processor(images=image, return_tensors="np")["pixel_values"][0]
    ours = clip_pixels(image, 32, tiny_clip.mean, tiny_clip.std)
    assert ours.shape == expected.shape == (3, 32, 32)
    # Same resize, crop and normalisation; only the bicubic kernels' rounding differs.
    assert np.abs(ours - expected).mean() < 0.1
    assert np.corrcoef(ours.ravel(), expected.ravel())[0, 1] > 0.99


def test_embeddings_are_unit_norm_and_batch_invariant(tiny_clip, tmp_path) -> None:
    paths = write_photos(tmp_path, 7)
    one = embed_paths(tiny_clip, paths, batch_size=1)
    many = embed_paths(tiny_clip, paths, batch_size=4)
    assert one.embeddings.shape == (7, 16) and one.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(one.embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(one.embeddings, many.embeddings, atol=1e-5)
    assert one.ok_indices == list(range(7))


def test_unreadable_file_is_reported_not_raised(tiny_clip, tmp_path) -> None:
    paths = write_photos(tmp_path, 3)
    paths[1].write_bytes(b"not a jpeg")
    result = embed_paths(tiny_clip, paths, batch_size=2)
    assert result.ok_indices == [0, 2]
    assert set(result.failures) == {1}
    assert result.embeddings.shape[0] == 2


def test_loader_never_holds_more_than_prefetch_batches(tiny_clip, tmp_path, monkeypatch) -> None:
    paths = write_photos(tmp_path, 12)
    decoded: list[int] = []
    original = embedding._decode_batch

    def counting(p, indices, clip):
        decoded.append(len(indices))
        return original(p, indices, clip)

    monkeypatch.setattr(embedding, "_decode_batch", counting)
    consumed = 0
    for indices, pixels, _ in iter_pixel_batches(paths, tiny_clip, batch_size=2, prefetch=2):
        consumed += 1
        assert len(decoded) <= consumed + 1  # current batch + at most one ahead
        assert pixels.shape == (len(indices), 3, 32, 32)
    assert consumed == 6


def test_loader_yields_uint8_and_the_model_side_normalisation_matches_float_pixels(tiny_clip, tmp_path) -> None:
    paths = write_photos(tmp_path, 5)
    (indices, pixels, _), = iter_pixel_batches(paths, tiny_clip, batch_size=8)
    assert pixels.dtype == np.uint8 and pixels.shape == (5, 3, 32, 32)
    float_pixels = normalize_pixels(pixels, tiny_clip.mean, tiny_clip.std)
    assert float_pixels.dtype == np.float32
    from_uint8 = forward_batch(tiny_clip, pixels)
    from_float = forward_batch(tiny_clip, float_pixels)
    assert np.abs(from_uint8 - from_float).max() < 1e-5 * max(1.0, np.abs(from_float).max())


def test_clip_pixels_is_the_uint8_crop_normalised() -> None:
    from facestats_core.embedding.clip import clip_pixels_uint8

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    mean, std = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)
    crop = clip_pixels_uint8(image, 32)
    assert crop.dtype == np.uint8 and crop.shape == (3, 32, 32)
    expected = (np.asarray(image.resize((45, 32), Image.Resampling.BICUBIC).crop((6, 0, 38, 32)), dtype=np.float32)
                / 255.0 - np.float32(mean)) / np.float32(std)
    np.testing.assert_allclose(clip_pixels(image, 32, mean, std), expected.transpose(2, 0, 1), atol=1e-5)


BF16_MIN_COSINE = 0.9999
"""README (`FACESTATS_CLIP_PRECISION`) and docs/performance.md: bf16 embeddings have cosine >= 0.9999 to fp32."""


def _bf16_vs_fp32(model_dir: Path, paths: list[Path]) -> np.ndarray:
    fp32 = embed_paths(load_clip(ClipConfig(model=str(model_dir), precision="fp32", compile=False)), paths).embeddings
    bf16 = embed_paths(load_clip(ClipConfig(model=str(model_dir), precision="bf16", compile=False)), paths).embeddings
    return (fp32 * bf16).sum(axis=1)


def test_bf16_is_close_to_fp32_on_the_tiny_clip(tiny_clip_dir, tmp_path) -> None:
    cosine = _bf16_vs_fp32(tiny_clip_dir, write_photos(tmp_path, 6))
    assert cosine.min() >= BF16_MIN_COSINE, cosine


@pytest.mark.e2e  # a 224 px ViT-B/32 image tower (random weights): ~30 s of CPU
def test_bf16_meets_the_documented_cosine_on_the_vit_b32_architecture(tmp_path) -> None:
    """The claim at the real architecture's size (12 layers of width 768, where bf16 rounding
    accumulates), on real photos and smooth synthetic ones."""
    from facestats_demo.random_clip import build_random_clip
    from tests.core.faces.photos import VENDORED, grace_hopper

    model = build_random_clip(tmp_path / "vit-b-32", preset="vit-b-32-image", seed=0)
    paths = [VENDORED / "astronaut.jpg", VENDORED / "coffee.jpg", grace_hopper(),
             *write_photos(tmp_path / "photos", 3, size=(224, 224))]
    cosine = _bf16_vs_fp32(model, paths)
    assert cosine.min() >= BF16_MIN_COSINE, cosine


def test_manifest_embedding_reuses_previous_rows(tiny_clip, tmp_path, monkeypatch) -> None:
    paths = write_photos(tmp_path, 5)
    manifest = pl.DataFrame(
        {
            "face_id": [f"id{i}_500_500" for i in range(5)],
            "image_id": [f"id{i}" for i in range(5)],
            "path": [p.name for p in paths],
            "ok": [True, True, True, True, False],
            "chip_version": ["v"] * 5,
            "source_key": ["k"] * 5,
            "chip_path": [p.name for p in paths],
        }
    )
    calls: list[int] = []
    original = embedding.forward_batch
    monkeypatch.setattr(embedding, "forward_batch", lambda c, x: calls.append(len(x)) or original(c, x))
    first, stats, failures = embed_manifest(manifest[:3], tiny_clip, 8, tmp_path)
    assert stats.embedded == 3 and sum(calls) == 3 and not failures
    second, stats, _ = embed_manifest(manifest, tiny_clip, 8, tmp_path, previous=first)
    assert sum(calls) == 4  # only the one new ok image reached the model
    assert stats.reused == 3 and stats.embedded == 1
    assert second["image_id"].to_list() == ["id0", "id1", "id2", "id3"]
    assert second["face_id"].to_list() == [f"id{i}_500_500" for i in range(4)]
    assert second.schema["embedding"] == pl.Array(pl.Float32, 16)
    np.testing.assert_array_equal(
        np.stack(second["embedding"].to_list()[:3]), np.stack(first["embedding"].to_list())
    )
    recut = manifest.with_columns(pl.when(pl.col("face_id") == "id1_500_500").then(pl.lit("k2"))
                                  .otherwise(pl.col("source_key")).alias("source_key"))
    _, stats, _ = embed_manifest(recut, tiny_clip, 8, tmp_path, previous=second)
    assert (stats.reused, stats.embedded) == (3, 1)  # the chip cut again from a changed box: embedded again


def test_other_weights_under_the_same_name_are_not_reused(tmp_path) -> None:
    from facestats_demo.random_clip import build_random_clip

    paths = write_photos(tmp_path / "img", 3)
    manifest = pl.DataFrame(
        {"face_id": ["a_1", "b_1", "c_1"], "image_id": ["a", "b", "c"], "path": [p.name for p in paths],
         "ok": [True] * 3, "chip_version": ["v"] * 3, "source_key": ["k"] * 3, "chip_path": [p.name for p in paths]}
    )
    model_dir = tmp_path / "clip"
    build_random_clip(model_dir, preset="tiny", seed=0)
    first, _, _ = embed_manifest(manifest, load_clip(ClipConfig(model=str(model_dir))), 4, tmp_path / "img")
    build_random_clip(model_dir, preset="tiny", seed=1)  # retrained / replaced weights, same folder
    second, stats, _ = embed_manifest(
        manifest, load_clip(ClipConfig(model=str(model_dir))), 4, tmp_path / "img", previous=first
    )
    assert stats.reused == 0 and stats.embedded == 3
    assert first["model_revision"][0] != second["model_revision"][0]
    assert first["model_revision"][0].startswith("sha256:")
