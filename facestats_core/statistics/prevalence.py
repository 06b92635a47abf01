"""Class shares corrected for classifier error: adjusted classify-and-count with a bootstrap interval.

Counting argmax predictions ("classify and count") estimates the share of
*predicted* classes, which is biased whenever the classifier confuses classes
unevenly: a gender probe that calls 25 % of men "female" inflates the female
share of a mostly-male set. With the held-out confusion matrix ``C`` (rows =
true class, columns = predicted class, counts) and its row-normalised form
``M`` (``M[i, j]`` = P(predicted j | true i)), the expected predicted shares
are ``q = Mᵀ p`` for true shares ``p``. **Adjusted classify-and-count**
(Forman 2008, "Quantifying counts and costs via classification", Data Mining
and Knowledge Discovery 17(2); the multi-class matrix form is the
misclassification correction of Buonaccorsi 2010, "Measurement Error: Models,
Methods and Applications", and the confusion-matrix method discussed by
Saerens, Latinne & Decaestecker 2002, Neural Computation 14(1)) solves
``Mᵀ p = q̂`` for the observed predicted shares ``q̂``. The solution can leave the
probability simplex through sampling noise, so :func:`simplex_least_squares`
solves ``min ‖Mᵀ p − q̂‖²`` subject to ``p ≥ 0, Σp = 1`` (equal to the plain
solution when that is a valid share vector).

Uncertainty (:func:`corrected_prevalences`): a parametric bootstrap that
resamples both sources of error. Each replicate draws the slice's predicted
counts from Multinomial(n, q̂) **and** every row of ``C`` from
Multinomial(n_i, C_i / n_i) (n_i = held-out faces of true class i), re-solves,
and the interval is the percentile interval of the replicates. Ignoring the
second source (treating ``M`` as known) gives intervals that are too narrow
when the held-out set is small.

Instability (``unstable=True``, with the reason): the correction divides by
``M`` in effect, so it is only trustworthy when ``M`` is well conditioned and
well estimated. Triggers, each a keyword argument with the default below:

* ``cond₂(M) > MAX_CONDITION`` (20; ``inf`` for a singular ``M``);
* a true class with fewer than ``MIN_HELDOUT_PER_CLASS`` (20) held-out faces,
  including classes absent from the held-out set (an all-zero row: that row
  is taken as "always predicted correctly", the identity row, so the system
  stays solvable; the class's corrected share then rests on that assumption);
* the unconstrained solution of ``Mᵀ p = q̂`` has negative entries summing to
  less than ``−MAX_NEGATIVE_MASS`` (0.10), i.e. the data are far from
  anything the confusion matrix can produce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from facestats_core.statistics.intervals import normal_quantile

METHOD = "adjusted_classify_and_count"
"""Name of the estimator, as written in the ``correction`` column."""

MAX_CONDITION = 20.0
"""Largest 2-norm condition number of the row-normalised confusion matrix considered stable."""

MIN_HELDOUT_PER_CLASS = 20
"""Fewest held-out faces of a true class for its confusion row to count as well estimated."""

MAX_NEGATIVE_MASS = 0.10
"""Largest total negative share of the unconstrained solution considered stable."""

_TOL = 1e-10
_SINGULAR = 1e12
"""Condition number above which ``M`` is reported as singular."""


@dataclass(frozen=True, eq=False)
class PrevalenceEstimate:
    """Observed and corrected class shares of one slice (arrays in ``classes`` order).

    ``counts``: predicted counts; ``observed = counts / n``; ``corrected``: the
    adjusted classify-and-count estimate; ``low``/``high``: its percentile
    bootstrap interval; ``unstable`` and ``reason`` (``""`` when stable) as in
    the module docstring. With ``n == 0`` every share is NaN and ``unstable``.
    """

    classes: tuple[str, ...]
    n: int
    counts: np.ndarray
    observed: np.ndarray
    corrected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    unstable: bool
    reason: str


# --------------------------------------------------------------------------- confusion matrices


def align_confusion(labels: Sequence[str], matrix: ArrayLike, classes: Sequence[str]) -> np.ndarray:
    """``matrix`` (rows = true, columns = predicted, in ``labels`` order) re-indexed to ``classes``.

    Classes missing from ``labels`` get all-zero rows and columns. Raises
    ``ValueError`` for a non-square or negative matrix, a size that does not
    match ``labels``, repeated labels or labels outside ``classes``.
    """
    C = np.asarray(matrix, dtype=np.float64)
    labels = [str(label) for label in labels]
    if C.ndim != 2 or C.shape[0] != C.shape[1] or C.shape[0] != len(labels):
        raise ValueError(f"confusion matrix of shape {C.shape} does not match {len(labels)} labels")
    if len(set(labels)) != len(labels):
        raise ValueError(f"repeated confusion-matrix labels: {labels}")
    unknown = [label for label in labels if label not in classes]
    if unknown:
        raise ValueError(f"confusion-matrix labels {unknown} are not among the classes {list(classes)}")
    if not np.all(np.isfinite(C)) or np.any(C < 0):
        raise ValueError("confusion-matrix counts must be finite and non-negative")
    index = [list(classes).index(label) for label in labels]
    out = np.zeros((len(classes), len(classes)), dtype=np.float64)
    out[np.ix_(index, index)] = C
    return out


def misclassification_matrix(confusion: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(M, absent)``: the row-normalised confusion matrix and a mask of rows without held-out faces.

    ``M[i, j]`` = share of held-out faces of true class ``i`` predicted as ``j``;
    an all-zero row (``absent[i]``) becomes the identity row.
    """
    C = np.asarray(confusion, dtype=np.float64)
    rows = C.sum(axis=-1, keepdims=True)
    absent = rows[..., 0] <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        M = np.where(rows > 0, C / rows, 0.0)
    eye = np.broadcast_to(np.eye(C.shape[-1]), C.shape)
    M = np.where(absent[..., None], eye, M)
    return M, absent


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


