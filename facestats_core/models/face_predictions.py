"""Gender, age bin, ethnicity and tags of face embeddings: probes where trained, CLIP zero-shot otherwise.

One function for the `attributes` asset and the single-image CLI, so both predict the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from facestats_core.labels.attribute_labels import race4
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.classifiers import TrainedClassifier
from facestats_core.models.probe_predictions import probe_predictions
from facestats_core.models.prompt_models import PromptModels, tag_predictions, zero_shot_predictions


def attributes_without_probes(classifiers: Mapping[str, TrainedClassifier]) -> list[str]:
    """The attributes zero-shot has to predict (no trained probe for them)."""
    return [attr for attr in ATTRIBUTES if attr not in classifiers]


def face_attribute_table(
    X: np.ndarray,
    classifiers: Mapping[str, TrainedClassifier],
    prompts: PromptModels | None,
    labels: Mapping[str, Any] | None = None,
    *,
    k: int = 5,
    seed: int = 0,
) -> pl.DataFrame:
    """Per attribute ``<attr>_pred/_prob/_probs/_method/_prediction_source`` (probe, out of fold for the rows
    ``labels`` names — see :func:`~facestats_core.models.probe_predictions.probe_predictions` — or zero-shot
    for attributes without a probe), ``race4_pred``, and ``tag_<name>`` per tag of ``prompts``.

    ``prompts`` may be None only when every attribute has a probe and no tags are wanted.
    """
    parts: list[pl.DataFrame] = []
    if classifiers:
        parts.append(probe_predictions(classifiers, X, labels, k=k, seed=seed))
    missing = attributes_without_probes(classifiers)
    if missing:
        if prompts is None:
            raise ValueError(f"no probes for {', '.join(missing)} and no prompts for zero-shot")
        zero = zero_shot_predictions(prompts, X)
        parts.append(zero.select(*(c for a in missing for c in (f"{a}_pred", f"{a}_prob", f"{a}_probs", f"{a}_method")))
                     .with_columns(pl.lit("model").alias(f"{a}_prediction_source") for a in missing))
    if prompts is not None and prompts.tags:
        parts.append(tag_predictions(prompts, X))
    table = pl.concat(parts, how="horizontal")
    return table.with_columns(
        pl.col("ethnicity_pred").map_elements(race4, return_dtype=pl.String).alias("race4_pred"))
