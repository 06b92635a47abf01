"""A small synthetic master table with known truth and biased predictions, for the statistics tests."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES


def biased_confusion(k: int, accuracy: float, bias_to: int = 0) -> np.ndarray:
    """A row-stochastic ``(k, k)`` confusion: ``accuracy`` on the diagonal, errors leaning to ``bias_to``."""
    M = np.full((k, k), (1.0 - accuracy) / (2 * max(k - 1, 1)))
    M[:, bias_to] += (1.0 - accuracy) / 2
    np.fill_diagonal(M, 0.0)
    M /= M.sum(axis=1, keepdims=True)
    M *= 1.0 - accuracy
    np.fill_diagonal(M, accuracy)
    return M


def synthetic_master(
    n: int = 600,
    seed: int = 0,
    heldout_per_class: int = 200,
    clusters: int = 10,
    accuracy: Mapping[str, float] | None = None,
) -> tuple[pl.DataFrame, dict[str, tuple[list[str], np.ndarray]], pl.DataFrame]:
    """``(master, confusion, truth)``: true labels per attribute, predictions through a biased confusion.

    The held-out confusion counts are drawn from the same true confusion
    (``heldout_per_class`` faces per true class). Final values equal the
    predictions; clusters are random; attractiveness is normal around 5.
    """
    rng = np.random.default_rng(seed)
    accuracy = {"gender": 0.85, "age": 0.6, "ethnicity": 0.7, **(accuracy or {})}
    ids = [f"img{i:05d}" for i in range(n)]
    columns: dict[str, object] = {"face_id": ids}
    truth: dict[str, object] = {"face_id": ids}
    confusion: dict[str, tuple[list[str], np.ndarray]] = {}
    for attr, classes in ATTRIBUTES.items():
        k = len(classes)
        p = rng.dirichlet(np.full(k, 2.0))
        M = biased_confusion(k, accuracy[attr])
        true = rng.choice(k, size=n, p=p)
        pred = np.array([rng.choice(k, p=M[t]) for t in true])
        names = np.asarray(classes, dtype=object)
        truth[attr] = names[true].tolist()
        columns[f"{attr}_pred"] = names[pred].tolist()
        columns[attr] = names[pred].tolist()
        heldout = np.stack([rng.multinomial(heldout_per_class, M[i]) for i in range(k)])
        confusion[attr] = (list(classes), heldout)
    columns["cluster"] = pl.Series(rng.integers(0, clusters, size=n), dtype=pl.Int32)
    columns["attractiveness_raw"] = rng.normal(5.0, 1.0, size=n)
    return pl.DataFrame(columns), confusion, pl.DataFrame(truth)
