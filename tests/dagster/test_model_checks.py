"""The model and master asset checks seen red and green: each check function is called on a value that
passes and on one that fails it, built by the real training code (a probe that learns vs one at chance,
an MLP that learns vs one that cannot) or by the real master builder with a planted defect.

The cross-stage checks (embeddings, coverage, composite sidecars) have their red and green tests in
test_checks.py; `test_every_check_has_a_red_and_a_green_test` keeps the two files covering every check
the definitions declare.
"""

from __future__ import annotations

import dagster as dg
import numpy as np
import polars as pl
import pytest

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_dagster.defs.attractiveness import regressor_beats_mean_baseline, regressor_beats_ridge
from facestats_dagster.defs.attributes import classifier_accuracy_floor
from facestats_dagster.defs.master import master_one_row_per_face
from facestats_dagster.resources import AnalysisResource
from tests.core.synthetic import class_blobs, planted_ratings

torch = pytest.importorskip("torch")

RED_AND_GREEN = {
    # check -> the tests below (or in test_checks.py) that see it pass and fail
    "classifier_accuracy_floor": "test_accuracy_floor_*",
    "regressor_beats_mean_baseline": "test_mean_baseline_*",
    "regressor_beats_ridge": "test_ridge_*",
    "master_one_row_per_face": "test_master_check_*",
    "embeddings_finite_and_normalised": "test_checks.py",
    "every_face_embedded": "test_checks.py",
    "predictions_cover_embeddings": "test_checks.py",
    "scores_cover_embeddings": "test_checks.py",
    "composite_json_matches_image": "test_checks.py",
}


def test_every_check_has_a_red_and_a_green_test() -> None:
    from facestats_dagster.definitions import defs

    declared = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert declared == set(RED_AND_GREEN), "a new check needs a passing and a failing test here or in test_checks.py"


# --------------------------------------------------------------------------- classifier_accuracy_floor


def _probes(learnable: bool, n: int = 360, seed: int = 0) -> dict:
    """One real probe per attribute on class blobs; `learnable=False` shuffles the labels (chance)."""
    from facestats_core.models.classifiers import train_attribute_classifier

    probes = {}
    for i, (attr, classes) in enumerate(ATTRIBUTES.items()):
        X, y = class_blobs(n, classes, dim=32, seed=seed + i, noise=0.5)
        if not learnable:
            y = np.random.default_rng(seed + 10 + i).permutation(y)
        probes[attr] = train_attribute_classifier(X, y, classes, seed=seed, cv_folds=3, c_grid=(1.0,))
    return probes


def test_accuracy_floor_passes_for_probes_that_learn() -> None:
    result = classifier_accuracy_floor(_probes(learnable=True), AnalysisResource())
    assert result.passed, result.metadata
    accuracy = result.metadata["accuracy"].value
    assert set(accuracy) == set(ATTRIBUTES) and min(accuracy.values()) > 0.9
    assert result.metadata["below_floor"].value == {}


def test_accuracy_floor_fails_for_probes_at_chance() -> None:
    result = classifier_accuracy_floor(_probes(learnable=False), AnalysisResource())
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    below = result.metadata["below_floor"].value
    assert set(below) == set(ATTRIBUTES), result.metadata  # gender ~1/2 < 0.6, age ~1/9 < 0.25, ethnicity ~1/7 < 0.3
    floors = AnalysisResource().accuracy_floors()
    assert all(below[attr] < floors[attr] for attr in below)


def test_accuracy_floor_follows_the_configured_floor() -> None:
    """The same probes fail a floor set above their accuracy: the check compares, it does not just report."""
    probes = _probes(learnable=True)
    assert not classifier_accuracy_floor(probes, AnalysisResource(min_accuracy_gender=1.01)).passed


# --------------------------------------------------------------------------- the regressor's two checks


def _regressor(X: np.ndarray, y: np.ndarray, *, cv: bool = False, **config):
    from facestats_core.attractiveness.estimator import AttractivenessRegressor
    from facestats_core.attractiveness.training import MLPConfig

    settings = MLPConfig(input_dim=X.shape[1], **{"hidden": (32,), "dropout": 0.0, "batch_size": 32,
                                                   "max_epochs": 60, "patience": 10, **config})
    return AttractivenessRegressor(settings, cv_folds=3 if cv else 0, trained_on="analysed").fit(X, y)


