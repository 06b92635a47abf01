"""Confidence intervals: Wilson score intervals for shares, percentile bootstrap for means.

The Wilson interval (Wilson 1927; recommended by Newcombe 1998 and by Brown,
Cai & DasGupta 2001) stays inside [0, 1] and keeps close to its nominal
coverage for small ``n`` and shares near 0 or 1, where the textbook
``p ± z·sqrt(p(1-p)/n)`` interval collapses to a point or leaves [0, 1].
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

_MAX_BOOT_CELLS = 4_000_000
"""Resample indices drawn at once (n_boot x n); larger problems are drawn in chunks of replicates."""


def normal_quantile(confidence: float) -> float:
    """The two-sided standard-normal critical value ``z`` for ``confidence`` (0.95 -> 1.95996…)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_intervals(
    count: ArrayLike, n: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`wilson_interval`: ``(low, high)`` arrays broadcast from ``count`` and ``n``.

    Entries with ``n == 0`` are NaN. Raises ``ValueError`` for a negative
    count or a count above ``n``.
    """
    k = np.asarray(count, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    k, m = np.broadcast_arrays(k, m)
    if np.any(k < 0) or np.any(m < 0) or np.any(k > m):
        raise ValueError("counts must satisfy 0 <= count <= n")
    z = normal_quantile(confidence)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / m
        denom = 1.0 + z2 / m
        centre = (p + z2 / (2.0 * m)) / denom
        half = (z / denom) * np.sqrt(p * (1.0 - p) / m + z2 / (4.0 * m * m))
        low = np.where(m > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        high = np.where(m > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    # exact ends: 0 of n has low 0, n of n has high 1 (no rounding below/above)
    low = np.where((m > 0) & (k == 0), 0.0, low)
    high = np.where((m > 0) & (k == m), 1.0, high)
    return low, high


def wilson_interval(count: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``count`` successes out of ``n``; ``(nan, nan)`` when ``n == 0``.

    ``low, high = (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with
    ``p = count / n`` and ``z`` the normal quantile of ``confidence``.
    """
    low, high = wilson_intervals(count, n, confidence)
    return float(low), float(high)


def bootstrap_mean_interval(
    values: ArrayLike, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile-bootstrap interval.

    Non-finite values (NaN, inf) are ignored. ``n_boot`` resamples with
    replacement are drawn at once with numpy (in chunks of replicates for very
    large inputs), seeded by ``seed``; the interval is the ``(1-confidence)/2``
    and ``(1+confidence)/2`` percentiles of the resampled means. No values:
    ``(nan, nan, nan)``; a single value ``v``: ``(v, v, v)``.
    """
    normal_quantile(confidence)  # validates
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_BOOT_CELLS // x.size)
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, float(low), float(high)


def accuracy_interval(accuracy: float | None, n: int | None, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson interval of an accuracy measured on ``n`` examples (correct = round(accuracy·n));
    None when either is missing, not finite or ``n`` is not positive."""
    if accuracy is None or n is None or n <= 0 or not math.isfinite(accuracy):
        return None
    correct = min(max(round(accuracy * n), 0), n)
    return wilson_interval(correct, n, confidence)
