"""The torch image tower: model-side normalisation, bf16 against fp32, and `compile`: torch.compile only
for jobs large enough to repay its start-up, any failure falling back to eager."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import facestats_core.embedding.config as config
import facestats_core.embedding.torch_tower as torch_tower
from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.embed import embed_paths
from facestats_core.embedding.loader import load_clip
from facestats_core.embedding.pixels import iter_pixel_batches, normalize_pixels
from tests.conftest import write_photos


@pytest.fixture
def clip_factory(tiny_clip_dir):
    def make(compile=False, precision="fp32"):
        return load_clip(ClipConfig(model=str(tiny_clip_dir), precision=precision, compile=compile))

    return make


def test_uint8_pixels_normalised_in_the_model_match_float_pixels(clip_factory, tmp_path) -> None:
    clip = clip_factory()
    (indices, pixels, _), = iter_pixel_batches(write_photos(tmp_path, 5), clip.image_size, batch_size=8)
    float_pixels = normalize_pixels(pixels, clip.mean, clip.std)
    assert float_pixels.dtype == np.float32
    from_uint8 = clip.tower.embed(pixels)
    from_float = clip.tower.embed(float_pixels)
    assert from_uint8.shape == (5, clip.dim) and from_uint8.dtype == np.float32
    assert np.abs(from_uint8 - from_float).max() < 1e-5 * max(1.0, np.abs(from_float).max())


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


def _fake_compile(calls: list[int]):
    """Stands in for torch.compile: records the call, returns the eager module."""

    def compile_module(module):
        calls.append(1)
        return module

    return compile_module


def test_auto_compiles_only_jobs_from_the_threshold_on(clip_factory, tmp_path, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(torch_tower, "_compile_module", _fake_compile(calls))
    monkeypatch.setattr(config, "COMPILE_MIN_IMAGES", 4)
    paths = write_photos(tmp_path, 4)
    clip = clip_factory("auto")
    small = embed_paths(clip, paths[:3], batch_size=2)
    assert not calls and clip.tower.compiled is None
    large = embed_paths(clip, paths, batch_size=2)
    assert calls == [1] and clip.tower.compiled is not None and clip.tower.compiled_batch == 2
    np.testing.assert_allclose(large.embeddings[:3], small.embeddings, atol=1e-5)
    embed_paths(clip, paths, batch_size=2)
    assert calls == [1]  # compiled once per loaded model
    never = clip_factory(False)
    embed_paths(never, paths, batch_size=2)
    assert calls == [1] and never.tower.compiled is None


class _Broken:
    """A compiled tower whose first call fails, as inductor does without a C compiler."""

    def __call__(self, tensor):
        raise RuntimeError("inductor: no working C++ compiler found")


@pytest.mark.parametrize("where", ["compile", "first_call"])
def test_a_failed_compilation_falls_back_to_eager(clip_factory, tmp_path, monkeypatch, caplog, where) -> None:
    paths = write_photos(tmp_path, 5)
    expected = embed_paths(clip_factory(False), paths, batch_size=2)

    def compile_module(module):
        if where == "compile":
            raise RuntimeError("torch.compile is not supported here")
        return _Broken()

    monkeypatch.setattr(torch_tower, "_compile_module", compile_module)
    clip = clip_factory(True)
    with caplog.at_level(logging.WARNING, logger=torch_tower.__name__):
        result = embed_paths(clip, paths, batch_size=2)
    assert result.ok_indices == list(range(5))
    np.testing.assert_allclose(result.embeddings, expected.embeddings, atol=1e-6)
    assert clip.tower.compiled is None and "RuntimeError" in (clip.tower.compile_error or "")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "eager" in r.getMessage()]
    assert len(warnings) == 1  # once, not per batch
    embed_paths(clip, paths, batch_size=2)  # no second attempt after a failure
    assert clip.tower.compile_error is not None and clip.tower.compiled is None


@pytest.mark.e2e  # a real inductor compilation: ~40 s of CPU with a cold cache
def test_real_compilation_of_the_tiny_tower_matches_eager_and_restores_the_inductor_flag(
    clip_factory, tmp_path
) -> None:
    """torch.compile for real (inductor, frozen weights) on the tiny CLIP, fp32: the compiled tower's
    embeddings equal eager ones (cosine >= 0.9999, the bar README sets for bf16 against fp32; here both
    are fp32, so it must hold easily), the padded last batch included; the global `freezing` flag is
    on only while the compiled tower runs."""
    import torch._inductor.config as inductor_config
    from torch._dynamo.utils import counters

    paths = write_photos(tmp_path, 5)
    eager = embed_paths(clip_factory(False), paths, batch_size=2)
    assert inductor_config.freezing is False
    graphs = counters["stats"]["unique_graphs"]
    clip = clip_factory(True)
    compiled = embed_paths(clip, paths, batch_size=2)  # batches of 2, 2 and 1 (padded to 2)
    assert clip.tower.compile_error is None and clip.tower.compiled is not None  # compiled, not fallen back
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo traced the tower
    assert inductor_config.freezing is False  # restored
    assert compiled.ok_indices == eager.ok_indices == list(range(5))
    cosine = (compiled.embeddings * eager.embeddings).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine
    np.testing.assert_allclose(compiled.embeddings, eager.embeddings, atol=1e-4)
