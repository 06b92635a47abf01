"""Attribute predictions of the trained probes, out-of-fold for the faces whose labels trained them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from facestats_core.models.classifiers import TrainedClassifier, predict_attributes
from facestats_core.models.out_of_fold import attribute_prediction_frame, out_of_fold_attribute
from facestats_core.models.prediction_method import with_method


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
    """
    columns: list[pl.DataFrame] = []
    for attr, model in classifiers.items():
        values = None if labels is None else labels.get(attr)
        if values is not None and any(v is not None for v in values):
            options = {"c_grid": (float(model.metrics.get("C", 1.0)),)}
            result = out_of_fold_attribute(X, values, model.classes, k=k, seed=seed, final_model=model,
                                           train_options=options)
            columns.append(attribute_prediction_frame(attr, model.classes, result))
        else:
            frame = predict_attributes({attr: model}, X)
            columns.append(frame.with_columns(pl.lit("model").alias(f"{attr}_prediction_source")))
    return with_method(pl.concat(columns, how="horizontal"), "probe") if columns else pl.DataFrame()
