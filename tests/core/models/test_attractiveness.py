"""The attractiveness MLP: training, splits, cross-validation, persistence (small, CPU, a few seconds)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

torch = pytest.importorskip("torch")

from facestats_core.models.cross_validation import cross_validate  # noqa: E402
from facestats_core.models.regressor import (  # noqa: E402
    MLPConfig,
    TrainedRegressor,
    TrainResult,
    build_regressor,
    load_regressor,
    predict_scores,
    regressor_from_result,
    save_regressor,
    save_trained_regressor,
    train_regressor,
)
from facestats_core.models.splits import data_hash, kfold_indices, split_three  # noqa: E402
from facestats_core.models.store import ModelIntegrityError  # noqa: E402
from facestats_core.models.training_data import assemble_training_data  # noqa: E402
from tests.core.synthetic import planted_ratings as _planted  # noqa: E402
from tests.core.synthetic import small_mlp_config, small_training_result  # noqa: E402

SMALL = small_mlp_config()


@pytest.fixture(scope="module")
def small_result() -> TrainResult:
    return small_training_result()


def test_build_regressor_shape() -> None:
    model = build_regressor(MLPConfig(input_dim=12, hidden=(7, 5)))
    assert model(torch.zeros(3, 12)).shape == (3, 1)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 7), (7, 5), (5, 1)]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        MLPConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="test_fraction"):
        MLPConfig(test_fraction=0.0)
    assert MLPConfig.from_dict({"hidden": [4, 2], "input_dim": 3}).hidden == (4, 2)


def test_recovers_planted_signal_and_beats_baseline() -> None:
    X, y = _planted(800, 32)
    config = MLPConfig(input_dim=32, hidden=(64, 16), max_epochs=60, patience=10, batch_size=64)
    result = train_regressor(X, y, config)
    m = result.metrics
    assert (result.n_train, result.n_val, result.n_test) == (544, 96, 160)
    assert (m.n_train, m.n_val, m.n_test) == (544, 96, 160)
    assert len(result.test_indices) == 160 and len(set(result.test_indices.tolist())) == 160
    assert m.mlp.pearson_r > 0.85
    assert m.mlp.rmse < 0.8 * m.mean_baseline.rmse
    assert m.mlp.mae < m.mean_baseline.mae
    assert math.isnan(m.mean_baseline.pearson_r)
    assert m.ridge.pearson_r > 0.9  # linear target: ridge is a strong baseline
    assert 1 <= result.best_epoch <= result.epochs_run <= 60
    assert abs(result.target_mean - 3.0) < 0.2


def test_three_way_split_is_a_partition() -> None:
    train, val, test = split_three(100, MLPConfig(test_fraction=0.2, val_fraction=0.25, seed=3))
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(100))
    for part in (train, val, test):
        assert np.array_equal(part, np.sort(part))
    assert len(split_three(6, MLPConfig())[2]) == 2


def test_test_rows_are_unseen_by_every_model() -> None:
    """Changing only the targets of the held-out test rows must not change the fitted MLP,
    the ridge alpha or the epoch chosen: no model may see or select on them."""
    X, y = _planted(200, 8, seed=2)
    result = train_regressor(X, y, SMALL)
    y2 = y.copy()
    y2[result.test_indices] += np.random.default_rng(9).normal(0, 3, len(result.test_indices))
    again = train_regressor(X, y2, SMALL)
    assert all(torch.equal(result.state_dict[k], again.state_dict[k]) for k in result.state_dict)
    assert (again.best_epoch, again.metrics.ridge_alpha) == (result.best_epoch, result.metrics.ridge_alpha)
    assert again.metrics.mlp.rmse != result.metrics.mlp.rmse  # ...while the metrics use them
    # The early-stopping rows, in contrast, do steer training.
    y3 = y.copy()
    y3[result.val_indices] = 3.0 + np.random.default_rng(9).normal(0, 3, len(result.val_indices))
    moved = train_regressor(X, y3, replace(SMALL, max_epochs=30, patience=30))
    assert not all(torch.equal(result.state_dict[k], moved.state_dict[k]) for k in result.state_dict)


def test_kfold_indices_partition_and_validation() -> None:
    folds = kfold_indices(23, 5, seed=0)
    assert [len(f) for f in folds] == [5, 5, 5, 4, 4]
    assert sorted(np.concatenate(folds).tolist()) == list(range(23))
    assert all(np.array_equal(a, b) for a, b in zip(folds, kfold_indices(23, 5, seed=0), strict=True))
    with pytest.raises(ValueError, match="5-fold"):
        kfold_indices(14, 5, seed=0)
    with pytest.raises(ValueError, match="k >= 2"):
        kfold_indices(100, 1, seed=0)


def test_cross_validation_tests_every_row_once_and_finds_the_signal() -> None:
    X, y = _planted(300, 8, seed=5)
    config = MLPConfig(input_dim=8, hidden=(32,), max_epochs=60, patience=10, batch_size=32)
    cv = cross_validate(X, y, config, k=5)
    assert len(cv.folds) == 5
    assert sum(f.n_test for f in cv.folds) == 300
    assert all(f.n_train + f.n_val + f.n_test == 300 for f in cv.folds)
    assert cv.summary("mlp", "pearson_r").mean > 0.85
    assert cv.mlp_wins("mean_baseline") == 5
    rmse = [f.mlp.rmse for f in cv.folds]
    assert cv.summary("mlp", "rmse").mean == pytest.approx(np.mean(rmse))
    assert cv.summary("mlp", "rmse").std == pytest.approx(np.std(rmse, ddof=1))
    diffs = [f.mlp.rmse - f.ridge.rmse for f in cv.folds]
    assert cv.mlp_minus_ridge_rmse().mean == pytest.approx(np.mean(diffs))
    assert math.isnan(cv.summary("mean_baseline", "pearson_r").mean)  # constant predictions
    again = cross_validate(X, y, config, k=5)
    assert json.dumps(again.to_dict()) == json.dumps(cv.to_dict())  # deterministic


def test_early_stopping_stops_before_max_epochs() -> None:
    X = np.random.default_rng(3).standard_normal((120, 8)).astype(np.float32)
    y = np.random.default_rng(4).uniform(1, 5, 120)  # pure noise: no improvement to find
    config = replace(SMALL, max_epochs=200, patience=3, lr=1e-2)
    result = train_regressor(X, y, config)
    assert result.epochs_run < 200
    assert result.epochs_run - result.best_epoch == 3


def test_deterministic_same_seed_and_differs_by_seed(small_result: TrainResult) -> None:
    X, y = _planted(160, 8, seed=1)
    again = train_regressor(X, y, SMALL)
    assert small_result.state_dict.keys() == again.state_dict.keys()
    assert all(torch.equal(small_result.state_dict[k], again.state_dict[k]) for k in again.state_dict)
    assert np.array_equal(small_result.test_indices, again.test_indices)
    other = train_regressor(X, y, replace(SMALL, seed=1))
    assert not all(torch.equal(small_result.state_dict[k], other.state_dict[k]) for k in other.state_dict)
    assert not np.array_equal(small_result.test_indices, other.test_indices)


def test_global_torch_state_restored() -> None:
    before_flag = torch.are_deterministic_algorithms_enabled()
    before_rng = torch.get_rng_state()
    X, y = _planted(40, 8)
    train_regressor(X, y, replace(SMALL, max_epochs=1))
    assert torch.are_deterministic_algorithms_enabled() == before_flag
    assert torch.equal(torch.get_rng_state(), before_rng)


def test_input_validation() -> None:
    X, y = _planted(40, 8)
    with pytest.raises(ValueError, match="input_dim"):
        train_regressor(X, y, replace(SMALL, input_dim=9))
    y_bad = y.copy()
    y_bad[0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        train_regressor(X, y_bad, SMALL)
    with pytest.raises(ValueError, match="at least 6"):
        train_regressor(X[:5], y[:5], SMALL)


def test_data_hash_sensitive_to_data() -> None:
    X, y = _planted(20, 8)
    assert data_hash(X, y) == data_hash(X.copy(), y.copy())
    y2 = y.copy()
    y2[5] += 0.01
    assert data_hash(X, y) != data_hash(X, y2)


def test_assemble_training_data_orders_by_face_id() -> None:
    emb = pl.DataFrame(
        {"face_id": ["b", "a", "c"], "embedding": [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]},
        schema={"face_id": pl.Utf8, "embedding": pl.Array(pl.Float32, 2)},
    )
    ratings = pl.DataFrame({"face_id": ["c", "a"], "path": ["c.jpg", "a.jpg"], "score": [4.0, 2.0]})
    data = assemble_training_data(emb, ratings)
    assert data.face_ids == ["a", "c"]
    assert data.X.dtype == np.float32 and data.X.shape == (2, 2)
    assert np.allclose(data.X, [[0.0, 1.0], [0.6, 0.8]]) and data.y.tolist() == [2.0, 4.0]


def test_save_load_round_trip_weights_only(tmp_path: Path, small_result: TrainResult) -> None:
    paths = save_regressor(small_result, tmp_path)
    assert paths.weights == tmp_path.resolve() / "attractiveness_regressor.pt"
    payload = torch.load(paths.weights, weights_only=True)
    assert {"target_mean", "target_std"} <= payload.keys()
    meta = json.loads(paths.metadata.read_text())
    assert meta["data_hash"] == small_result.data_hash
    assert meta["config"]["hidden"] == [16]
    assert meta["metrics"]["mean_baseline"]["pearson_r"] is None  # NaN is stored as null
    assert meta["n_test"] == small_result.n_test == 32 and "cross_validation" not in meta
    loaded = load_regressor(tmp_path)
    X, _ = _planted(50, 8, seed=9)
    in_memory = predict_scores(regressor_from_result(small_result), X)
    from_disk = predict_scores(loaded, X)
    assert from_disk.dtype == np.float64 and from_disk.shape == (50,)
    assert np.array_equal(in_memory, from_disk)
    # batching changes float summation order only, not the result beyond rounding
    assert np.allclose(predict_scores(loaded, X, batch_size=7), from_disk, rtol=0, atol=1e-6)
    assert abs(float(np.mean(from_disk)) - 3.0) < 1.0  # rating scale, not standardised


def test_cross_validation_saved_with_the_model(tmp_path: Path, small_result: TrainResult) -> None:
    X, y = _planted(160, 8, seed=1)
    cv = cross_validate(X, y, SMALL, k=4)
    paths = save_regressor(small_result, tmp_path, cross_validation=cv)
    meta = json.loads(paths.metadata.read_text())
    assert meta["cross_validation"]["k"] == 4 and len(meta["cross_validation"]["folds"]) == 4
    assert meta["cross_validation"]["summary"]["mlp"]["rmse"]["mean"] == pytest.approx(cv.summary("mlp", "rmse").mean)
    assert load_regressor(tmp_path).metadata["cross_validation"]["mlp_wins_vs_ridge"] == cv.mlp_wins("ridge")


def test_tampered_weights_refused(tmp_path: Path, small_result: TrainResult) -> None:
    paths = save_regressor(small_result, tmp_path, name="reg")
    blob = bytearray(paths.weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    paths.weights.write_bytes(bytes(blob))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_regressor(tmp_path, name="reg")


def test_unsafe_names_and_missing_files(tmp_path: Path, small_result: TrainResult) -> None:
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="invalid regressor name"):
            save_regressor(small_result, tmp_path, name=bad)
    (tmp_path / "link.pt").symlink_to(tmp_path.parent / "outside.pt")
    with pytest.raises(ValueError, match="outside the model root"):
        load_regressor(tmp_path, name="link")
    with pytest.raises(FileNotFoundError, match="absent.json"):
        load_regressor(tmp_path, name="absent")


def test_predict_rejects_wrong_dim(small_result: TrainResult) -> None:
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        predict_scores(regressor_from_result(small_result), np.zeros((2, 5), dtype=np.float32))


def test_save_trained_regressor_writes_result_and_cv(tmp_path: Path, small_result: TrainResult) -> None:
    X, y = _planted(160, 8, seed=1)
    cv = cross_validate(X, y, SMALL, k=3)
    stored = save_trained_regressor(TrainedRegressor(result=small_result, cross_validation=cv), tmp_path)
    meta = json.loads(stored.metadata.read_text())
    assert stored.weights == tmp_path.resolve() / "attractiveness_regressor.pt"
    assert meta["weights_sha256"] == stored.sha256 and meta["weights_file"] == "attractiveness_regressor.pt"
    assert meta["cross_validation"]["k"] == 3 and meta["data_hash"] == small_result.data_hash
    assert stored.to_dict()["model_path"] == str(stored.weights)
