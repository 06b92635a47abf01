"""Out-of-fold predictions: a labelled row is predicted only by a model that never saw its label.

When the analysed set is also a reference set, predicting its labelled rows
with the model trained on them would report training-set accuracy. Instead
the labelled rows are split into folds; the model of fold ``i`` is fitted on
the other folds and predicts fold ``i``. Unlabelled rows are predicted by the
model fitted on every labelled row (``final_model`` when given, e.g. the
model the bundle ships). Every prediction carries its ``prediction_source``:
``"out_of_fold"`` or ``"model"``.

Folds: attributes use scikit-learn's ``StratifiedKFold`` (shuffled, seeded)
with ``min(k, n // 2)`` splits, so every training part holds at least 2 rows;
a class rarer than the number of splits then misses from some training parts
(its rows get probability 0 for it there), and when no class has as many rows
as splits, plain ``KFold`` is used. The attractiveness scores use
:func:`facestats_core.models.splits.kfold_indices` with ``min(k, n // 3)``
folds. Fewer than 4 (attributes) or 6 (scores) labelled rows raise ``ValueError``
(and the regressor's own split needs 6 rows in each training part, so 9 rated rows at least).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl

from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.attractiveness.training import MLPConfig, validate_xy
from facestats_core.attractiveness.training_data import TrainingData
from facestats_core.models.classifiers import TrainedClassifier, predict_attributes, train_attribute_classifier
from facestats_core.models.splits import data_hash, kfold_indices

PredictionSource = Literal["out_of_fold", "model"]
OUT_OF_FOLD: PredictionSource = "out_of_fold"
FROM_MODEL: PredictionSource = "model"
Model = TypeVar("Model")


@dataclass(frozen=True, eq=False)
class OutOfFold:
    """Predictions for every row: ``values`` (probabilities ``(n, classes)`` or scores ``(n,)``),
    ``source`` (``"out_of_fold"`` / ``"model"`` per row) and ``fold`` (the labelled row's fold, else -1)."""

    values: np.ndarray
    source: np.ndarray
    fold: np.ndarray


def classification_folds(labels: Sequence[Any], classes: tuple[str, ...], k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number of each row with a label in ``classes``; -1 for unlabelled rows (see the module docstring)."""
    from sklearn.model_selection import KFold, StratifiedKFold  # noqa: PLC0415 - heavy, imported when used

    allowed = set(classes)
    y = np.array([v if isinstance(v, str) and v in allowed else None for v in labels], dtype=object)
    labelled = np.flatnonzero(y != None)  # noqa: E711 - elementwise on an object array
    n_splits = min(k, len(labelled) // 2)
    if n_splits < 2:
        raise ValueError(f"out-of-fold predictions need at least 4 labelled rows, got {len(labelled)}")
    folds = np.full(len(y), -1, dtype=np.int64)
    targets = y[labelled].astype(str)
    _, counts = np.unique(targets, return_counts=True)
    if len(counts) > 1 and counts.max() >= n_splits:
        splitter: Any = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, test) in enumerate(splitter.split(labelled, targets)):
            folds[labelled[test]] = fold
    return folds


def regression_folds(y: Sequence[float | None], k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number of each row with a finite target; -1 for the others (``kfold_indices`` over labelled rows)."""
    target = np.array([np.nan if v is None else float(v) for v in y], dtype=np.float64)
    labelled = np.flatnonzero(np.isfinite(target))
    n_splits = min(k, len(labelled) // 3)
    if n_splits < 2:
        raise ValueError(f"out-of-fold scores need at least 6 labelled rows, got {len(labelled)}")
    folds = np.full(len(target), -1, dtype=np.int64)
    for fold, rows in enumerate(kfold_indices(len(labelled), n_splits, seed)):
        folds[labelled[rows]] = fold
    return folds


def out_of_fold_predict(
    X: np.ndarray,
    folds: np.ndarray,
    fit: Callable[[np.ndarray], Model],
    predict: Callable[[Model, np.ndarray], np.ndarray],
    final_model: Model | None = None,
) -> OutOfFold:
    """Fold ``i``'s rows by ``fit(indices of the other labelled rows)``; rows with fold -1 by ``final_model``
    (else ``fit(all labelled rows)``). ``fit`` gets row indices into ``X`` so it can pick any targets."""
    X = np.asarray(X)
    folds = np.asarray(folds, dtype=np.int64)
    if len(folds) != len(X):
        raise ValueError(f"X has {len(X)} rows but folds has {len(folds)}")
    labelled = np.flatnonzero(folds >= 0)
    unlabelled = np.flatnonzero(folds < 0)
    values: np.ndarray | None = None
    for fold in np.unique(folds[labelled]):
        test = np.flatnonzero(folds == fold)
        model = fit(np.setdiff1d(labelled, test))
        values = _place(values, test, predict(model, X[test]), len(X))
    if len(unlabelled):
        model = final_model if final_model is not None else fit(labelled)
        values = _place(values, unlabelled, predict(model, X[unlabelled]), len(X))
    if values is None:
        raise ValueError("no rows to predict")
    source = np.where(folds >= 0, OUT_OF_FOLD, FROM_MODEL).astype(object)
    return OutOfFold(values=values, source=source, fold=folds)


def _place(values: np.ndarray | None, rows: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    predicted = np.asarray(predicted)
    if values is None:
        dtype = predicted.dtype if predicted.dtype.kind == "f" else np.float64
        values = np.full((n, *predicted.shape[1:]), np.nan, dtype=dtype)
    values[rows] = predicted
    return values


def out_of_fold_attribute(
    X: np.ndarray,
    labels: Sequence[Any],
    classes: tuple[str, ...],
    *,
    k: int = 5,
    seed: int = 0,
    final_model: TrainedClassifier | None = None,
    train_options: Mapping[str, Any] | None = None,
) -> OutOfFold:
    """Class probabilities ``(n, len(classes))``: out-of-fold probes for labelled rows, ``final_model``
    (else a probe on every labelled row) for the rest. ``train_options`` go to ``train_attribute_classifier``."""
    Xf = np.asarray(X, dtype=np.float32)
    y = np.asarray(list(labels), dtype=object)
    options = {"seed": seed, **(train_options or {})}

    def fit(rows: np.ndarray) -> TrainedClassifier:
        return train_attribute_classifier(Xf[rows], y[rows], classes, **options)

    return out_of_fold_predict(Xf, classification_folds(y, classes, k, seed), fit,
                               lambda model, x: model.predict_proba(x), final_model)


def out_of_fold_scores(
    X: np.ndarray,
    y: Sequence[float | None],
    *,
    k: int = 5,
    seed: int = 0,
    config: MLPConfig | None = None,
    final_model: AttractivenessRegressor | None = None,
) -> OutOfFold:
    """Attractiveness scores ``(n,)``: out-of-fold regressors (``AttractivenessRegressor(config)``) for rated rows,
    ``final_model`` (else a regressor on every rated row) for the rest."""
    Xf = np.asarray(X, dtype=np.float32)
    target = np.array([np.nan if v is None else float(v) for v in y], dtype=np.float64)
    config = config or MLPConfig(input_dim=int(Xf.shape[1]), seed=seed)

    def fit(rows: np.ndarray) -> AttractivenessRegressor:
        return AttractivenessRegressor(config).fit(Xf[rows], target[rows])

    return out_of_fold_predict(Xf, regression_folds(target, k, seed), fit, lambda model, x: model.predict(x),
                               final_model)


def cross_validated_scores(
    face_ids: Sequence[str], X: np.ndarray, model: AttractivenessRegressor, training: TrainingData
) -> OutOfFold | None:
    """Attractiveness scores ``(n,)`` of the faces ``face_ids`` (embeddings ``X``) without a refit.

    A face whose rating trained ``model`` gets the prediction its cross-validation made (the fold
    model that never saw that rating: the regressor's ``cv_predictions_``, fold
    ``kfold_indices(len(training), k, seed)``); every other face ``model.predict``. ``training`` is the
    data the model was fitted on; None when the model has no cross-validation predictions or was not
    fitted on exactly that data (its ``data_hash_`` differs), so the caller refits out of fold instead."""
    rows = len(training.face_ids)
    if rows == 0 or len(model.cv_predictions_) != rows or model.evaluation is None:
        return None
    cv = model.evaluation.cross_validation
    try:
        x, t = validate_xy(training.X, training.y, model.config_)
    except ValueError:
        return None
    if cv is None or data_hash(x, t) != model.data_hash_:
        return None
    training_fold = np.full(rows, -1, dtype=np.int64)
    for fold, members in enumerate(kfold_indices(rows, cv.k, model.config_.seed)):
        training_fold[members] = fold
    position = {face_id: i for i, face_id in enumerate(training.face_ids)}
    values = np.asarray(model.predict(X), dtype=np.float64)
    folds = np.full(len(values), -1, dtype=np.int64)
    for row, face_id in enumerate(face_ids):
        at = position.get(face_id)
        if at is not None:
            values[row], folds[row] = model.cv_predictions_[at], training_fold[at]
    source = np.where(folds >= 0, OUT_OF_FOLD, FROM_MODEL).astype(object)
    return OutOfFold(values=values, source=source, fold=folds)


@dataclass(frozen=True, eq=False)
class _Precomputed:
    """Probabilities already computed, behind the classifier interface ``predict_attributes`` takes."""

    classes: tuple[str, ...]
    proba: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.proba, dtype=np.float32)


def attribute_prediction_frame(attribute: str, classes: tuple[str, ...], result: OutOfFold) -> pl.DataFrame:
    """``predict_attributes``' columns for one attribute plus ``<attribute>_prediction_source``."""
    frame = predict_attributes({attribute: _Precomputed(classes, result.values)}, result.values)
    return frame.with_columns(pl.Series(f"{attribute}_prediction_source", result.source.tolist(), dtype=pl.String))
