"""Bootstrap intervals for estimated class shares that resample the target faces and the calibration data.

A share estimate has two sources of error: which faces happen to be in the folder (or slice) — the
folder as a sample of a population — and which labelled faces the estimator's rates and calibration were
learnt from. :func:`share_intervals` draws ``n_boot`` replicates; each refits the estimator on a
stratified resample of the calibration data (faces resampled with replacement within their true class,
so every class keeps its count) and estimates the shares of a resample (with replacement) of the target
faces; the interval is the percentile interval of the replicates. The calibration replicates are drawn
once and shared by every target (their intervals are then correlated; each is still a valid bootstrap
interval); each target's faces are resampled from its own stream.

Early-stopped EM (``em_steps``) is biased toward the calibration mix, a bias the bootstrap does not see
(every replicate stops the same way). Its interval therefore spans the percentile intervals of both the
early-stopped and the converged (maximum-likelihood) replicates, which reach from the regularised
estimate to the unbiased one; ``benchmarks/bench_prevalence.py`` measures the coverage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike

from facestats_core.statistics.intervals import normal_quantile
from facestats_core.statistics.quantifiers import Fitted, fit_quantifier, quantify

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


def bootstrap_fits(method: str, calibration_posteriors: ArrayLike, calibration_labels: ArrayLike, *,
                   n_boot: int = 200, seed: int | Sequence[int] = 0, weights: ArrayLike | None = None,
                   em_steps: int | None = None) -> Fitted:
    """``method`` fitted on ``n_boot`` stratified resamples of the calibration data (a batched :class:`Fitted`);
    ``weights`` ``(N,)`` multiply every replicate's resample counts; ``em_steps``: as :func:`fit_quantifier`."""
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    y_cal = np.asarray(calibration_labels, dtype=np.int64)
    rng = np.random.default_rng(_seed_list(seed))
    counts = calibration_resamples(y_cal, n_boot, rng)
    if weights is not None:
        counts = counts * np.asarray(weights, dtype=np.float64)[None, :]
    k = np.shape(calibration_posteriors)[-1]
    chunk = max(1, MAX_FIT_CELLS // max(1, len(y_cal) * k))
    parts = [fit_quantifier(method, calibration_posteriors, y_cal, weights=counts[a:a + chunk], em_steps=em_steps)
             for a in range(0, n_boot, chunk)]
    return parts[0] if len(parts) == 1 else _stacked(parts)


MAX_FIT_CELLS = 2_000_000
"""Replicate x calibration-face x class entries fitted at once: :func:`bootstrap_fits` fits its replicates
in chunks of this size, so its memory does not grow with the calibration set (each replicate's fit is its
own; the chunks only bound the batch)."""


def _stacked(parts: list[Fitted]) -> Fitted:
    """Batched fits of consecutive replicate chunks as one batched fit."""
    first = parts[0]

    def joined(name: str, batched_ndim: int) -> np.ndarray:
        arrays = [np.asarray(getattr(part, name)) for part in parts]
        return np.concatenate(arrays) if arrays[0].ndim == batched_ndim else arrays[0]

    return Fitted(method=first.method, rates=joined("rates", 3), prior=joined("prior", 2),
                  temperature=joined("temperature", 1), bias=joined("bias", 2), em_steps=first.em_steps)


def share_intervals(
    fits: Fitted,
    targets: ArrayLike | Sequence[ArrayLike],
    *,
    confidence: float = 0.95,
    seed: int | Sequence[int] = 0,
    target_seeds: Sequence[int | Sequence[int]] | None = None,
    starts: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of shape ``(s, k)``: percentile intervals of the shares of ``s`` targets.

    ``fits``: :func:`bootstrap_fits` (one fit per replicate); replicate ``b`` estimates the shares of a
    resample of the target's faces with fit ``b``. ``targets``: an ``(s, n, k)`` array or a sequence of
    ``(n_i, k)`` posterior arrays (n_i ≥ 1). ``target_seeds[i]`` seeds target i's face resampling
    (default ``[*seed, i]``). ``starts`` ``(s, k)``: each target's point estimate, where converged EM
    replicates start (faster; same optimum). With ``fits.em_steps`` set, the interval spans the
    early-stopped and the converged replicates' percentile intervals (module docstring). Seeded: equal
    inputs give equal intervals.
    """
    normal_quantile(confidence)  # validates
    n_boot = fits.prior.shape[0]
    k = fits.prior.shape[-1]
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
        own = target_seeds[i] if target_seeds is not None else [*_seed_list(seed), i]
        idx = np.random.default_rng(_seed_list(own)).integers(0, n, size=(n_boot, n))
        step = max(1, _MAX_CELLS // max(1, n * k))
        variants = [fits] if fits.em_steps is None else [fits, replace(fits, em_steps=None)]
        for v, variant in enumerate(variants):
            estimates = np.empty((n_boot, k))
            for start in range(0, n_boot, step):
                part = slice(start, min(n_boot, start + step))
                estimates[part] = quantify(_take(variant, part), P[idx[part]],
                                           start=None if starts is None else np.asarray(starts)[i])
            lo, hi = np.quantile(estimates, [alpha, 1.0 - alpha], axis=0)
            low[i], high[i] = (lo, hi) if v == 0 else (np.minimum(low[i], lo), np.maximum(high[i], hi))
    return low, high


def _seed_list(seed: int | Sequence[int]) -> list[int]:
    return [int(s) for s in seed] if isinstance(seed, Sequence) else [int(seed)]


def _take(fits: Fitted, part: slice) -> Fitted:
    """The fits of replicates ``part`` (views of the batched arrays)."""
    return replace(fits, rates=fits.rates[part], prior=fits.prior[part],
                   temperature=fits.temperature[part], bias=fits.bias[part])
