"""A small synthetic master table with known truth, class probabilities and probe calibration data."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.prevalence_calibration import CalibrationData

STRENGTH = {"gender": 2.5, "age": 1.2, "ethnicity": 1.8}
"""Logit separation per attribute: gender easy, age hard (like the demo's probes)."""


def synthetic_posteriors(true: np.ndarray, k: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Softmax of ``N(0, 1)`` logits plus ``strength`` on the true class, leaning to class 0."""
    logits = rng.normal(size=(len(true), k)) + strength * np.eye(k)[true]
    logits[:, 0] += 0.4
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def synthetic_master(
    n: int = 600,
    seed: int = 0,
    calibration_per_class: int = 200,
    clusters: int = 10,
    strength: Mapping[str, float] | None = None,
) -> tuple[pl.DataFrame, dict[str, CalibrationData], pl.DataFrame]:
    """``(master, calibration, truth)``: true classes drawn with random shares, probabilities from
    :func:`synthetic_posteriors`, predictions their argmax; calibration data from the same model on
    ``calibration_per_class`` faces of each class (a balanced reference set). Final values equal the
    predictions; clusters are random; attractiveness is normal around 5."""
    rng = np.random.default_rng(seed)
    strength = {**STRENGTH, **(strength or {})}
    ids = [f"img{i:05d}" for i in range(n)]
    columns: dict[str, object] = {"face_id": ids}
    truth: dict[str, object] = {"face_id": ids}
    calibration: dict[str, CalibrationData] = {}
    for attr, classes in ATTRIBUTES.items():
        k = len(classes)
        true = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 2.0)))
        P = synthetic_posteriors(true, k, strength[attr], rng)
        names = np.asarray(classes, dtype=object)
        truth[attr] = names[true].tolist()
        columns[f"{attr}_pred"] = names[P.argmax(axis=1)].tolist()
        columns[f"{attr}_probs"] = pl.Series(P.astype(np.float32), dtype=pl.Array(pl.Float32, k))
        columns[attr] = names[P.argmax(axis=1)].tolist()
        y_cal = np.repeat(np.arange(k), calibration_per_class)
        calibration[attr] = CalibrationData(
            tuple(classes), synthetic_posteriors(y_cal, k, strength[attr], rng).astype(np.float32), y_cal)
    columns["cluster"] = pl.Series(rng.integers(0, clusters, size=n), dtype=pl.Int32)
    columns["attractiveness_raw"] = rng.normal(5.0, 1.0, size=n)
    return pl.DataFrame(columns), calibration, pl.DataFrame(truth)
