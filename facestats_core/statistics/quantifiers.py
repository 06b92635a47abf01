"""Class-prevalence estimators ("quantifiers") on a probe's posteriors, batched with numpy.

Each estimator has QuaPy's shape (Moreo, Esuli & Sebastiani 2021, "QuaPy: a Python-based framework for
quantification", CIKM): :func:`fit_quantifier` learns what it needs from *calibration data* — posteriors
of labelled reference faces that the probe did not train on (out-of-fold or held-out) and their true
classes — and :func:`quantify` turns the posteriors of a set of target faces into estimated class
shares. Methods (:data:`METHODS`):

* ``cc`` — classify and count: the share of argmax predictions.
* ``pcc`` — probabilistic classify and count: the mean posterior (Bella et al. 2010).
* ``acc`` — adjusted classify and count (Forman 2008): solve ``Mᵀp = q`` on the simplex, ``M[i, j]`` =
  P(predicted j | true i) from the calibration data, ``q`` the CC shares.
* ``pacc`` — probabilistic ACC (Bella et al. 2010): the same with ``M[i, :]`` = mean posterior of the
  calibration faces of true class i and ``q`` the PCC shares.
* ``emq`` — expectation maximisation of the class priors (Saerens, Latinne & Decaestecker 2002, "SLD"):
  reweight every posterior by ``p / π`` (π: the calibration data's class shares), renormalise,
  ``p`` := the mean reweighted posterior, until ``p`` moves less than ``tol``.
* ``emq_ts`` / ``emq_bcts`` — EMQ on posteriors recalibrated by temperature scaling or bias-corrected
  temperature scaling (Alexandari, Kundaje & Shrikumar 2020, ICML): ``softmax(log P / T + b)`` with
  ``T`` (and ``b``) minimising the calibration data's negative log-likelihood.

The constrained solve of ACC/PACC is :func:`~facestats_core.statistics.prevalence.simplex_least_squares`.
Every function takes batches: the target posteriors ``(..., n, k)`` and a :class:`Fitted` whose arrays may
carry a leading batch dimension (one fit per bootstrap replicate), broadcast against each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from facestats_core.statistics.prevalence import simplex_least_squares

METHODS: tuple[str, ...] = ("cc", "pcc", "acc", "pacc", "emq", "emq_ts", "emq_bcts")
"""Every estimator :func:`fit_quantifier` knows, by name."""

EM_TOL = 1e-6
"""EMQ stops when no share moves more than this between two iterations."""
EM_MAX_ITER = 1000
_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class Fitted:
    """What one estimator learnt from calibration data (arrays may have a leading batch dimension).

    ``method``; ``rates``: ``(…, k, k)`` misclassification rates (ACC: hard, PACC: soft; identity
    otherwise); ``prior``: ``(…, k)`` class shares of the calibration data (EMQ's training prior);
    ``temperature``: ``(…,)`` and ``bias``: ``(…, k)`` (T = 1, b = 0 without calibration).
    """

    method: str
    rates: np.ndarray
    prior: np.ndarray
    temperature: np.ndarray
    bias: np.ndarray


def _check(posteriors: ArrayLike, k: int | None = None) -> np.ndarray:
    P = np.asarray(posteriors, dtype=np.float64)
    if P.ndim < 2 or (k is not None and P.shape[-1] != k):
        raise ValueError(f"posteriors of shape {P.shape} are not (…, n, {k or 'k'})")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise ValueError("posteriors must be finite and non-negative")
    return P


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return (labels[..., None] == np.arange(k)).astype(np.float64)


def class_weights(labels: ArrayLike, k: int, weights: ArrayLike | None = None) -> np.ndarray:
    """``(…, N, k)``: each calibration face's weight (1, or ``weights``) in the column of its class."""
    y = np.asarray(labels, dtype=np.int64)
    if y.ndim != 1 or np.any(y < 0) or np.any(y >= k):
        raise ValueError(f"labels must be class indices in [0, {k})")
    onehot = _one_hot(y, k)
    if weights is None:
        return onehot
    return np.asarray(weights, dtype=np.float64)[..., :, None] * onehot


def soft_rates(posteriors: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M, absent)``: ``M[i, :]`` = the (weighted) mean posterior of calibration faces of class i;
    a class without faces gets the identity row (``absent``). ``W``: :func:`class_weights`."""
    totals = W.sum(axis=-2)  # (…, k)
    sums = np.swapaxes(W, -1, -2) @ posteriors  # (…, k, k)
    absent = totals <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        M = np.where(absent[..., None], np.eye(posteriors.shape[-1]), sums / totals[..., None])
    return M, absent


def hard_posteriors(posteriors: np.ndarray) -> np.ndarray:
    """One-hot argmax of each posterior row (CC/ACC's crisp predictions)."""
    k = posteriors.shape[-1]
    return _one_hot(np.argmax(posteriors, axis=-1), k)


def calibrate(posteriors: ArrayLike, temperature: ArrayLike, bias: ArrayLike) -> np.ndarray:
    """``softmax(log P / T + b)`` row-wise; ``temperature`` ``(…,)`` and ``bias`` ``(…, k)`` broadcast
    over the batch dimensions of ``posteriors`` ``(…, n, k)``."""
    P = np.asarray(posteriors, dtype=np.float64)
    T = np.asarray(temperature, dtype=np.float64)[..., None, None]
    b = np.asarray(bias, dtype=np.float64)[..., None, :]
    z = np.log(np.clip(P, _EPS, None)) / T + b
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(
    posteriors: ArrayLike, labels: ArrayLike, *, bias: bool, weights: ArrayLike | None = None
) -> tuple[float, np.ndarray]:
    """``(T, b)`` minimising the (weighted) negative log-likelihood of ``softmax(log P / T + b)``.

    ``bias=False``: temperature scaling (b = 0); ``True``: bias-corrected temperature scaling. L-BFGS on
    ``log T`` and ``b`` with the analytic gradient; ``b`` is centred (softmax ignores a constant).
    """
    from scipy.optimize import minimize  # noqa: PLC0415 - heavy, imported when used

    P = _check(posteriors)
    k = P.shape[-1]
    y = np.asarray(labels, dtype=np.int64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    L = np.log(np.clip(P, _EPS, None))
    Y = _one_hot(y, k)
    total = w.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_t = theta[0]
        b = theta[1:] if bias else np.zeros(k)
        z = L * np.exp(-log_t) + b
        z = z - z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        logp = z - log_norm[:, None]
        nll = -float((w * (logp * Y).sum(axis=1)).sum()) / total
        resid = (np.exp(logp) - Y) * w[:, None] / total  # dNLL/dz
        g_t = float((resid * (L * -np.exp(-log_t))).sum())
        grad = np.concatenate([[g_t], resid.sum(axis=0) if bias else []])
        return nll, grad

    theta0 = np.zeros(1 + (k if bias else 0))
    result = minimize(loss, theta0, jac=True, method="L-BFGS-B")
    b = result.x[1:] - result.x[1:].mean() if bias else np.zeros(k)
    return float(np.exp(result.x[0])), b


def fit_quantifier(
    method: str, posteriors: ArrayLike, labels: ArrayLike, *, weights: ArrayLike | None = None
) -> Fitted:
    """Fit ``method`` on calibration data: ``posteriors`` ``(N, k)`` and true class indices ``labels`` ``(N,)``.

    ``weights`` ``(…, N)`` (e.g. bootstrap counts) weight the faces; a leading batch of weights gives a
    batch of fits (calibration is fitted once per weight vector).
    """
    if method not in METHODS:
        raise ValueError(f"unknown quantification method {method!r}; known: {', '.join(METHODS)}")
    P = _check(posteriors)
    if P.ndim != 2:
        raise ValueError(f"calibration posteriors must be (N, k), got {P.shape}")
    k = P.shape[-1]
    W = class_weights(labels, k, weights)
    counts = W.sum(axis=-2)
    prior = counts / np.clip(counts.sum(axis=-1, keepdims=True), _EPS, None)
    batch = W.shape[:-2]
    eye = np.broadcast_to(np.eye(k), batch + (k, k))
    T = np.ones(batch)
    b = np.zeros(batch + (k,))
    rates = eye
    if method == "acc":
        rates, _ = soft_rates(hard_posteriors(P), W)
    elif method == "pacc":
        rates, _ = soft_rates(P, W)
    elif method in ("emq_ts", "emq_bcts"):
        flat_w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1, P.shape[0])
        fits = [fit_temperature(P, labels, bias=method == "emq_bcts", weights=None if flat_w is None else wi)
                for wi in (flat_w if flat_w is not None else [None])]
        T = np.array([f[0] for f in fits]).reshape(batch)
        b = np.stack([f[1] for f in fits]).reshape(batch + (k,))
    return Fitted(method=method, rates=np.array(rates), prior=prior, temperature=T, bias=b)


def em_priors(posteriors: np.ndarray, prior: np.ndarray, *, tol: float = EM_TOL,
              max_iter: int = EM_MAX_ITER) -> np.ndarray:
    """Saerens-Latinne-Decaestecker EM: the class shares ``(…, k)`` of target posteriors ``(…, n, k)``
    whose classifier saw class shares ``prior`` ``(…, k)`` (zeros are smoothed)."""
    P = posteriors
    pi = np.asarray(prior, dtype=np.float64)
    if np.any(pi <= 0):
        pi = (pi + 1e-4) / (pi + 1e-4).sum(axis=-1, keepdims=True)
    batch = np.broadcast_shapes(P.shape[:-2], pi.shape[:-1])
    k = P.shape[-1]
    P = np.broadcast_to(P, batch + P.shape[-2:]).reshape(-1, *P.shape[-2:])
    pi = np.broadcast_to(pi, batch + (k,)).reshape(-1, k)
    q = pi.copy()
    live = np.arange(len(q))
    for _ in range(max_iter):  # rows that have converged stop iterating
        w = P[live] * (q[live] / pi[live])[:, None, :]
        w /= np.clip(w.sum(axis=-1, keepdims=True), _EPS, None)
        q_new = w.mean(axis=-2)
        moved = np.abs(q_new - q[live]).max(axis=-1)
        q[live] = q_new
        live = live[moved >= tol]
        if live.size == 0:
            break
    return q.reshape(batch + (k,))


def quantify(fitted: Fitted, posteriors: ArrayLike) -> np.ndarray:
    """Estimated class shares ``(…, k)`` of target faces with posteriors ``(…, n, k)`` (n ≥ 1)."""
    P = _check(posteriors, fitted.prior.shape[-1])
    if P.shape[-2] == 0:
        raise ValueError("no target faces to quantify")
    method = fitted.method
    if method == "cc":
        return hard_posteriors(P).mean(axis=-2)
    if method == "pcc":
        return P.mean(axis=-2)
    if method in ("acc", "pacc"):
        q = (hard_posteriors(P) if method == "acc" else P).mean(axis=-2)
        return simplex_least_squares(np.swapaxes(fitted.rates, -1, -2), q)
    if method != "emq":
        P = calibrate(P, fitted.temperature, fitted.bias)
    return em_priors(P, fitted.prior)
