from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from facestats_core.attractiveness.training import MLPConfig
from facestats_core.attractiveness.training_data import TrainingData
from facestats_core.models.classifiers import train_attribute_classifier
from facestats_core.models.out_of_fold import (
    attribute_prediction_frame,
    classification_folds,
    cross_validated_scores,
    out_of_fold_attribute,
    out_of_fold_predict,
    out_of_fold_scores,
    regression_folds,
)
from facestats_core.models.splits import kfold_indices
from tests.core.synthetic import planted_ratings, small_regressor

CLASSES = ("male", "female")


def _labels(n_labelled: int, n_unlabelled: int) -> list[str | None]:
    return [CLASSES[i % 2] for i in range(n_labelled)] + [None] * n_unlabelled


def test_no_labelled_row_is_predicted_by_a_model_that_saw_it() -> None:
    n = 23
    X = np.arange(n, dtype=np.float64)[:, None]  # the row id is the feature
    folds = classification_folds(_labels(17, 6), CLASSES, k=5, seed=3)
    fits: list[set[int]] = []

    def fit(rows: np.ndarray) -> set[int]:
        fits.append(set(rows.tolist()))
        return fits[-1]

    def predict(seen: set[int], x: np.ndarray) -> np.ndarray:  # 1 = the model trained on this row
        return np.array([float(int(v) in seen) for v in x[:, 0]])

    result = out_of_fold_predict(X, folds, fit, predict)
    assert np.all(result.values[:17] == 0.0)
    assert np.all(result.values[17:] == 0.0)  # unlabelled rows are never trained on either
    assert len(fits) == 6 and fits[-1] == set(range(17))  # 5 fold models, then one on all labelled rows
    assert result.source.tolist() == ["out_of_fold"] * 17 + ["model"] * 6
    assert sorted(set(folds[:17].tolist())) == [0, 1, 2, 3, 4] and np.all(folds[17:] == -1)


def test_a_given_final_model_predicts_the_unlabelled_rows() -> None:
    folds = np.array([0, 0, 1, 1, -1])
    result = out_of_fold_predict(np.zeros((5, 1)), folds, lambda rows: "fold", lambda m, x: np.full(len(x), len(m)),
                                 final_model="final!")
    assert result.values.tolist() == [4, 4, 4, 4, 6]


def test_folds_are_stratified_and_fall_back_for_tiny_classes() -> None:
    labels = ["male"] * 10 + ["female"] * 10 + ["unknown", None]
    folds = classification_folds(labels, CLASSES, k=5, seed=0)
    for fold in range(5):
        assert sorted(np.asarray(labels, dtype=object)[folds == fold].tolist()) == ["female", "female", "male", "male"]
    assert folds[-2:].tolist() == [-1, -1]
    rare = classification_folds(["male"] * 9 + ["female"], CLASSES, k=5, seed=0)  # warns in sklearn; tolerated
    assert sorted(set(rare.tolist())) == [0, 1, 2, 3, 4]
    assert sorted(set(classification_folds(["male"] * 4, CLASSES, k=5).tolist())) == [0, 1]
    with pytest.raises(ValueError, match="at least 4 labelled rows"):
        classification_folds(["male", "female", "male", None], CLASSES)
    assert (regression_folds([1.0] * 7 + [None, float("nan")], k=5) >= 0).sum() == 7
    with pytest.raises(ValueError, match="at least 6"):
        regression_folds([1.0] * 5)


def test_out_of_fold_probes_and_frame() -> None:
    rng = np.random.default_rng(0)
    labels = _labels(24, 4)
    X = rng.normal(size=(28, 6)).astype(np.float32)
    X[:, 0] += np.array([2.0 if v == "male" else -2.0 if v == "female" else 0.0 for v in labels])
    final = train_attribute_classifier(X, labels, CLASSES, c_grid=(1.0,))
    result = out_of_fold_attribute(X, labels, CLASSES, k=4, final_model=final, train_options={"c_grid": (1.0,)})
    assert result.values.shape == (28, 2)
    np.testing.assert_allclose(result.values[24:], final.predict_proba(X[24:]))
    frame = attribute_prediction_frame("gender", CLASSES, result)
    assert frame.columns == ["gender_pred", "gender_prob", "gender_probs", "gender_prediction_source"]
    assert frame.schema["gender_probs"] == pl.Array(pl.Float32, 2)
    assert (frame["gender_pred"][:24] == pl.Series(labels[:24])).mean() > 0.8


def test_out_of_fold_scores_cover_rated_and_unrated_rows() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(14, 4)).astype(np.float32)
    y = [float(v) for v in 3 + X[:12, 0]] + [None, None]
    config = MLPConfig(input_dim=4, hidden=(4,), max_epochs=3, patience=1, batch_size=8)
    result = out_of_fold_scores(X, y, k=2, config=config)
    assert result.values.shape == (14,) and np.all(np.isfinite(result.values))
    assert result.source.tolist() == ["out_of_fold"] * 12 + ["model"] * 2


def test_cross_validated_scores_reuse_the_regressors_fold_predictions() -> None:
    model = small_regressor(cv_folds=3)
    X, y = planted_ratings(160, 8, seed=1)  # the data small_regressor was fitted on
    ids = [f"f{i:03d}" for i in range(160)]
    training = TrainingData(face_ids=ids, X=X, y=y)
    extra = np.ones((2, 8), dtype=np.float32)
    faces = ["new-a", *ids[:5], "new-b"]
    result = cross_validated_scores(faces, np.vstack([extra[:1], X[:5], extra[1:]]), model, training)
    assert result is not None
    assert result.source.tolist() == ["model"] + ["out_of_fold"] * 5 + ["model"]
    assert np.array_equal(result.values[1:6], model.cv_predictions_[:5])
    assert np.allclose(result.values[[0, 6]], model.predict(extra), rtol=1e-6)  # float32 batch arithmetic
    folds = np.full(160, -1)
    for fold, rows in enumerate(kfold_indices(160, 3, model.config_.seed)):
        folds[rows] = fold
    assert result.fold.tolist() == [-1, *folds[:5].tolist(), -1]
    other = TrainingData(face_ids=ids, X=X, y=y + 0.5)  # other ratings: not what it was fitted on
    assert cross_validated_scores(faces[:2], X[:2], model, other) is None
    assert cross_validated_scores(faces[:2], X[:2], small_regressor(cv_folds=0), training) is None
