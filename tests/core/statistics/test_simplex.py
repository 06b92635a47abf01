"""The batched least-squares solve on the probability simplex against NNLS."""

from __future__ import annotations

import numpy as np
import pytest

from facestats_core.statistics.simplex import _nnls_simplex, simplex_least_squares


def test_simplex_solver_equals_nnls_reference() -> None:
    rng = np.random.default_rng(5)
    for k in (2, 3, 5, 9):
        C = rng.random((200, k, k)) + rng.random((200, 1, 1)) * 3 * np.eye(k)
        M = C / C.sum(axis=-1, keepdims=True)
        q = rng.dirichlet(np.full(k, 0.4), size=200)
        A = np.swapaxes(M, -1, -2)
        x = simplex_least_squares(A, q)
        assert np.all(x >= 0) and np.allclose(x.sum(axis=1), 1.0)
        for i in range(0, 200, 7):
            ref = _nnls_simplex(A[i], q[i])
            assert np.sum((A[i] @ x[i] - q[i]) ** 2) <= np.sum((A[i] @ ref - q[i]) ** 2) + 1e-12


def test_simplex_solver_handles_a_singular_matrix() -> None:
    A = np.full((2, 2), 0.5)
    x = simplex_least_squares(A, np.array([0.5, 0.5]))
    assert np.all(np.isfinite(x)) and x.sum() == pytest.approx(1.0)
