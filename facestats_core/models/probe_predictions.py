"""Attribute predictions of the trained probes, out-of-fold for the faces whose labels trained them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from facestats_core.models.classifiers import TrainedClassifier, predict_attributes
from facestats_core.models.out_of_fold import (
    FROM_MODEL,
    OUT_OF_FOLD,
    OutOfFold,
    attribute_prediction_frame,
    classification_folds,
    out_of_fold_attribute,
)
from facestats_core.models.prediction_method import with_method
from facestats_core.models.prevalence_calibration import calibration_key, calibration_of


def reused_out_of_fold(model: TrainedClassifier, X: np.ndarray, labels: Any, *, k: int, seed: int
                       ) -> OutOfFold | None:
    """The probe's own calibration posteriors as the out-of-fold predictions of ``labels``' rows (the final
    probe for the others), when they were computed from exactly these rows, classes, C, folds and seed
    (``metrics["calibration_key"]``, :func:`~facestats_core.models.prevalence_calibration.calibration_key`);
    else None. The fold probes would be the same fits, so the predictions are the same (as float32, the
    precision the table keeps)."""
    calibration = calibration_of(model)
    key = model.metrics.get("calibration_key")
    if calibration is None or model.C is None or not key:
        return None
    if key != calibration_key(X, labels, model.classes, C=model.C, k=k, seed=seed):
        return None
    folds = classification_folds(labels, model.classes, k, seed)
    labelled = folds >= 0
    values = np.empty((len(X), len(model.classes)), dtype=np.float64)
    values[labelled] = calibration.posteriors
    if (~labelled).any():
        values[~labelled] = model.predict_proba(np.asarray(X)[~labelled])
    source = np.where(labelled, OUT_OF_FOLD, FROM_MODEL).astype(object)
    return OutOfFold(values=values, source=source, fold=folds)


def probe_predictions(
    classifiers: Mapping[str, TrainedClassifier],
    X: np.ndarray,
    labels: Mapping[str, Any] | None = None,
    *,
    k: int = 5,
    seed: int = 0,
) -> pl.DataFrame:
    """``predict_attributes``' columns, ``<attr>_method = probe`` and ``<attr>_prediction_source``.

    ``labels`` (attribute → one label or None per row of ``X``) names the rows whose labels
    trained the probes: each of them is predicted by a probe of a k-fold split that never saw
    it (``out_of_fold``; same C as the final probe); every other row by the final probe (``model``).
    When the probe's calibration data were made from these very rows (:func:`reused_out_of_fold`), they are
    those predictions and no fold probe is fitted again.
    """
    columns: list[pl.DataFrame] = []
    for attr, model in classifiers.items():
        values = None if labels is None else labels.get(attr)
        if values is not None and any(v is not None for v in values):
            result = reused_out_of_fold(model, X, values, k=k, seed=seed)
            if result is None:
                options = {"c_grid": (float(model.metrics.get("C", 1.0)),)}
                result = out_of_fold_attribute(X, values, model.classes, k=k, seed=seed, final_model=model,
                                               train_options=options)
            columns.append(attribute_prediction_frame(attr, model.classes, result))
        else:
            frame = predict_attributes({attr: model}, X)
            columns.append(frame.with_columns(pl.lit("model").alias(f"{attr}_prediction_source")))
    return with_method(pl.concat(columns, how="horizontal"), "probe") if columns else pl.DataFrame()