def _nonlinear(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ratings that depend on the product of two features: no linear model does better than the mean."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 4)).astype(np.float32)
    return X, 3.0 + 1.5 * np.sign(X[:, 0] * X[:, 1]) + 0.1 * rng.standard_normal(n)


def test_mean_baseline_beaten_by_a_regressor_that_learns() -> None:
    X, y = planted_ratings(240, 8, seed=1, noise=0.1)
    result = regressor_beats_mean_baseline(_regressor(X, y, max_epochs=20))
    assert result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["mlp_rmse"].value < 0.9 * result.metadata["mean_baseline_rmse"].value


def test_mean_baseline_not_beaten_when_ratings_are_noise() -> None:
    """Ratings independent of the embedding: an MLP that overfits its training rows loses to the mean."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 64)).astype(np.float32)
    y = 3.0 + rng.standard_normal(120)
    result = regressor_beats_mean_baseline(_regressor(X, y, hidden=(128,), patience=30, max_epochs=30))
    assert not result.passed, result.metadata
    assert result.metadata["mlp_rmse"].value >= result.metadata["mean_baseline_rmse"].value


def test_ridge_beaten_on_a_nonlinear_rating_in_cross_validation() -> None:
    result = regressor_beats_ridge(_regressor(*_nonlinear(), cv=True, max_epochs=40))
    assert result.passed and result.severity == dg.AssetCheckSeverity.WARN, result.metadata
    assert result.metadata["protocol"].value == "3-fold CV"
    assert result.metadata["mlp_rmse"].value < 0.9 * result.metadata["ridge_rmse"].value


def test_ridge_not_beaten_on_a_linear_rating() -> None:
    """A linear rating with few rows: ridge is the right model, a one-epoch MLP is not."""
    X, y = planted_ratings(160, 8, seed=2, noise=0.05)
    result = regressor_beats_ridge(_regressor(X, y, max_epochs=1))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN, result.metadata
    assert result.metadata["protocol"].value == "held-out split"
    assert result.metadata["mlp_rmse"].value > result.metadata["ridge_rmse"].value


def test_regressor_checks_pass_without_a_regressor() -> None:
    """No ratings: nothing to check, said so (the asset stays green on purpose)."""
    assert regressor_beats_mean_baseline(None).passed and regressor_beats_ridge(None).passed


# --------------------------------------------------------------------------- master_one_row_per_face


def _master() -> pl.DataFrame:
    from facestats_core.analysis.master import build_master
    from tests.dagster.test_master import detections

    raw = pl.DataFrame({"image_id": ["a", "b", "c"], "path": ["a", "b", "c"], "readable": [True, True, True]})
    table, _ = build_master(raw, detections=detections({"a": ["a_1_1", "a_2_1"], "b": ["b_1_1"]}, {"c": "no_face"}))
    return table


def test_master_check_passes_on_a_built_master() -> None:
    result = master_one_row_per_face(_master())
    assert result.passed, result.metadata
    assert result.metadata["rows"].value == 4


@pytest.mark.parametrize(
    ("plant", "field", "value"),
    [
        (lambda t: pl.concat([t, t.head(1)]), "duplicated_ids", 2),
        (lambda t: pl.concat([t, t.tail(1)]), "duplicated_ids", 2),  # a faceless image twice
        (lambda t: t.drop("cluster"), "missing_columns", ["cluster"]),
        (lambda t: t.with_columns(pl.lit(None, dtype=pl.String).alias("reason")), "faceless_without_reason", 1),
        (lambda t: t.with_columns(pl.when(pl.col("face_id") == "a_1_1").then(None).otherwise(pl.col("image_id"))
                                  .alias("image_id")), "null_ids", 1),
        (lambda t: t.with_columns(pl.lit("guess").alias("gender_source")), "bad_sources", {"gender": 4}),
    ],
    ids=["duplicate-face", "duplicate-faceless", "missing-column", "no-reason", "null-image", "bad-source"],
)
def test_master_check_fails_on_each_planted_defect(plant, field, value) -> None:
    result = master_one_row_per_face(plant(_master()))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata[field].value == value
