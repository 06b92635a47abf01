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

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.out_of_fold import out_of_fold_attribute

OUT_OF_FOLD = "out_of_fold"
ARRAY_NAMES: tuple[str, ...] = ("calibration_posteriors", "calibration_labels")
"""The named arrays of one attribute's calibration data in the model bundle."""
CONTEXT_ARRAY = "calibration_context"
"""Optional: ``(N, len(ATTRIBUTES))`` int64 class index of every attribute of each calibration face
(-1: not labelled), in ``ATTRIBUTES`` order; lets the correction reweight the calibration faces to a
folder's mix of the *other* attributes (``face_statistics``)."""


@dataclass(frozen=True, eq=False)
class CalibrationData:
    """``posteriors`` ``(N, k)`` float32 (canonical class order) and ``labels`` ``(N,)`` int64 class indices
    of labelled faces the probe did not train on; ``source``: how they were predicted."""

    classes: tuple[str, ...]
    posteriors: np.ndarray
    labels: np.ndarray
    source: str = OUT_OF_FOLD
    context: np.ndarray | None = None

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
        if self.context is not None and (self.context.ndim != 2 or self.context.shape[0] != self.labels.shape[0]):
            raise ValueError(f"calibration context of shape {self.context.shape} for {self.labels.shape[0]} faces")

    def arrays(self) -> dict[str, np.ndarray]:
        """The named arrays to store (:data:`ARRAY_NAMES`)."""
        out = {"calibration_posteriors": self.posteriors.astype(np.float32),
               "calibration_labels": self.labels.astype(np.int64)}
        if self.context is not None:
            out[CONTEXT_ARRAY] = self.context.astype(np.int64)
        return out

    @classmethod
    def from_arrays(cls, classes: Sequence[str], arrays: Mapping[str, Any],
                    source: str = OUT_OF_FOLD) -> CalibrationData:
        """Rebuild from :meth:`arrays`' output; ``ValueError`` for missing or malformed arrays."""
        missing = [name for name in ARRAY_NAMES if name not in arrays]
        if missing:
            raise ValueError(f"calibration arrays missing: {missing}")
        context = arrays.get(CONTEXT_ARRAY)
        return cls(tuple(classes), np.asarray(arrays["calibration_posteriors"], dtype=np.float32),
                   np.asarray(arrays["calibration_labels"], dtype=np.int64), source,
                   None if context is None else np.asarray(context, dtype=np.int64))


def calibration_data(
    X: np.ndarray,
    labels: Sequence[Any],
    classes: tuple[str, ...],
    *,
    C: float | None,
    k: int = 5,
    seed: int = 0,
    context: Mapping[str, Sequence[Any]] | None = None,
) -> CalibrationData:
    """Out-of-fold posteriors of every row of ``X`` whose label is in ``classes`` (others are left out).

    ``C``: the shipped probe's regularisation (fold probes skip the C search); ``None`` (a one-class
    probe) lets each fold probe search the default grid. ``context``: attribute -> labels aligned with
    ``X`` (every attribute of ``ATTRIBUTES`` that has labels), kept as :data:`CONTEXT_ARRAY`. Raises
    ``ValueError`` with fewer than 4 labelled rows.
    """

    y = np.asarray(list(labels), dtype=object)
    keep, codes = _calibration_rows(y, classes)
    options = {"c_grid": (float(C),)} if C is not None else {}
    result = out_of_fold_attribute(np.asarray(X)[keep], y[keep], classes, k=k, seed=seed, train_options=options)
    ctx = None
    if context:
        ctx = np.full((len(keep), len(ATTRIBUTES)), -1, dtype=np.int64)
        for j, (attr, vocab) in enumerate(ATTRIBUTES.items()):
            if attr in context:
                index = {c: i for i, c in enumerate(vocab)}
                values = np.asarray(list(context[attr]), dtype=object)[keep]
                ctx[:, j] = [index.get(v, -1) if isinstance(v, str) else -1 for v in values]
    return CalibrationData(tuple(classes), np.asarray(result.values, dtype=np.float32), codes, context=ctx)


def calibration_key(X: np.ndarray, labels: Sequence[Any], classes: tuple[str, ...], *, C: float | None, k: int,
                    seed: int) -> str:
    """sha256 of what :func:`calibration_data` computes from: the rows whose label is in ``classes`` (their
    embeddings as float32 and class indices, in order), ``classes``, ``C``, ``k`` and ``seed``. Equal keys mean
    equal out-of-fold posteriors, so the ``attributes`` step can take them instead of fitting the folds again."""
    keep, codes = _calibration_rows(np.asarray(list(labels), dtype=object), classes)
    digest = hashlib.sha256(b"facestats-calibration-v1")
    digest.update(json.dumps({"classes": list(classes), "C": None if C is None else repr(float(C)), "k": int(k),
                              "seed": int(seed), "shape": [len(keep), int(np.shape(X)[1])]}).encode())
    digest.update(np.ascontiguousarray(np.asarray(X)[keep], dtype="<f4").tobytes())
    digest.update(codes.astype("<i8").tobytes())
    return digest.hexdigest()


def _calibration_rows(y: np.ndarray, classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The rows of labels ``y`` (object array) whose label is in ``classes``, and their class indices (int64)."""
    allowed = {c: i for i, c in enumerate(classes)}
    keep = np.flatnonzero([isinstance(v, str) and v in allowed for v in y])
    return keep, np.array([allowed[v] for v in y[keep]], dtype=np.int64)


def calibration_of(probe: Any) -> CalibrationData | None:
    """The calibration data kept in ``probe.arrays`` (a ``TrainedClassifier``), or None when it has none
    (probes saved without it, zero-shot classifiers)."""
    arrays = getattr(probe, "arrays", None) or {}
    if not all(name in arrays for name in ARRAY_NAMES):
        return None
    return CalibrationData.from_arrays(probe.classes, arrays)
