"""The regressor's files: weights_only tensors + JSON through the model store, one save, one load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from facestats_core.attractiveness.estimator import AttractivenessRegressor  # noqa: E402
from facestats_core.attractiveness.model_file import load_regressor, save_regressor  # noqa: E402
from facestats_core.models.store import ModelIntegrityError  # noqa: E402
from tests.core.synthetic import planted_ratings as _planted  # noqa: E402
from tests.core.synthetic import small_regressor  # noqa: E402


@pytest.fixture(scope="module")
def model() -> AttractivenessRegressor:
    fitted = small_regressor(cv_folds=3)
    fitted.trained_on, fitted.fingerprint = "analysed", "f" * 64
    return fitted


def test_save_load_round_trip_weights_only(tmp_path: Path, model: AttractivenessRegressor) -> None:
    paths = save_regressor(model, tmp_path)
    assert paths.weights == tmp_path.resolve() / "attractiveness_regressor.pt"
    payload = torch.load(paths.weights, weights_only=True)
    assert {"target_mean", "target_std"} <= payload.keys()
    meta = json.loads(paths.metadata.read_text())
    assert meta["weights_sha256"] == paths.sha256 and meta["weights_file"] == "attractiveness_regressor.pt"
    assert meta["data_hash"] == model.data_hash_ and meta["config"]["hidden"] == [16]
    assert meta["metrics"]["mean_baseline"]["pearson_r"] is None  # NaN is stored as null
    assert meta["n_test"] == 32 and meta["cross_validation"]["k"] == 3
    assert (meta["trained_on"], meta["training_fingerprint"]) == ("analysed", "f" * 64)
    loaded = load_regressor(tmp_path)
    X, _ = _planted(50, 8, seed=9)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert json.dumps(loaded.evaluation.to_dict()) == json.dumps(model.evaluation.to_dict())  # type: ignore[union-attr]
    assert (loaded.trained_on, loaded.fingerprint, loaded.epochs_run_, loaded.best_epoch_, loaded.data_hash_) == (
        "analysed", "f" * 64, model.epochs_run_, model.best_epoch_, model.data_hash_)
    assert abs(float(np.mean(loaded.predict(X))) - 3.0) < 1.0  # rating scale, not standardised
    assert payload["cv_predictions"].shape == (160,)
    assert np.array_equal(loaded.cv_predictions_, model.cv_predictions_) and np.isfinite(model.cv_predictions_).all()


def test_cv_predictions_of_another_length_are_refused(tmp_path: Path, model: AttractivenessRegressor) -> None:
    paths = save_regressor(model, tmp_path)
    payload = torch.load(paths.weights, weights_only=True)
    payload["cv_predictions"] = payload["cv_predictions"][:-1]
    torch.save(payload, paths.weights)
    meta = json.loads(paths.metadata.read_text())
    meta["weights_sha256"] = hashlib.sha256(paths.weights.read_bytes()).hexdigest()
    paths.metadata.write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match=r"cv_predictions has shape \(159,\)"):
        load_regressor(tmp_path)


def test_a_model_without_cross_validation_stores_no_cv_predictions(tmp_path: Path) -> None:
    plain = small_regressor(cv_folds=0)
    payload = torch.load(save_regressor(plain, tmp_path).weights, weights_only=True)
    assert "cv_predictions" not in payload and len(load_regressor(tmp_path).cv_predictions_) == 0


def test_a_loaded_model_saves_the_same_record(tmp_path: Path, model: AttractivenessRegressor) -> None:
    first = save_regressor(model, tmp_path / "a")
    again = save_regressor(load_regressor(tmp_path / "a"), tmp_path / "b")
    assert again.sha256 == first.sha256  # the same tensors, byte for byte
    assert json.loads(again.metadata.read_text()) == json.loads(first.metadata.read_text())
    assert np.array_equal(load_regressor(tmp_path / "b").predict(np.ones((3, 8), np.float32)),
                          model.predict(np.ones((3, 8), np.float32)))


def test_an_unfitted_model_is_not_saved(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unfitted"):
        save_regressor(AttractivenessRegressor(), tmp_path)


def test_malformed_metrics_are_refused_in_one_line(tmp_path: Path, model: AttractivenessRegressor) -> None:
    paths = save_regressor(model, tmp_path)
    meta = json.loads(paths.metadata.read_text())
    del meta["metrics"]["ridge"]
    paths.metadata.write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match="bad 'metrics'"):
        load_regressor(tmp_path)


def test_tampered_weights_refused(tmp_path: Path, model: AttractivenessRegressor) -> None:
    paths = save_regressor(model, tmp_path, name="reg")
    blob = bytearray(paths.weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    paths.weights.write_bytes(bytes(blob))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_regressor(tmp_path, name="reg")


def test_unsafe_names_and_missing_files(tmp_path: Path, model: AttractivenessRegressor) -> None:
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="invalid regressor name"):
            save_regressor(model, tmp_path, name=bad)
    (tmp_path / "link.pt").symlink_to(tmp_path.parent / "outside.pt")
    with pytest.raises(ValueError, match="outside the model root"):
        load_regressor(tmp_path, name="link")
    with pytest.raises(FileNotFoundError, match="absent.json"):
        load_regressor(tmp_path, name="absent")