def adjusted_classify_and_count(confusion: ArrayLike, counts: ArrayLike) -> np.ndarray:
    """The corrected shares for predicted ``counts`` given the held-out ``confusion`` counts.

    Solves ``Mᵀ p = q̂`` on the simplex (:func:`simplex_least_squares`) with
    ``M`` from :func:`misclassification_matrix` and ``q̂ = counts / Σcounts``.
    ``counts`` may be a batch ``(..., k)``; rows summing to 0 give NaN.
    """
    M, _ = misclassification_matrix(confusion)
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(total > 0, c / total, 1.0 / c.shape[-1])
    p = simplex_least_squares(np.swapaxes(M, -1, -2), q)
    return np.where(total > 0, p, np.nan)


# --------------------------------------------------------------------------- diagnostics


def matrix_problems(
    confusion: ArrayLike,
    classes: Sequence[str],
    *,
    max_condition: float = MAX_CONDITION,
    min_heldout: int = MIN_HELDOUT_PER_CLASS,
) -> list[str]:
    """Why the held-out matrix makes the correction unstable (empty list: it does not).

    Checks the condition number of ``M`` and the held-out faces per true class
    (module docstring). The texts name the classes concerned.
    """
    C = np.asarray(confusion, dtype=np.float64)
    M, absent = misclassification_matrix(C)
    problems: list[str] = []
    if absent.any():
        names = ", ".join(c for c, a in zip(classes, absent) if a)
        problems.append(f"no held-out faces of true class {names} (assumed always predicted correctly)")
    rows = C.sum(axis=1)
    few = [(c, int(r)) for c, r, a in zip(classes, rows, absent) if not a and r < min_heldout]
    if few:
        listed = ", ".join(f"{c} ({r})" for c, r in few)
        problems.append(f"fewer than {min_heldout} held-out faces of true class {listed}")
    cond = float(np.linalg.cond(M)) if M.size else float("inf")
    if not cond <= _SINGULAR:
        problems.append("the misclassification matrix is singular")
    elif cond > max_condition:
        problems.append(
            "the misclassification matrix is ill-conditioned "
            f"(condition number {cond:.1f} > {max_condition:g})"
        )
    return problems


def negative_mass(confusion: ArrayLike, counts: ArrayLike) -> float:
    """Total negative share of the unconstrained solution of ``Mᵀ p = q̂`` (≤ 0; NaN if singular)."""
    M, _ = misclassification_matrix(confusion)
    c = np.asarray(counts, dtype=np.float64)
    if c.sum() <= 0 or not np.linalg.cond(M) <= _SINGULAR:
        return float("nan")
    try:
        p = np.linalg.solve(M.T, c / c.sum())
    except np.linalg.LinAlgError:
        return float("nan")
    return float(np.minimum(p, 0.0).sum())


# --------------------------------------------------------------------------- estimates with intervals


def _check_counts(counts: np.ndarray, k: int) -> np.ndarray:
    if counts.ndim != 2 or counts.shape[1] != k:
        raise ValueError(f"counts of shape {counts.shape} do not match {k} classes")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise ValueError("predicted counts must be non-negative integers")
    return counts.astype(np.int64)


