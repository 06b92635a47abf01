"""Posterior intervals for class shares: a Gibbs sampler of the mixture weights, one chain per calibration
replicate.

The EM estimators (``emq``, ``emq_ts``, ``emq_bcts``) model a folder's faces as a mixture: face ``i`` has the
likelihood ``L[i, c] = P̂(c | face i) / π_c`` under class ``c`` (``P̂``: the probe's posteriors, recalibrated;
``π``: the calibration data's class shares), and the folder's population has class shares ``p``. With a
uniform prior on ``p`` (Dirichlet(1, …, 1): every share vector equally likely) the posterior of ``p`` is
sampled by data augmentation (Tanner & Wong 1987; Diebolt & Robert 1994): draw each face's class ``z_i``
with probabilities ``∝ p ∘ L[i]``, then ``p ~ Dirichlet(1 + counts of z)``, and repeat. The face sampling
noise (which faces the folder happens to hold) is in the posterior itself, so the faces are not
resampled; the calibration's noise is: chain ``b`` uses calibration replicate ``b`` of
:func:`~facestats_core.statistics.share_intervals.bootstrap_fits`. Each chain starts at the point
estimate, runs :data:`GIBBS_STEPS` steps and keeps its last :data:`GIBBS_KEEP` draws; the interval is the
equal-tailed percentile interval of all kept draws, widened where needed to hold the point estimate.

Unlike the bootstrap percentile interval, the posterior does not stop at 0: a class whose EM estimate is 0
still has a posterior that reaches up to the shares the faces cannot rule out, which is where the
bootstrap interval missed most (``docs/statistics.md``, "What the intervals mean").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike

from facestats_core.statistics.intervals import normal_quantile
from facestats_core.statistics.quantifiers import Fitted, calibrate

GIBBS_STEPS = 60
"""Gibbs steps per chain (from the point estimate): enough to forget the start (200 steps, or chains started
at the converged EM estimate, moved the benchmark's age coverage by under 0.01; docs/statistics.md)."""
GIBBS_KEEP = 5
"""Draws kept from the end of each chain."""
EM_METHODS: tuple[str, ...] = ("emq", "emq_ts", "emq_bcts")
"""The estimators whose likelihood the sampler uses."""
_MAX_CELLS = 4_000_000
"""Chain x face x class entries sampled at once; more chains go in chunks."""
_EPS = 1e-300


def face_likelihoods(fits: Fitted, posteriors: ArrayLike) -> np.ndarray:
    """``(B, n, k)``: every face's likelihood under every class for each of the ``B`` fits of ``fits``
    (recalibrated posterior over the fit's calibration mix, ``P̂(c | face) / π_c``; rows scaled to sum to 1,
    which leaves the posterior of the shares unchanged)."""
    if fits.method not in EM_METHODS:
        known = ", ".join(EM_METHODS)
        raise ValueError(f"posterior intervals need an EM estimator ({known}), got {fits.method!r}")
    P = np.asarray(posteriors, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] == 0 or P.shape[1] != fits.prior.shape[-1]:
        raise ValueError(f"posteriors of shape {P.shape} are not (n >= 1, {fits.prior.shape[-1]})")
    prior = np.atleast_2d(fits.prior)
    if np.any(prior <= 0):
        prior = (prior + 1e-4) / (prior + 1e-4).sum(axis=-1, keepdims=True)
    if fits.method == "emq":
        Q = np.broadcast_to(P, (prior.shape[0],) + P.shape)
    else:
        Q = calibrate(P, np.atleast_1d(fits.temperature), np.atleast_2d(fits.bias))
    L = Q / prior[:, None, :]
    return L / np.clip(L.sum(axis=-1, keepdims=True), _EPS, None)


def gibbs_shares(likelihoods: np.ndarray, start: ArrayLike, rng: np.random.Generator, *,
                 steps: int = GIBBS_STEPS, keep: int = GIBBS_KEEP) -> np.ndarray:
    """``(B * keep, k)`` posterior draws of the population's class shares under a uniform prior, one chain
    per row of ``likelihoods`` ``(B, n, k)``, each started at ``start`` ``(k,)`` (module docstring)."""
    from facestats_core.statistics.class_draws import count_classes  # noqa: PLC0415 - numba compiles on first use

    if not 1 <= keep <= steps:
        raise ValueError(f"keep ({keep}) must lie in [1, steps ({steps})]")
    L = np.asarray(likelihoods, dtype=np.float32)
    B, n, k = L.shape
    p = np.broadcast_to(np.clip(np.asarray(start, dtype=np.float64), 1e-6, None), (B, k)).copy()
    p /= p.sum(axis=-1, keepdims=True)
    upper = np.triu(np.ones((k, k)))
    draws = []
    for step in range(steps):
        # cum[b, i, j] = sum over classes c <= j of L[b, i, c] p[b, c]: one batched matrix product
        cum = np.matmul(L, (p[:, :, None] * upper).astype(np.float32))
        # each face's class, drawn ∝ p ∘ L: the first j with u · cum[-1] < cum[j] (class_draws.count_classes)
        counts = count_classes(cum, rng.random((B, n, 1), dtype=np.float32))
        g = rng.standard_gamma(1.0 + counts)
        p = g / g.sum(axis=-1, keepdims=True)
        if step >= steps - keep:
            draws.append(p)
    return np.concatenate(draws)


def posterior_intervals(
    fits: Fitted,
    targets: ArrayLike | Sequence[ArrayLike],
    starts: ArrayLike,
    *,
    confidence: float = 0.95,
    seed: int | Sequence[int] = 0,
    target_seeds: Sequence[int | Sequence[int]] | None = None,
    steps: int = GIBBS_STEPS,
    keep: int = GIBBS_KEEP,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` ``(s, k)``: equal-tailed posterior intervals of the population's class shares of ``s``
    targets (``(s, n, k)`` or a sequence of ``(n_i, k)`` posteriors), one Gibbs chain per replicate of
    ``fits`` (:func:`~facestats_core.statistics.share_intervals.bootstrap_fits` of an EM method), started at
    ``starts`` ``(s, k)`` (the point estimates; an interval is widened to hold its start where the point
    estimate lies just outside the posterior's percentiles, e.g. an estimate of 0.0001 under a lower end of
    0.0005). ``target_seeds[i]`` seeds target i's chains (default ``[*seed, i]``); equal inputs give equal
    intervals, whatever ``workers`` (threads sampling targets side by side; default: the CPU count) is:
    each target has its own random stream and its own rows of the result."""
    normal_quantile(confidence)  # validates
    items = list(targets)
    begin = np.asarray(starts, dtype=np.float64)
    if begin.shape[0] != len(items):
        raise ValueError(f"{begin.shape[0]} starts for {len(items)} targets")
    if target_seeds is not None and len(target_seeds) != len(items):
        raise ValueError(f"{len(target_seeds)} target seeds for {len(items)} targets")
    alpha = (1.0 - confidence) / 2.0
    k = fits.prior.shape[-1]
    n_fits = np.atleast_2d(fits.prior).shape[0]
    low = np.empty((len(items), k))
    high = np.empty((len(items), k))

    def one(i: int) -> None:
        P = np.asarray(items[i], dtype=np.float64)
        own = target_seeds[i] if target_seeds is not None else [*_seed_list(seed), i]
        rng = np.random.default_rng(_seed_list(own))
        chunk = max(1, _MAX_CELLS // max(1, P.shape[0] * k))
        draws = [gibbs_shares(face_likelihoods(_rows(fits, slice(a, a + chunk)), P), begin[i], rng,
                              steps=steps, keep=keep) for a in range(0, n_fits, chunk)]
        lo, hi = np.quantile(np.concatenate(draws), [alpha, 1.0 - alpha], axis=0)
        low[i], high[i] = np.minimum(lo, begin[i]), np.maximum(hi, begin[i])  # holds its estimate

    threads = min(len(items), workers if workers is not None else (os.cpu_count() or 1))
    if threads <= 1:
        for i in range(len(items)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(len(items))))
    return low, high


def _seed_list(seed: int | Sequence[int]) -> list[int]:
    return [int(s) for s in seed] if isinstance(seed, Sequence) else [int(seed)]


def _rows(fits: Fitted, part: slice) -> Fitted:
    """Replicates ``part`` of a batched fit (a single fit is one replicate)."""
    prior = np.atleast_2d(fits.prior)
    return Fitted(method=fits.method, rates=fits.rates, prior=prior[part],
                  temperature=np.atleast_1d(fits.temperature)[part], bias=np.atleast_2d(fits.bias)[part],
                  em_steps=fits.em_steps)
