"""Bootstrap intervals for estimated class shares that resample the target faces and the calibration data.

A share estimate has two sources of error: which faces happen to be in the folder (or slice) — the
folder as a sample of a population — and which labelled faces the estimator's rates and calibration were
learnt from. :func:`share_intervals` draws ``n_boot`` replicates; each refits the estimator on a
stratified resample of the calibration data (faces resampled with replacement within their true class,
so every class keeps its count) and estimates the shares of a resample (with replacement) of the target
faces; the interval is the percentile interval of the replicates. The calibration replicates are drawn
once and shared by every target (their intervals are then correlated; each is still a valid bootstrap
interval); each target's faces are resampled from its own stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from facestats_core.statistics.intervals import normal_quantile
from facestats_core.statistics.quantifiers import fit_quantifier, quantify

_MAX_CELLS = 8_000_000
"""Posterior entries resampled at once (replicates x faces x classes); larger targets go in chunks."""


def calibration_resamples(labels: ArrayLike, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, N)`` bootstrap counts of the calibration faces, resampled within each true class."""
    y = np.asarray(labels, dtype=np.int64)
    weights = np.zeros((n_boot, len(y)))
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        weights[:, members] = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)),
                                              size=n_boot)
    return weights


def share_intervals(
    method: str,
    calibration_posteriors: ArrayLike,
    calibration_labels: ArrayLike,
    targets: ArrayLike | Sequence[ArrayLike],
    *,
    confidence: float = 0.95,
    n_boot: int = 200,
    seed: int | Sequence[int] = 0,
    target_seeds: Sequence[int | Sequence[int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of shape ``(s, k)``: percentile intervals of ``method``'s shares for ``s`` targets.

    ``targets``: an ``(s, n, k)`` array or a sequence of ``(n_i, k)`` posterior arrays (n_i ≥ 1).
    ``target_seeds[i]`` seeds target i's face resampling (default ``[seed, i]``); the calibration
    resampling is seeded by ``seed``. Seeded: equal inputs give equal intervals.
    """
    normal_quantile(confidence)  # validates
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    P_cal = np.asarray(calibration_posteriors, dtype=np.float64)
    y_cal = np.asarray(calibration_labels, dtype=np.int64)
    seed_list = list(seed) if isinstance(seed, Sequence) else [int(seed)]
    rng = np.random.default_rng(seed_list)
    fitted = fit_quantifier(method, P_cal, y_cal, weights=calibration_resamples(y_cal, n_boot, rng))
    k = P_cal.shape[1]
    alpha = (1.0 - confidence) / 2.0
    items = list(targets)
    if target_seeds is not None and len(target_seeds) != len(items):
        raise ValueError(f"{len(target_seeds)} target seeds for {len(items)} targets")
    low = np.empty((len(items), k))
    high = np.empty((len(items), k))
    for i, target in enumerate(items):
        P = np.asarray(target, dtype=np.float64)
        n = P.shape[0]
        if n == 0:
            raise ValueError(f"target {i} has no faces")
        own = target_seeds[i] if target_seeds is not None else [*seed_list, i]
        stream = np.random.default_rng(list(own) if isinstance(own, Sequence) else [int(own)])
        idx = stream.integers(0, n, size=(n_boot, n))
        step = max(1, _MAX_CELLS // max(1, n * k))
        estimates = np.empty((n_boot, k))
        for start in range(0, n_boot, step):
            part = slice(start, min(n_boot, start + step))
            sub = _take(fitted, part)
            estimates[part] = quantify(sub, P[idx[part]])
        low[i], high[i] = np.quantile(estimates, [alpha, 1.0 - alpha], axis=0)
    return low, high


def _take(fitted, part: slice):
    """The fits of replicates ``part`` (a view of the batched :class:`~quantifiers.Fitted`)."""
    from dataclasses import replace  # noqa: PLC0415 - tiny

    return replace(fitted, rates=fitted.rates[part], prior=fitted.prior[part],
                   temperature=fitted.temperature[part], bias=fitted.bias[part])