def bootstrap_confusions(confusion: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, k, k)`` confusion matrices, row i from Multinomial(n_i, C_i / n_i); zero rows stay 0."""
    C = np.asarray(confusion, dtype=np.float64)
    k = C.shape[0]
    out = np.zeros((n_boot, k, k), dtype=np.float64)
    for i in range(k):
        n_i = round(float(C[i].sum()))
        if n_i > 0:
            out[:, i, :] = rng.multinomial(n_i, C[i] / C[i].sum(), size=n_boot)
    return out


def corrected_prevalences(
    confusion: ArrayLike,
    counts: ArrayLike,
    classes: Sequence[str],
    *,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    slice_seeds: Sequence[int] | None = None,
    max_condition: float = MAX_CONDITION,
    min_heldout: int = MIN_HELDOUT_PER_CLASS,
    max_negative_mass: float = MAX_NEGATIVE_MASS,
) -> list[PrevalenceEstimate]:
    """Corrected shares with bootstrap intervals for several slices sharing one confusion matrix.

    ``confusion``: ``(k, k)`` held-out counts (rows = true, columns =
    predicted, in ``classes`` order, e.g. from :func:`align_confusion`);
    ``counts``: ``(s, k)`` predicted counts, one row per slice. The
    ``n_boot`` resampled confusion matrices are drawn once and shared by the
    slices (each slice's interval is still a valid bootstrap interval; the
    slices' intervals are then correlated); each slice's predicted counts are
    resampled from its own stream (``slice_seeds[i]``, default ``[seed, i]``),
    so a slice's result does not depend on the other slices. All replicates
    of all slices are solved in one batch. Seeded: the same inputs and seeds
    give the same result.
    """
    normal_quantile(confidence)  # validates
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    classes = tuple(classes)
    k = len(classes)
    C = np.asarray(confusion, dtype=np.float64)
    if C.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {C.shape} does not match {k} classes")
    if not np.all(np.isfinite(C)) or np.any(C < 0):
        raise ValueError("confusion-matrix counts must be finite and non-negative")
    N = _check_counts(np.atleast_2d(np.asarray(counts, dtype=np.float64)), k)
    n = N.sum(axis=1)
    s = N.shape[0]
    if slice_seeds is not None and len(slice_seeds) != s:
        raise ValueError(f"{len(slice_seeds)} slice seeds for {s} slices")
    base_problems = matrix_problems(C, classes, max_condition=max_condition, min_heldout=min_heldout)

    with np.errstate(divide="ignore", invalid="ignore"):
        observed = np.where(n[:, None] > 0, N / n[:, None], np.nan)
    corrected = np.full((s, k), np.nan)
    low = np.full((s, k), np.nan)
    high = np.full((s, k), np.nan)
    live = np.flatnonzero(n > 0)
    if live.size:
        M, _ = misclassification_matrix(C)
        corrected[live] = simplex_least_squares(M.T, observed[live])
        M_boot, _ = misclassification_matrix(bootstrap_confusions(C, n_boot, np.random.default_rng(seed)))
        q_boot = np.empty((n_boot, live.size, k), dtype=np.float64)
        for col, row in enumerate(live):
            stream = np.random.default_rng(slice_seeds[row] if slice_seeds is not None else [seed, row])
            q_boot[:, col] = stream.multinomial(n[row], observed[row], size=n_boot) / n[row]
        p_boot = simplex_least_squares(np.swapaxes(M_boot, -1, -2)[:, None], q_boot)  # (B, s, k)
        alpha = (1.0 - confidence) / 2.0
        low[live], high[live] = np.quantile(p_boot, [alpha, 1.0 - alpha], axis=0)

    out: list[PrevalenceEstimate] = []
    for row in range(s):
        problems = list(base_problems)
        if n[row] == 0:
            problems.append("no faces with a prediction")
        else:
            mass = negative_mass(C, N[row])
            if np.isfinite(mass) and mass < -max_negative_mass:
                problems.append(
                    f"the unconstrained solution lies outside the simplex (negative shares sum to {mass:.2f} "
                    f"< -{max_negative_mass:g})"
                )
        out.append(
            PrevalenceEstimate(
                classes=classes,
                n=int(n[row]),
                counts=N[row].copy(),
                observed=observed[row].copy(),
                corrected=corrected[row].copy(),
                low=low[row].copy(),
                high=high[row].copy(),
                unstable=bool(problems),
                reason="; ".join(problems),
            )
        )
    return out


def corrected_prevalence(
    confusion: ArrayLike,
    counts: ArrayLike,
    classes: Sequence[str],
    *,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    max_condition: float = MAX_CONDITION,
    min_heldout: int = MIN_HELDOUT_PER_CLASS,
    max_negative_mass: float = MAX_NEGATIVE_MASS,
) -> PrevalenceEstimate:
    """:func:`corrected_prevalences` for one slice: ``counts`` is the ``(k,)`` vector of predicted counts."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError(f"counts must be one vector of {len(classes)} counts, got shape {c.shape}")
    return corrected_prevalences(
        confusion,
        c[None, :],
        classes,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
        max_condition=max_condition,
        min_heldout=min_heldout,
        max_negative_mass=max_negative_mass,
    )[0]
