"""Least squares on the probability simplex: the constrained solve of (probabilistic) adjusted count.

ACC and PACC (:mod:`~facestats_core.statistics.quantifiers`) solve ``Mᵀ p = q`` for class shares
``p``; with estimated rates and shares the plain solution can leave the simplex, so
:func:`simplex_least_squares` solves ``min ‖Mᵀ p − q‖²`` subject to ``p ≥ 0, Σp = 1`` (equal to the
plain solution when that is a valid share vector), batched.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_TOL = 1e-10


# --------------------------------------------------------------------------- the constrained solve


def _solve_on_support(G: np.ndarray, h: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched ``min ½xᵀGx − hᵀx`` s.t. ``Σx = 1``, ``x = 0`` off the support ``S``: ``(x, λ)``."""
    n, k = h.shape
    Sf = S.astype(np.float64)
    kkt = np.empty((n, k + 1, k + 1), dtype=np.float64)
    block = kkt[:, :k, :k]
    np.multiply(G, Sf[:, :, None], out=block)
    block *= Sf[:, None, :]
    diag = np.arange(k)
    block[:, diag, diag] += 1.0 - Sf
    kkt[:, :k, k] = Sf
    kkt[:, k, :k] = Sf
    kkt[:, k, k] = 0.0
    rhs = np.empty((n, k + 1, 1), dtype=np.float64)
    np.multiply(h, Sf, out=rhs[:, :k, 0])
    rhs[:, k, 0] = 1.0
    sol = np.linalg.solve(kkt, rhs)[:, :, 0]
    return sol[:, :k], sol[:, k]


def _nnls_simplex(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One ``min ‖Ax − y‖²`` on the simplex: NNLS on ``[A; w·1ᵀ] x ≈ [y; w]`` (w large), renormalised."""
    from scipy.optimize import nnls  # noqa: PLC0415 - heavy, imported when used
    w = 1e3 * max(1.0, float(np.abs(A).max(initial=0.0)))
    x, _ = nnls(np.vstack([A, np.full((1, A.shape[1]), w)]), np.append(y, w))
    total = x.sum()
    return x / total if total > 0 else np.full(A.shape[1], 1.0 / A.shape[1])


def simplex_least_squares(A: ArrayLike, y: ArrayLike, *, max_iter: int | None = None) -> np.ndarray:
    """Batched ``argmin ‖A x − y‖²`` over the probability simplex (``x ≥ 0``, ``Σx = 1``).

    ``A``: ``(..., m, k)``, ``y``: ``(..., m)``, batch shapes broadcast; returns
    ``(..., k)``. A vectorised active-set method: solve the equality-constrained
    problem on the current support (all classes first); drop every negative
    entry from the support while any is negative, otherwise add back the
    excluded class that most violates the KKT conditions. A problem is done
    when its solution satisfies the KKT conditions, so it is the exact optimum
    of this convex problem. Problems still open after ``max_iter`` rounds
    (default ``3k + 5``; the dropping heuristic can cycle on degenerate ``A``)
    or with a non-finite solution are solved one by one with
    :func:`scipy.optimize.nnls` on ``[A; w·1ᵀ] x ≈ [y; w]`` (w large), then
    renormalised. A tiny ridge keeps singular ``A`` solvable (the optimum is
    then not unique).
    """
    A = np.asarray(A, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if A.ndim < 2 or y.ndim < 1 or A.shape[-2] != y.shape[-1]:
        raise ValueError(f"shapes {A.shape} and {y.shape} do not match")
    k = A.shape[-1]
    batch = np.broadcast_shapes(A.shape[:-2], y.shape[:-1])
    At = np.swapaxes(A, -1, -2)
    G_small = At @ A
    ridge = 1e-12 * max(1.0, float(np.trace(G_small, axis1=-2, axis2=-1).max(initial=0.0)))
    G_small = G_small + ridge * np.eye(k)
    h = np.broadcast_to((At @ y[..., None])[..., 0], batch + (k,)).reshape(-1, k)
    G = np.broadcast_to(G_small, batch + (k, k)).reshape(-1, k, k)
    n = h.shape[0]
    support = np.ones((n, k), dtype=bool)
    done = np.zeros(n, dtype=bool)
    stuck = np.zeros(n, dtype=bool)
    x = np.zeros((n, k), dtype=np.float64)
    tol_mu = _TOL * max(1.0, float(np.abs(h).max(initial=0.0)))
    for _ in range(3 * k + 5 if max_iter is None else max_iter):
        open_rows = np.flatnonzero(~done)
        if open_rows.size == 0:
            break
        S = support[open_rows]
        try:
            xs, lam = _solve_on_support(G[open_rows], h[open_rows], S)
        except np.linalg.LinAlgError:
            break  # left to the one-by-one fallback
        broken = ~(np.isfinite(xs).all(axis=1) & np.isfinite(lam))
        if broken.any():
            stuck[open_rows[broken]] = True
            done[open_rows[broken]] = True
            keep = ~broken
            open_rows, S, xs, lam = open_rows[keep], S[keep], xs[keep], lam[keep]
        negative = S & (xs < -_TOL)
        has_negative = negative.any(axis=1)
        support[open_rows[has_negative]] &= ~negative[has_negative]
        feasible = ~has_negative
        rows = open_rows[feasible]
        xf = np.clip(xs[feasible], 0.0, None)
        mu = np.einsum("nij,nj->ni", G[rows], xf) - h[rows] + lam[feasible, None]
        violated = ~S[feasible] & (mu < -tol_mu)
        has_violation = violated.any(axis=1)
        add = np.argmin(np.where(violated, mu, np.inf), axis=1)
        support[rows[has_violation], add[has_violation]] = True
        finished = rows[~has_violation]
        x[finished] = xf[~has_violation]
        done[finished] = True
    left = np.flatnonzero(~done | stuck)
    if left.size:
        A_b = np.broadcast_to(A, batch + A.shape[-2:])
        y_b = np.broadcast_to(y, batch + y.shape[-1:])
        for row in left:
            where = np.unravel_index(row, batch) if batch else ()
            x[row] = _nnls_simplex(A_b[where], y_b[where])
    x /= x.sum(axis=1, keepdims=True)
    return x.reshape(batch + (k,))
