"""Markdown for Dagster metadata: classifier and regressor metrics, cross-validation, crosstab."""

from __future__ import annotations

import numpy as np
import pytest

from facestats_core.analysis.clusters import crosstab
from facestats_core.labels.vocab import ETHNICITIES
from facestats_core.models.classifiers import train_attribute_classifier
from facestats_dagster.markdown import (
    classifier_metrics_markdown,
    cross_validation_markdown,
    crosstab_markdown,
    regressor_metrics_markdown,
    regressor_summary,
)
from tests.core.synthetic import class_blobs, planted_ratings, small_mlp_config, small_regressor

torch = pytest.importorskip("torch")

from facestats_core.attractiveness.cross_validation import cross_validate  # noqa: E402
from facestats_core.attractiveness.estimator import AttractivenessRegressor  # noqa: E402
from facestats_core.attractiveness.evaluation import Evaluation  # noqa: E402

SMALL = small_mlp_config()


@pytest.fixture(scope="module")
def small_model() -> AttractivenessRegressor:
    return small_regressor(cv_folds=4)


def test_classifier_metrics_markdown() -> None:
    X, y = class_blobs(600, ETHNICITIES, seed=1)
    gender = np.where(np.arange(600) % 2 == 0, "male", "female").astype(object)
    clf = train_attribute_classifier(X, y, ETHNICITIES, groups={"gender": gender}, seed=0, cv_folds=3,
                                     c_grid=(0.01, 1.0))
    md = classifier_metrics_markdown({"ethnicity": clf.metrics})
    lines = md.strip().splitlines()
    assert lines[0].startswith("| attribute |") and len(lines) == 3
    assert lines[2].startswith("| ethnicity | 480 | 120 |")
    assert f"{clf.metrics['accuracy']:.3f}" in lines[2] and "gender=" in lines[2]


def test_classifier_metrics_markdown_missing_values() -> None:
    line = classifier_metrics_markdown({"age": {"n_train": 5, "C": None, "accuracy": 123.4}}).splitlines()[2]
    assert line == "| age | 5 | – | – | 123 | – | – | – |"


def test_regressor_metrics_markdown(small_model: AttractivenessRegressor) -> None:
    held_out = small_model.evaluation.held_out  # type: ignore[union-attr]
    text = regressor_metrics_markdown(held_out)
    assert "| MLP |" in text and "| Mean baseline | n/a |" in text and "Ridge (alpha=" in text
    assert f"Held-out test split: {held_out.n_test} images" in text


def test_cross_validation_markdown() -> None:
    X, y = planted_ratings(160, 8, seed=5)
    cv = cross_validate(X, y, SMALL, k=5)
    text = cross_validation_markdown(cv)
    assert "5-fold" in text and "| MLP |" in text and f"{cv.mlp_wins('ridge')}/5 folds" in text
    assert f"| MLP | {cv.summary('mlp', 'pearson_r').mean:.4f} ± " in text


def test_regressor_summary_prefers_cross_validation(small_model: AttractivenessRegressor) -> None:
    evaluation = small_model.evaluation
    assert evaluation is not None and evaluation.cross_validation is not None
    m = evaluation.held_out
    line = regressor_summary(Evaluation(m))
    assert line.startswith(f"held-out RMSE (n={m.n_test}): MLP {m.mlp.rmse:.3f}")
    assert f"ridge {m.ridge.rmse:.3f}" in line and f"mean {m.mean_baseline.rmse:.3f}" in line
    cv = evaluation.cross_validation
    line = regressor_summary(evaluation)
    assert line.startswith(f"4-fold CV RMSE: MLP {cv.summary('mlp', 'rmse').mean:.3f}")
    assert line.endswith(f"MLP better than ridge in {cv.mlp_wins('ridge')}/4 folds")

def test_crosstab_markdown() -> None:
    clusters = np.array([0, 0, 1, 1, 1, 2])
    eth = ["white", "black", "white", None, "white", "indian"]
    md = crosstab_markdown(crosstab(clusters, eth))
    assert md.splitlines()[0].startswith("| cluster | white |") and len(md.splitlines()) == 5
    assert md.splitlines()[1] == "|" + "|".join(["---:"] * (len(ETHNICITIES) + 3)) + "|"


def test_share_table_markdown_marks_unstable_and_missing_values() -> None:
    import polars as pl

    from facestats_dagster.markdown import share_table_markdown

    row = {"statistic": "share", "attribute": "gender", "slice_key": "all", "value": "male", "n": 10,
           "estimate": 0.6, "low": 0.3, "high": 0.85, "corrected": 0.55, "corrected_low": 0.2,
           "corrected_high": 0.9, "unstable": True, "true_share": None}
    other = {**row, "value": "female", "corrected": None, "true_share": 0.5, "unstable": False}
    aside = {**row, "slice_key": "age"}
    text = share_table_markdown(pl.DataFrame([row, other, aside]), "gender")
    assert text.splitlines()[2:] == [
        "| male | 10 | 0.600 (0.300–0.850) | 0.550 (0.200–0.900) ⚠ | – |",
        "| female | 10 | 0.600 (0.300–0.850) | – | 0.500 |",
    ]
