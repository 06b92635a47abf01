"""k-fold cross-validation of the MLP and its baselines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("torch")

from facestats_core.attractiveness.cross_validation import (  # noqa: E402
    cross_validate,
    cross_validate_with_predictions,
)
from facestats_core.attractiveness.evaluation import regression_metrics  # noqa: E402
from facestats_core.attractiveness.training import MLPConfig  # noqa: E402
from facestats_core.models.splits import kfold_indices  # noqa: E402
from tests.core.synthetic import planted_ratings as _planted  # noqa: E402


def test_cross_validation_tests_every_row_once_and_finds_the_signal() -> None:
    X, y = _planted(300, 8, seed=5)
    config = MLPConfig(input_dim=8, hidden=(32,), max_epochs=60, patience=10, batch_size=32)
    cv = cross_validate(X, y, config, k=5)
    assert cv.k == len(cv.folds) == 5
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


def test_out_of_fold_predictions_are_the_held_out_fold_predictions() -> None:
    X, y = _planted(120, 8, seed=6)
    config = MLPConfig(input_dim=8, hidden=(16,), max_epochs=30, patience=5, batch_size=32)
    cv, predicted = cross_validate_with_predictions(X, y, config, k=4)
    assert predicted.shape == (120,) and np.isfinite(predicted).all()
    assert json.dumps(cv.to_dict()) == json.dumps(cross_validate(X, y, config, k=4).to_dict())  # same fits
    for fold, rows in zip(cv.folds, kfold_indices(120, 4, config.seed), strict=True):
        # each fold's held-out metrics are those of its rows' predictions: they come from that fold's model
        assert regression_metrics(y[rows], predicted[rows]).rmse == pytest.approx(fold.mlp.rmse, rel=1e-9)
