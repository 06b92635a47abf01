"""The estimator: fit / predict / evaluation, held-out rows unseen, deterministic per seed."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from facestats_core.attractiveness.estimator import AttractivenessRegressor  # noqa: E402
from facestats_core.attractiveness.training import MLPConfig  # noqa: E402
from tests.core.synthetic import planted_ratings as _planted  # noqa: E402
from tests.core.synthetic import small_mlp_config, small_regressor  # noqa: E402

SMALL = small_mlp_config()


def _same_weights(a: AttractivenessRegressor, b: AttractivenessRegressor) -> bool:
    return a.state_dict_.keys() == b.state_dict_.keys() and all(
        torch.equal(a.state_dict_[k], b.state_dict_[k]) for k in a.state_dict_)


def test_recovers_planted_signal_and_beats_baseline() -> None:
    X, y = _planted(800, 32)
    config = MLPConfig(input_dim=32, hidden=(64, 16), max_epochs=60, patience=10, batch_size=64)
    model = AttractivenessRegressor(config)
    assert model.fit(X, y) is model and model.evaluation is not None
    m = model.evaluation.held_out
    assert (m.n_train, m.n_val, m.n_test) == (544, 96, 160) and model.evaluation.cross_validation is None
    assert len(model.test_indices_) == 160 and len(set(model.test_indices_.tolist())) == 160
    assert m.mlp.pearson_r > 0.85
    assert m.mlp.rmse < 0.8 * m.mean_baseline.rmse
    assert m.mlp.mae < m.mean_baseline.mae
    assert math.isnan(m.mean_baseline.pearson_r)
    assert m.ridge.pearson_r > 0.9  # linear target: ridge is a strong baseline
    assert 1 <= model.best_epoch_ <= model.epochs_run_ <= 60
    assert abs(model.target_mean_ - 3.0) < 0.2
    predicted = model.predict(X[model.test_indices_])
    assert predicted.dtype == np.float64 and predicted.shape == (160,)


def test_test_rows_are_unseen_by_every_model() -> None:
    """Changing only the targets of the held-out test rows must not change the fitted MLP,
    the ridge alpha or the epoch chosen: no model may see or select on them."""
    X, y = _planted(200, 8, seed=2)
    model = AttractivenessRegressor(SMALL).fit(X, y)
    y2 = y.copy()
    y2[model.test_indices_] += np.random.default_rng(9).normal(0, 3, len(model.test_indices_))
    again = AttractivenessRegressor(SMALL).fit(X, y2)
    assert _same_weights(model, again)
    held, held2 = model.evaluation.held_out, again.evaluation.held_out  # type: ignore[union-attr]
    assert (again.best_epoch_, held2.ridge_alpha) == (model.best_epoch_, held.ridge_alpha)
    assert held2.mlp.rmse != held.mlp.rmse  # ...while the metrics use them
    # The early-stopping rows, in contrast, do steer training.
    y3 = y.copy()
    y3[model.val_indices_] = 3.0 + np.random.default_rng(9).normal(0, 3, len(model.val_indices_))
    moved = AttractivenessRegressor(replace(SMALL, max_epochs=30, patience=30)).fit(X, y3)
    assert not _same_weights(model, moved)


def test_deterministic_same_seed_and_differs_by_seed() -> None:
    X, y = _planted(160, 8, seed=1)
    first, again = small_regressor(), AttractivenessRegressor(SMALL).fit(X, y)
    assert _same_weights(first, again) and np.array_equal(first.test_indices_, again.test_indices_)
    assert np.array_equal(first.predict(X), again.predict(X))
    other = AttractivenessRegressor(replace(SMALL, seed=1)).fit(X, y)
    assert not _same_weights(first, other)
    assert not np.array_equal(first.test_indices_, other.test_indices_)


def test_cv_folds_add_the_cross_validation_without_changing_the_model() -> None:
    plain, validated = small_regressor(), small_regressor(cv_folds=3)
    assert _same_weights(plain, validated)
    assert plain.evaluation.held_out.to_dict() == validated.evaluation.held_out.to_dict()  # type: ignore[union-attr]
    assert validated.evaluation.cross_validation.k == 3  # type: ignore[union-attr]


def test_worker_processes_give_the_same_model_cross_validation_and_out_of_fold_scores() -> None:
    X, y = _planted(120, 8, seed=4)
    one = AttractivenessRegressor(SMALL, cv_folds=3).fit(X, y)
    two = AttractivenessRegressor(SMALL, cv_folds=3, workers=2).fit(X, y)
    assert _same_weights(one, two) and one.epochs_run_ == two.epochs_run_
    assert one.evaluation.to_dict() == two.evaluation.to_dict()  # type: ignore[union-attr]
    assert np.array_equal(one.cv_predictions_, two.cv_predictions_) and np.isfinite(one.cv_predictions_).all()


def test_predict_checks_its_input_and_the_fit() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        AttractivenessRegressor(SMALL).predict(np.zeros((2, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        small_regressor().predict(np.zeros((2, 5), dtype=np.float32))
    X, _ = _planted(50, 8, seed=9)
    model = small_regressor()
    # batching changes float summation order only, not the result beyond rounding
    assert np.allclose(model.predict(X, batch_size=7), model.predict(X), rtol=0, atol=1e-6)
