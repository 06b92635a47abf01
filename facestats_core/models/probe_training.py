"""Train the attribute probes of a labelled set, each with its prevalence calibration data.

One probe per attribute with at least :data:`MIN_LABELLED` labelled faces
(:func:`~facestats_core.models.classifiers.train_attribute_classifier`: C by
cross-validation, held-out metrics), then its out-of-fold calibration data
(:func:`~facestats_core.models.prevalence_calibration.calibration_data`, with the probe's C),
kept in the probe's ``arrays``. The attributes are independent, so they are trained side by side
in worker processes (:func:`~facestats_core.models.worker_processes.run_jobs`: one process per core, at
most one per attribute, shut down after use):
each fit is seeded and single-threaded, so the probes are the same whatever the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.classifiers import TrainedClassifier, train_attribute_classifier
from facestats_core.models.prevalence_calibration import calibration_data, calibration_key
from facestats_core.models.worker_processes import run_jobs

MIN_LABELLED = 4
"""Labelled faces an attribute needs for a probe (and its out-of-fold calibration)."""


@dataclass(frozen=True)
class ProbeSet:
    """The probes trained, and the attributes left without one with their labelled-face counts."""

    probes: dict[str, TrainedClassifier]
    too_few: dict[str, int]


def _train_one(attr: str, X: np.ndarray, labels: Mapping[str, np.ndarray], groups: Mapping[str, np.ndarray],
               val_mask: np.ndarray | None, seed: int, folds: int, trained_on: str) -> TrainedClassifier:
    classes = ATTRIBUTES[attr]
    known = np.array([value is not None for value in labels[attr]], dtype=bool)
    model = train_attribute_classifier(
        X[known], labels[attr][known], classes, groups={k: v[known] for k, v in groups.items()},
        val_mask=None if val_mask is None else val_mask[known], seed=seed,
    )
    calibration = calibration_data(X[known], labels[attr][known], classes, C=model.C, k=folds, seed=seed,
                                   context={a: values[known] for a, values in labels.items()})
    key = calibration_key(X[known], labels[attr][known], classes, C=model.C, k=folds, seed=seed)
    return replace(model, metrics={**model.metrics, "trained_on": trained_on, "calibration_key": key},
                   arrays={**model.arrays, **calibration.arrays()})


def train_probes(
    X: np.ndarray,
    labels: Mapping[str, Any],
    *,
    groups: Mapping[str, Any] | None = None,
    val_mask: np.ndarray | None = None,
    seed: int = 0,
    folds: int = 5,
    trained_on: str = "",
    workers: int | None = None,
) -> ProbeSet:
    """Probes of every attribute of ``ATTRIBUTES`` that ``labels`` (attribute -> one label or None per
    row of ``X``) labels on at least :data:`MIN_LABELLED` rows, each with its calibration data (``folds``
    out-of-fold splits) and ``metrics["trained_on"]``; ``groups`` (name -> values per row) give per-group
    accuracy; ``val_mask`` marks the held-out rows (else a seeded 20 % split). ``workers``: processes
    (default: the CPU count); the result does not depend on it."""
    Xf = np.asarray(X, dtype=np.float32)
    columns = {a: np.asarray(list(labels[a]), dtype=object) for a in ATTRIBUTES if a in labels}
    for attr, values in columns.items():
        if len(values) != len(Xf):
            raise ValueError(f"{attr} has {len(values)} labels for {len(Xf)} rows")
    counts = {a: int(sum(v is not None for v in columns.get(a, ()))) for a in ATTRIBUTES}
    todo = [a for a in ATTRIBUTES if counts[a] >= MIN_LABELLED]
    grouping = {k: np.asarray(list(v), dtype=object) for k, v in (groups or {}).items()}
    args = (Xf, columns, grouping, val_mask, seed, folds, trained_on)
    trained = run_jobs([(_train_one, (attr, *args)) for attr in todo],
                       workers if workers is not None else (os.cpu_count() or 1))
    return ProbeSet(probes=dict(zip(todo, trained, strict=True)),
                    too_few={a: counts[a] for a in ATTRIBUTES if a not in todo})
