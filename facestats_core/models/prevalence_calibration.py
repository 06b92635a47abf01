"""Calibration data for class-share estimation: out-of-fold posteriors of the labelled reference faces.

The share estimators (:mod:`facestats_core.statistics.quantifiers`) learn a probe's misclassification
rates and posterior calibration from faces the probe did not train on. :func:`calibration_data`
predicts every labelled reference face out of fold (k-fold, fold probes with the shipped probe's ``C``,
so each is trained on as many faces as the shipped probe: ``(k-1)/k`` of them vs its 80 %) and keeps
the posteriors with the true classes: plain named arrays (no pickled objects) kept in the probe's
``TrainedClassifier.arrays`` (:data:`ARRAY_NAMES`), so they travel with the probe in the model store
and the bundle, and a bundle applied to another folder corrects with the same data
(:meth:`CalibrationData.arrays` / :func:`calibration_of`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OUT_OF_FOLD = "out_of_fold"
ARRAY_NAMES: tuple[str, ...] = ("calibration_posteriors", "calibration_labels")
"""The named arrays of one attribute's calibration data in the model bundle."""


@dataclass(frozen=True, eq=False)
class CalibrationData:
    """``posteriors`` ``(N, k)`` float32 (canonical class order) and ``labels`` ``(N,)`` int64 class indices
    of labelled faces the probe did not train on; ``source``: how they were predicted."""

    classes: tuple[str, ...]
    posteriors: np.ndarray
    labels: np.ndarray
    source: str = OUT_OF_FOLD

    def __post_init__(self) -> None:
        k = len(self.classes)
        if self.posteriors.ndim != 2 or self.posteriors.shape[1] != k:
            raise ValueError(f"calibration posteriors of shape {self.posteriors.shape} for {k} classes")
        if self.labels.shape != (self.posteriors.shape[0],):
            raise ValueError(f"{self.labels.shape} calibration labels for {self.posteriors.shape[0]} posteriors")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= k):
            raise ValueError(f"calibration labels must be class indices in [0, {k})")
        if not np.all(np.isfinite(self.posteriors)) or np.any(self.posteriors < 0):
            raise ValueError("calibration posteriors must be finite and non-negative")

    def arrays(self) -> dict[str, np.ndarray]:
        """The named arrays to store (:data:`ARRAY_NAMES`)."""
        return {"calibration_posteriors": self.posteriors.astype(np.float32),
                "calibration_labels": self.labels.astype(np.int64)}

    @classmethod
    def from_arrays(cls, classes: Sequence[str], arrays: Mapping[str, Any],
                    source: str = OUT_OF_FOLD) -> CalibrationData:
        """Rebuild from :meth:`arrays`' output; ``ValueError`` for missing or malformed arrays."""
        missing = [name for name in ARRAY_NAMES if name not in arrays]
        if missing:
            raise ValueError(f"calibration arrays missing: {missing}")
        return cls(tuple(classes), np.asarray(arrays["calibration_posteriors"], dtype=np.float32),
                   np.asarray(arrays["calibration_labels"], dtype=np.int64), source)


def calibration_data(
    X: np.ndarray,
    labels: Sequence[Any],
    classes: tuple[str, ...],
    *,
    C: float | None,
    k: int = 5,
    seed: int = 0,
) -> CalibrationData:
    """Out-of-fold posteriors of every row of ``X`` whose label is in ``classes`` (others are left out).

    ``C``: the shipped probe's regularisation (fold probes skip the C search); ``None`` (a one-class
    probe) lets each fold probe search the default grid. Raises ``ValueError`` with fewer than 4 labelled rows.
    """
    from facestats_core.models.out_of_fold import out_of_fold_attribute  # noqa: PLC0415 - sklearn-heavy

    allowed = {c: i for i, c in enumerate(classes)}
    y = np.asarray(list(labels), dtype=object)
    keep = np.flatnonzero([isinstance(v, str) and v in allowed for v in y])
    options = {"c_grid": (float(C),)} if C is not None else {}
    result = out_of_fold_attribute(np.asarray(X)[keep], y[keep], classes, k=k, seed=seed, train_options=options)
    codes = np.array([allowed[v] for v in y[keep]], dtype=np.int64)
    return CalibrationData(tuple(classes), np.asarray(result.values, dtype=np.float32), codes)


def calibration_of(probe: Any) -> CalibrationData | None:
    """The calibration data kept in ``probe.arrays`` (a ``TrainedClassifier``), or None when it has none
    (probes saved without it, zero-shot classifiers)."""
    arrays = getattr(probe, "arrays", None) or {}
    if not all(name in arrays for name in ARRAY_NAMES):
        return None
    return CalibrationData.from_arrays(probe.classes, arrays)
