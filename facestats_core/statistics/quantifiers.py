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

The EM methods take ``em_steps``: ``None`` iterates to convergence (the maximum-likelihood shares);
an integer stops after that many plain EM steps from ``π`` (early stopping: the estimate moves from the
calibration mix only as far as the data pull it in those steps, which regularises the directions a weak
probe barely separates; the step count is chosen by ``benchmarks/bench_prevalence.py``).

The constrained solve of ACC/PACC is :func:`~facestats_core.statistics.simplex.simplex_least_squares`.
Every function takes batches: the target posteriors ``(..., n, k)`` and a :class:`Fitted` whose arrays may
carry a leading batch dimension (one fit per bootstrap replicate), broadcast against each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits

from facestats_core.statistics.simplex import simplex_least_squares

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
    ``temperature``: ``(…,)`` and ``bias``: ``(…, k)`` (T = 1, b = 0 without calibration);
    ``em_steps``: EM steps from ``prior`` (None: to convergence; EM methods only).
    """

    method: str
    rates: np.ndarray
    prior: np.ndarray
    temperature: np.ndarray
    bias: np.ndarray
    em_steps: int | None = None


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


def _nll(z: np.ndarray, Y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-replicate weighted mean NLL of logits ``z`` ``(B, N, k)`` and the softmax probabilities."""
    z = z - z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=-1))
    logp = z - log_norm[..., None]
    nll = -(w * (logp * Y).sum(axis=-1)).sum(axis=-1) / w.sum(axis=-1)
    return nll, np.exp(logp)


