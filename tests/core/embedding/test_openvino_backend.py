"""The OpenVINO image tower on the tiny CLIP: accuracy against torch fp32, int8 with its measured
cosine, the IR cache, conversion-failure fallback, and the never-mix rule of embed_manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("openvino", reason="openvino not installed (the `openvino` extra; `make test` installs it)")
pytest.importorskip("nncf", reason="nncf not installed (the `openvino` extra; `make test` installs it)")

import facestats_core.embedding.openvino_backend as ovb  # noqa: E402
from facestats_core.embedding.clip import ClipConfig, embed_manifest, embed_paths, load_clip  # noqa: E402
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
    assert clip.openvino is not None
    expected = "openvino-bf16" if precision == "bf16" and ovb.cpu_has_bf16() else "openvino-fp32"
    assert clip.recorded_precision == expected
    result = embed_paths(clip, photos, batch_size=8)
    assert result.embeddings.shape == fp32_reference.shape
    cosine = (result.embeddings * fp32_reference).sum(axis=1)
    assert cosine.min() >= 0.999, (precision, cosine.min())


def test_second_load_reuses_the_cached_ir(tiny_clip_dir, tmp_path, monkeypatch) -> None:
    first = load_clip(_config(tiny_clip_dir, tmp_path, "fp32"))
    assert first.openvino.converted
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.openvino.ir_dir.name]  # no staging left

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(ovb, "convert_image_tower", no_conversion)
    second = load_clip(_config(tiny_clip_dir, tmp_path, "bf16"))  # same IR, other compile hint
    assert second.openvino is not None and not second.openvino.converted
    assert second.openvino.ir_dir == first.openvino.ir_dir


def test_conversion_failure_falls_back_to_torch(tiny_clip_dir, tmp_path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(ovb, "convert_image_tower", broken)
    with pytest.warns(UserWarning, match="OpenVINO backend failed .*unsupported op"):
        clip = load_clip(_config(tiny_clip_dir, tmp_path, "bf16"))
    assert clip.openvino is None and clip.recorded_precision == "bf16"
    assert not list(tmp_path.iterdir())


def test_int8_is_calibrated_on_the_callers_faces_and_reports_its_cosine(
    tiny_clip_dir, photos, fp32_reference, tmp_path, monkeypatch
) -> None:
    clip = load_clip(_config(tiny_clip_dir, tmp_path, "int8"))
    assert ovb.needs_calibration(clip)
    assert not clip.recorded_precision.startswith("openvino-int8")  # not int8 until calibrated
    report = ovb.calibrate_from_paths(clip, photos, max_faces=20)
    assert report["faces"] == 20 and report["min_cosine"] == ovb.MIN_INT8_COSINE == 0.999
    assert clip.recorded_precision == report["label"] and report["label"].startswith("openvino-int8:")
    assert not ovb.needs_calibration(clip)
    embeddings = embed_paths(clip, photos, batch_size=8).embeddings
    assert np.isfinite(embeddings).all() and embeddings.shape == fp32_reference.shape
    # the reported cosine is the true one: int8 against torch fp32 on the 20 calibration faces, measured here
    fp32 = embed_paths(load_clip(ClipConfig(model=str(tiny_clip_dir), precision="fp32", compile=False)),
                       photos[:20], batch_size=8).embeddings
    cosine = (embeddings[:20] * fp32).sum(axis=1)
    assert report["cosine_mean"] == pytest.approx(cosine.mean(), abs=1e-4)
    assert report["cosine_min"] == pytest.approx(cosine.min(), abs=1e-4)
    # and it clears the bar it is judged by (mean >= 0.999 on the calibration faces: "accurate")
    assert report["accurate"] and cosine.mean() >= ovb.MIN_INT8_COSINE, report

    monkeypatch.setattr(ovb, "quantize_ir", lambda *a, **k: pytest.fail("calibrated again"))
    again = load_clip(_config(tiny_clip_dir, tmp_path, "int8"))  # the cached int8 IR and its report
    assert not ovb.needs_calibration(again)
    assert again.recorded_precision == report["label"]
    assert again.openvino.int8_report["cosine_mean"] == pytest.approx(report["cosine_mean"])


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


def test_calibration_refuses_the_loaders_uint8_batches() -> None:
    """The loader yields uint8 pixels; calibrating on them unnormalised would quantise for the wrong
    input range (and the cosine check, run on the same pixels, would not notice)."""
    from facestats_core.embedding.openvino_backend import _collect

    with pytest.raises(TypeError, match="normalised float"):
        _collect([np.zeros((2, 3, 8, 8), dtype=np.uint8)], 4)
    assert len(_collect([np.zeros((3, 3, 8, 8), dtype=np.float32)], 2)) == 2


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
    assert clip.openvino is not None
    parts = tmp_path / "parts"
    first, _, _ = embed_manifest(manifest, clip, 8, photos[0].parent, checkpoint=Checkpoint(parts, 8))
    again, stats, _ = embed_manifest(manifest, clip, 8, photos[0].parent, checkpoint=Checkpoint(parts, 8))
    assert stats.checkpoint_skipped == ()
    assert (stats.resumed, stats.embedded) == (len(photos), 0)
    assert again.equals(first)


def test_int8_below_its_bar_is_reported_inaccurate_with_a_warning(tiny_clip_dir, photos, tmp_path, caplog) -> None:
    """The same calibration judged against an unreachable bar: `accurate` is false and a warning says BELOW."""
    import logging

    from facestats_core.embedding.clip import iter_pixel_batches, normalize_pixels

    clip = load_clip(_config(tiny_clip_dir, tmp_path, "int8"))
    batches = (normalize_pixels(pixels, clip.mean, clip.std) for _, pixels, _ in iter_pixel_batches(photos[:8], clip, 8))
    with caplog.at_level(logging.WARNING, logger=ovb.__name__):
        report = ovb.quantize_int8(clip, batches, max_faces=8, min_cosine=1.0 + 1e-9)
    assert not report["accurate"] and report["cosine_mean"] < report["min_cosine"]
    assert any("BELOW" in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
