"""int8 on the OpenVINO tower: calibrated on the caller's faces, its cosine to torch fp32 measured and
reported, cached; the loaded model it started from left as it was."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino", reason="openvino not installed (the `openvino` extra; `make test` installs it)")
pytest.importorskip("nncf", reason="nncf not installed (the `openvino` extra; `make test` installs it)")

import facestats_core.embedding.openvino_int8 as int8  # noqa: E402
from facestats_core.embedding.config import ClipConfig  # noqa: E402
from facestats_core.embedding.embed import embed_paths  # noqa: E402
from facestats_core.embedding.loader import load_clip  # noqa: E402
from facestats_core.embedding.pixels import iter_pixel_batches, normalize_pixels  # noqa: E402
from tests.conftest import write_photos  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_photos(tmp_path_factory.mktemp("ov-photos"), 24)


def _config(model: Path, cache: Path) -> ClipConfig:
    return ClipConfig(model=str(model), backend="openvino", precision="int8", cache_dir=str(cache), batch_size=8)


def test_int8_is_calibrated_on_the_callers_faces_and_reports_its_cosine(
    tiny_clip_dir, photos, tmp_path, monkeypatch
) -> None:
    clip = load_clip(_config(tiny_clip_dir, tmp_path))
    assert int8.needs_calibration(clip)
    assert not clip.recorded_precision.startswith("openvino-int8")  # not int8 until calibrated
    pending = clip.tower
    calibrated, report = int8.calibrate_from_paths(clip, photos, max_faces=20)
    assert report["faces"] == 20 and report["min_cosine"] == int8.MIN_INT8_COSINE == 0.999
    assert calibrated.recorded_precision == report["label"] and report["label"].startswith("openvino-int8:")
    assert calibrated.tower.precision == "int8" and not int8.needs_calibration(calibrated)
    assert clip.tower is pending and int8.needs_calibration(clip)  # a new loaded model; the given one unchanged
    embeddings = embed_paths(calibrated, photos, batch_size=8).embeddings
    assert np.isfinite(embeddings).all() and embeddings.shape == (len(photos), calibrated.dim)
    # the reported cosine is the true one: int8 against torch fp32 on the 20 calibration faces, measured here
    fp32 = embed_paths(load_clip(ClipConfig(model=str(tiny_clip_dir), precision="fp32", compile=False)),
                       photos[:20], batch_size=8).embeddings
    cosine = (embeddings[:20] * fp32).sum(axis=1)
    assert report["cosine_mean"] == pytest.approx(cosine.mean(), abs=1e-4)
    assert report["cosine_min"] == pytest.approx(cosine.min(), abs=1e-4)
    # and it clears the bar it is judged by (mean >= 0.999 on the calibration faces: "accurate")
    assert report["accurate"] and cosine.mean() >= int8.MIN_INT8_COSINE, report

    monkeypatch.setattr(int8, "quantize_ir", lambda *a, **k: pytest.fail("calibrated again"))
    again = load_clip(_config(tiny_clip_dir, tmp_path))  # the cached int8 IR and its report
    assert not int8.needs_calibration(again)
    assert again.recorded_precision == report["label"]
    assert again.tower.int8_report["cosine_mean"] == pytest.approx(report["cosine_mean"])
    # a model loaded before the IR was published (e.g. cached by the resource) adopts it without calibrating
    adopted, adopted_report = int8.calibrate_from_paths(clip, photos, max_faces=20)
    assert adopted.recorded_precision == report["label"]
    assert adopted_report["cosine_mean"] == pytest.approx(report["cosine_mean"])
    np.testing.assert_array_equal(embed_paths(adopted, photos, batch_size=8).embeddings, embeddings)


def test_calibration_refuses_the_loaders_uint8_batches() -> None:
    """The loader yields uint8 pixels; calibrating on them unnormalised would quantise for the wrong
    input range (and the cosine check, run on the same pixels, would not notice)."""
    with pytest.raises(TypeError, match="normalised float"):
        int8._collect([np.zeros((2, 3, 8, 8), dtype=np.uint8)], 4)
    assert len(int8._collect([np.zeros((3, 3, 8, 8), dtype=np.float32)], 2)) == 2


def test_int8_below_its_bar_is_reported_inaccurate_with_a_warning(tiny_clip_dir, photos, tmp_path, caplog) -> None:
    """The same calibration judged against an unreachable bar: `accurate` is false and a warning says BELOW."""
    clip = load_clip(_config(tiny_clip_dir, tmp_path))
    batches = (normalize_pixels(pixels, clip.mean, clip.std)
               for _, pixels, _ in iter_pixel_batches(photos[:8], clip.image_size, 8))
    with caplog.at_level(logging.WARNING, logger=int8.__name__):
        _, report = int8.quantize_int8(clip, batches, max_faces=8, min_cosine=1.0 + 1e-9)
    assert not report["accurate"] and report["cosine_mean"] < report["min_cosine"]
    assert any("BELOW" in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)


def test_quantize_int8_refuses_a_torch_tower(tiny_clip_dir) -> None:
    clip = load_clip(ClipConfig(model=str(tiny_clip_dir), precision="fp32"))
    assert not int8.needs_calibration(clip)
    with pytest.raises(ValueError, match="OpenVINO backend"):
        int8.quantize_int8(clip, [])
