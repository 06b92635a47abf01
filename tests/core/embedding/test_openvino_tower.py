"""The OpenVINO image tower on the tiny CLIP: accuracy against torch fp32, the IR cache, conversion-failure
fallback, and the never-mix rule of embed_manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("openvino", reason="openvino not installed (the `openvino` extra; `make test` installs it)")
pytest.importorskip("nncf", reason="nncf not installed (the `openvino` extra; `make test` installs it)")

import facestats_core.embedding.openvino_tower as ovt  # noqa: E402
from facestats_core.embedding.config import ClipConfig, openvino_has_bf16  # noqa: E402
from facestats_core.embedding.embed import embed_paths  # noqa: E402
from facestats_core.embedding.loader import load_clip  # noqa: E402
from facestats_core.embedding.openvino_tower import OpenVinoTower  # noqa: E402
from facestats_core.embedding.table import embed_manifest  # noqa: E402
from tests.conftest import write_photos  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_photos(tmp_path_factory.mktemp("ov-photos"), 24)


@pytest.fixture(scope="module")
def fp32_reference(tiny_clip_dir: Path, photos: list[Path]) -> np.ndarray:
    return embed_paths(load_clip(ClipConfig(model=str(tiny_clip_dir))), photos, batch_size=8).embeddings


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ov-cache")


def _config(model: Path, cache: Path, precision: str, batch: int = 8) -> ClipConfig:
    return ClipConfig(model=str(model), backend="openvino", precision=precision,  # type: ignore[arg-type]
                      cache_dir=str(cache), batch_size=batch)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_matches_torch_fp32(tiny_clip_dir, photos, fp32_reference, cache_dir, precision) -> None:
    clip = load_clip(_config(tiny_clip_dir, cache_dir, precision, batch=7))  # 24 = 3 x 7 + a padded 3
    assert isinstance(clip.tower, OpenVinoTower) and clip.tower.backend == "openvino"
    expected = "openvino-bf16" if precision == "bf16" and openvino_has_bf16() else "openvino-fp32"
    assert clip.recorded_precision == clip.tower.label == expected
    result = embed_paths(clip, photos, batch_size=8)
    assert result.embeddings.shape == fp32_reference.shape
    cosine = (result.embeddings * fp32_reference).sum(axis=1)
    assert cosine.min() >= 0.999, (precision, cosine.min())


def test_second_load_reuses_the_cached_ir(tiny_clip_dir, tmp_path, monkeypatch) -> None:
    first = load_clip(_config(tiny_clip_dir, tmp_path, "fp32"))
    assert first.tower.converted
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.tower.ir_dir.name]  # no staging left

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(ovt, "convert_image_tower", no_conversion)
    second = load_clip(_config(tiny_clip_dir, tmp_path, "bf16"))  # same IR, other compile hint
    assert isinstance(second.tower, OpenVinoTower) and not second.tower.converted
    assert second.tower.ir_dir == first.tower.ir_dir


def test_conversion_failure_falls_back_to_torch(tiny_clip_dir, tmp_path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(ovt, "convert_image_tower", broken)
    with pytest.warns(UserWarning, match="OpenVINO backend failed .*unsupported op"):
        clip = load_clip(_config(tiny_clip_dir, tmp_path, "bf16"))
    assert clip.tower.backend == "torch" and clip.recorded_precision == "bf16"
    assert not list(tmp_path.iterdir())


def test_embeddings_of_another_backend_are_not_reused(tiny_clip_dir, photos, cache_dir) -> None:
    names = [p.name for p in photos[:4]]
    manifest = pl.DataFrame(
        {"face_id": names, "image_id": names, "path": names, "ok": [True] * 4, "chip_version": ["v"] * 4,
         "source_key": ["k"] * 4, "chip_path": names}
    )
    torch_clip = load_clip(ClipConfig(model=str(tiny_clip_dir)))
    first, _, _ = embed_manifest(manifest, torch_clip, 4, photos[0].parent)
    ov_clip = load_clip(_config(tiny_clip_dir, cache_dir, "fp32"))
    second, stats, _ = embed_manifest(manifest, ov_clip, 4, photos[0].parent, previous=first)
    assert (stats.reused, stats.embedded) == (0, 4)
    assert set(second["precision"]) == {"openvino-fp32"}
    _, stats, _ = embed_manifest(manifest, ov_clip, 4, photos[0].parent, previous=second)
    assert (stats.reused, stats.embedded) == (4, 0)


def test_a_killed_openvino_run_resumes_from_its_checkpoint_parts(tiny_clip_dir, photos, cache_dir, tmp_path) -> None:
    """Parts are keyed and checked by what the rows record (``openvino-…``), not by the torch model's
    own float32: otherwise every OpenVINO part is skipped as "another model" and nothing resumes."""
    from facestats_core.embedding.checkpoint import Checkpoint

    manifest = pl.DataFrame({"face_id": [f"f{i:02d}" for i in range(len(photos))],
                             "image_id": [f"i{i:02d}" for i in range(len(photos))],
                             "path": [p.name for p in photos], "ok": [True] * len(photos),
                             "chip_version": ["v"] * len(photos), "source_key": ["k"] * len(photos),
                             "chip_path": [p.name for p in photos]})
    clip = load_clip(_config(tiny_clip_dir, cache_dir, "bf16"))
    assert clip.tower.backend == "openvino"
    parts = tmp_path / "parts"
    first, _, _ = embed_manifest(manifest, clip, 8, photos[0].parent, checkpoint=Checkpoint(parts, 8))
    again, stats, _ = embed_manifest(manifest, clip, 8, photos[0].parent, checkpoint=Checkpoint(parts, 8))
    assert stats.checkpoint_skipped == ()
    assert (stats.resumed, stats.embedded) == (len(photos), 0)
    assert again.equals(first)
