"""`compile=auto`: torch.compile only for jobs large enough to repay its start-up; any failure falls back to eager."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import facestats_core.embedding.clip as embedding
from facestats_core.embedding.clip import (
    COMPILE_MIN_IMAGES,
    ClipConfig,
    embed_paths,
    load_clip,
    parse_compile,
    should_compile,
)
from tests.conftest import write_photos


@pytest.mark.parametrize(("text", "expected"), [("auto", "auto"), ("AUTO", "auto"), ("1", True), ("true", True),
                                                ("0", False), ("off", False), (True, True), (False, False)])
def test_parse_compile(text, expected) -> None:
    assert parse_compile(text) == expected
    assert ClipConfig(compile=text).compile == expected


def test_bad_compile_value_names_the_setting() -> None:
    with pytest.raises(ValueError, match="FACESTATS_CLIP_COMPILE"):
        ClipConfig(compile="sometimes")  # type: ignore[arg-type]


def test_auto_is_the_default_and_compiles_from_the_threshold_on() -> None:
    assert ClipConfig().compile == "auto"
    assert not should_compile("auto", COMPILE_MIN_IMAGES - 1)
    assert should_compile("auto", COMPILE_MIN_IMAGES)
    assert should_compile("auto", 10_000)  # the 10k-image job of docs/performance.md compiles
    assert should_compile(True, 1) and not should_compile(False, 10**6)


@pytest.fixture
def clip_factory(tiny_clip_dir):
    def make(compile):
        return load_clip(ClipConfig(model=str(tiny_clip_dir), precision="fp32", compile=compile))

    return make


def _fake_compile(calls: list[int]):
    """Stands in for torch.compile: records the call, returns the eager tower."""

    def compile_tower(clip):
        calls.append(1)
        return embedding._tower(clip)

    return compile_tower


def test_auto_compiles_only_jobs_from_the_threshold_on(clip_factory, tmp_path, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(embedding, "_compile_image_tower", _fake_compile(calls))
    monkeypatch.setattr(embedding, "COMPILE_MIN_IMAGES", 4)
    paths = write_photos(tmp_path, 4)
    clip = clip_factory("auto")
    small = embed_paths(clip, paths[:3], batch_size=2)
    assert not calls and clip.compiled is None
    large = embed_paths(clip, paths, batch_size=2)
    assert calls == [1] and clip.compiled is not None and clip.compiled_batch == 2
    np.testing.assert_allclose(large.embeddings[:3], small.embeddings, atol=1e-5)
    embed_paths(clip, paths, batch_size=2)
    assert calls == [1]  # compiled once per loaded model
    never = clip_factory(False)
    embed_paths(never, paths, batch_size=2)
    assert calls == [1] and never.compiled is None


class _Broken:
    """A compiled tower whose first call fails, as inductor does without a C compiler."""

    def __call__(self, tensor):
        raise RuntimeError("inductor: no working C++ compiler found")


@pytest.mark.parametrize("where", ["compile", "first_call"])
def test_a_failed_compilation_falls_back_to_eager(clip_factory, tmp_path, monkeypatch, caplog, where) -> None:
    paths = write_photos(tmp_path, 5)
    expected = embed_paths(clip_factory(False), paths, batch_size=2)

    def compile_tower(clip):
        if where == "compile":
            raise RuntimeError("torch.compile is not supported here")
        return _Broken()

    monkeypatch.setattr(embedding, "_compile_image_tower", compile_tower)
    clip = clip_factory(True)
    with caplog.at_level(logging.WARNING, logger=embedding.__name__):
        result = embed_paths(clip, paths, batch_size=2)
    assert result.ok_indices == list(range(5))
    np.testing.assert_allclose(result.embeddings, expected.embeddings, atol=1e-6)
    assert clip.compiled is None and "RuntimeError" in (clip.compile_error or "")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "eager" in r.getMessage()]
    assert len(warnings) == 1  # once, not per batch
    embed_paths(clip, paths, batch_size=2)  # no second attempt after a failure
    assert clip.compile_error is not None and clip.compiled is None


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
    assert clip.compile_error is None and clip.compiled is not None  # compiled, not fallen back to eager
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo traced the tower
    assert inductor_config.freezing is False  # restored
    assert compiled.ok_indices == eager.ok_indices == list(range(5))
    cosine = (compiled.embeddings * eager.embeddings).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine
    np.testing.assert_allclose(compiled.embeddings, eager.embeddings, atol=1e-4)