def fit_temperatures(
    posteriors: ArrayLike, labels: ArrayLike, *, bias: bool, weights: ArrayLike | None = None,
    max_iter: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """``(T, b)`` of shapes ``(B,)``, ``(B, k)``: for each weight vector (``weights`` ``(B, N)``, default one
    vector of ones) the minimiser of the weighted negative log-likelihood of ``softmax(log P / T + b)``.

    ``bias=False``: temperature scaling (b = 0); ``True``: bias-corrected temperature scaling. The NLL is
    convex in ``(1/T, b)`` (the logits are linear in them), so a damped Newton method with step halving
    solves every replicate at once; ``b`` is centred (softmax ignores a constant).
    """
    P = _check(posteriors)
    N, k = P.shape
    y = np.asarray(labels, dtype=np.int64)
    w = np.ones((1, N)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    B = w.shape[0]
    L = np.log(np.clip(P, _EPS, None))
    Y = _one_hot(y, k)
    m = 1 + (k if bias else 0)
    theta = np.zeros((B, m))
    theta[:, 0] = 1.0  # 1/T
    total = w.sum(axis=1)

    def logits(t: np.ndarray) -> np.ndarray:
        z = t[:, 0, None, None] * L[None]
        return z + t[:, None, 1:] if bias else z

    loss, p = _nll(logits(theta), Y, w)
    for _ in range(max_iter):
        r = w[..., None] * (p - Y) / total[:, None, None]  # (B, N, k): dNLL/dz
        pL = (p * L).sum(axis=-1)  # (B, N)
        grad = [(r * L).sum(axis=(1, 2))[:, None]]
        wn = w / total[:, None]
        h_ss = (wn * ((p * L * L).sum(axis=-1) - pL ** 2)).sum(axis=1)
        H = np.zeros((B, m, m))
        H[:, 0, 0] = h_ss
        if bias:
            grad.append(r.sum(axis=1))
            h_sb = np.einsum("bn,bnk->bk", wn, p * L - p * pL[..., None])
            h_bb = np.einsum("bn,bnk->bk", wn, p)[:, :, None] * np.eye(k) - np.einsum("bn,bnj,bnk->bjk", wn, p, p)
            H[:, 0, 1:] = H[:, 1:, 0] = h_sb
            H[:, 1:, 1:] = h_bb + 1.0  # pins the sum of b (its gradient is 0) without changing the optimum
        g = np.concatenate(grad, axis=1)
        H += 1e-9 * np.eye(m)
        step = np.linalg.solve(H, g[..., None])[..., 0]
        size = np.ones(B)
        for _ in range(30):  # halve the step of every replicate whose loss went up
            trial = theta - size[:, None] * step
            new_loss, new_p = _nll(logits(trial), Y, w)
            worse = ~(new_loss <= loss + 1e-12) | (trial[:, 0] <= 0)
            if not worse.any():
                break
            size = np.where(worse, size / 2, size)
        improvement = loss - new_loss
        theta, loss, p = trial, new_loss, new_p
        if np.all(np.abs(g).max(axis=1) < 1e-8) or np.all(improvement < 1e-12):
            break
    b = theta[:, 1:] - theta[:, 1:].mean(axis=1, keepdims=True) if bias else np.zeros((B, k))
    return 1.0 / theta[:, 0], b


def fit_temperature(
    posteriors: ArrayLike, labels: ArrayLike, *, bias: bool, weights: ArrayLike | None = None
) -> tuple[float, np.ndarray]:
    """One ``(T, b)`` of :func:`fit_temperatures` (``weights``: ``(N,)`` or None)."""
    T, b = fit_temperatures(posteriors, labels, bias=bias,
                            weights=None if weights is None else np.asarray(weights)[None])
    return float(T[0]), b[0]


def fit_quantifier(
    method: str, posteriors: ArrayLike, labels: ArrayLike, *, weights: ArrayLike | None = None,
    em_steps: int | None = None,
) -> Fitted:
    """Fit ``method`` on calibration data: ``posteriors`` ``(N, k)`` and true class indices ``labels`` ``(N,)``.

    ``weights`` ``(…, N)`` (e.g. bootstrap counts) weight the faces; a leading batch of weights gives a
    batch of fits (calibration is fitted once per weight vector). ``em_steps`` (EM methods): stop EM after
    that many steps from the calibration mix (None: iterate to convergence).
    """
    if method not in METHODS:
        raise ValueError(f"unknown quantification method {method!r}; known: {', '.join(METHODS)}")
    if em_steps is not None and (not method.startswith("emq") or int(em_steps) < 1):
        raise ValueError(f"em_steps={em_steps!r}: a positive step count, for an EM method only")
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
        flat = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1, P.shape[0])
        T, b = fit_temperatures(P, labels, bias=method == "emq_bcts", weights=flat)
        T = T.reshape(batch)
        b = b.reshape(batch + (k,))
    return Fitted(method=method, rates=np.array(rates), prior=prior, temperature=T, bias=b,
                  em_steps=None if em_steps is None else int(em_steps))


def em_priors(posteriors: np.ndarray, prior: np.ndarray, *, start: np.ndarray | None = None,
              tol: float = EM_TOL, max_iter: int = EM_MAX_ITER, steps: int | None = None) -> np.ndarray:
    """Saerens-Latinne-Decaestecker EM: the class shares ``(…, k)`` of target posteriors ``(…, n, k)``
    whose classifier saw class shares ``prior`` ``(…, k)`` (zeros are smoothed). The iteration starts
    from ``prior``, or from ``start`` (``(…, k)``, e.g. the point estimate for bootstrap replicates):
    the likelihood is concave in the shares, so the start changes the iterations, not the optimum.
    ``steps``: exactly that many plain EM steps from ``prior`` instead (early stopping; ``start`` is
    then ignored, since the stopped estimate depends on where it starts)."""
    P = posteriors
    pi = np.asarray(prior, dtype=np.float64)
    if np.any(pi <= 0):
        pi = (pi + 1e-4) / (pi + 1e-4).sum(axis=-1, keepdims=True)
    batch = np.broadcast_shapes(P.shape[:-2], pi.shape[:-1])
    k = P.shape[-1]
    P = np.broadcast_to(P, batch + P.shape[-2:]).reshape(-1, *P.shape[-2:])
    pi = np.broadcast_to(pi, batch + (k,)).reshape(-1, k)
    if steps is not None:
        q = pi.copy()
        for _ in range(int(steps)):
            w = P * (q / pi)[:, None, :]
            w /= np.clip(w.sum(axis=-1, keepdims=True), _EPS, None)
            q = w.mean(axis=-2)
        return q.reshape(batch + (k,))
    q = pi.copy() if start is None else np.broadcast_to(
        np.clip(np.asarray(start, dtype=np.float64), 1e-6, None), batch + (k,)).reshape(-1, k).copy()
    q /= q.sum(axis=-1, keepdims=True)
    live = np.arange(len(q))

    def step(rows: np.ndarray, shares: np.ndarray) -> np.ndarray:
        w = P[rows] * (shares / pi[rows])[:, None, :]
        w /= np.clip(w.sum(axis=-1, keepdims=True), _EPS, None)
        return w.mean(axis=-2)

    for _ in range(max_iter // 3 + 1):  # rows that have converged stop iterating
        q0 = q[live]
        q1 = step(live, q0)
        q2 = step(live, q1)
        r = q1 - q0
        v = q2 - q1 - r
        # SQUAREM (Varadhan & Roland 2008): extrapolate along the EM path, keep it if it stays a share vector
        alpha = -np.sqrt((r * r).sum(axis=-1) / np.clip((v * v).sum(axis=-1), 1e-300, None))
        alpha = np.minimum(alpha, -1.0)[:, None]
        jump = q0 - 2 * alpha * r + alpha * alpha * v
        ok = (jump > 0).all(axis=-1) & np.isfinite(jump).all(axis=-1)
        candidate = np.where(ok[:, None], jump, q2)
        candidate /= candidate.sum(axis=-1, keepdims=True)
        q_new = step(live, candidate)
        moved = np.abs(q_new - candidate).max(axis=-1)
        q[live] = q_new
        live = live[moved >= tol]
        if live.size == 0:
            break
    return q.reshape(batch + (k,))


def quantify(fitted: Fitted, posteriors: ArrayLike, *, start: np.ndarray | None = None) -> np.ndarray:
    """Estimated class shares ``(…, k)`` of target faces with posteriors ``(…, n, k)`` (n ≥ 1);
    ``start``: where EM starts (:func:`em_priors`; other methods ignore it)."""
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
        with threadpool_limits(limits=1, user_api="blas"):  # small batched solves: one thread is faster
            return simplex_least_squares(np.swapaxes(fitted.rates, -1, -2), q)
    if method != "emq":
        P = calibrate(P, fitted.temperature, fitted.bias)
    return em_priors(P, fitted.prior, start=start, steps=fitted.em_steps)
