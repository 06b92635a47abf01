"""The one evaluation type: held-out metrics and cross-validation, to and from dicts."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")

from facestats_core.attractiveness.evaluation import Evaluation, HeldOutMetrics, RegressionMetrics  # noqa: E402
from tests.core.synthetic import small_regressor  # noqa: E402


def _metrics(mlp_rmse: float, ridge_rmse: float) -> HeldOutMetrics:
    return HeldOutMetrics(RegressionMetrics(0.5, 0.4, mlp_rmse), RegressionMetrics(float("nan"), 0.6, 0.8),
                          RegressionMetrics(0.6, 0.4, ridge_rmse), 1.0, 30, 5, 10)


def test_round_trip_through_json() -> None:
    evaluation = small_regressor(cv_folds=3).evaluation
    assert evaluation is not None and evaluation.cross_validation is not None
    data = json.loads(json.dumps(evaluation.to_dict()))
    assert set(data) == {"metrics", "cross_validation"} and data["metrics"]["mean_baseline"]["pearson_r"] is None
    back = Evaluation.from_dict(data)
    assert json.dumps(back.to_dict()) == json.dumps(evaluation.to_dict())
    assert back.cross_validation.k == 3  # type: ignore[union-attr]
    assert math.isnan(back.held_out.mean_baseline.pearson_r)
    held_out_only = Evaluation.from_dict({"metrics": data["metrics"], "name": "ignored"})
    assert held_out_only.cross_validation is None and "cross_validation" not in held_out_only.to_dict()


def test_files_from_before_n_test_scored_on_the_validation_rows() -> None:
    data = Evaluation(_metrics(0.6, 0.7)).to_dict()
    del data["metrics"]["n_test"]
    assert Evaluation.from_dict(data).held_out.n_test == 5


def test_mlp_and_ridge_rmse_prefers_the_cross_validation() -> None:
    assert Evaluation(_metrics(0.6, 0.7)).mlp_and_ridge_rmse() == (0.6, 0.7, "held-out split")
    cv = small_regressor(cv_folds=3).evaluation.cross_validation  # type: ignore[union-attr]
    mlp, ridge, protocol = Evaluation(_metrics(0.6, 0.7), cv).mlp_and_ridge_rmse()
    assert protocol == "3-fold CV" and mlp == cv.summary("mlp", "rmse").mean
    assert ridge == cv.summary("ridge", "rmse").mean
