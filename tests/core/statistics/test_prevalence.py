"""Adjusted classify-and-count: the simplex solve, instability flags, and the coverage simulation."""

from __future__ import annotations


import numpy as np
import pytest

from facestats_core.statistics.intervals import wilson_intervals
from facestats_core.statistics.prevalence import (
    MAX_CONDITION,
    MIN_HELDOUT_PER_CLASS,
    PrevalenceEstimate,
    _nnls_simplex,
    adjusted_classify_and_count,
    align_confusion,
    corrected_prevalence,
    corrected_prevalences,
    misclassification_matrix,
    simplex_least_squares,
)

CLASSES3 = ("a", "b", "c")
# rows = true class, columns = predicted; every class is pulled toward "a"
TRUE_M = np.array([[0.80, 0.12, 0.08], [0.25, 0.70, 0.05], [0.30, 0.10, 0.60]])
TRUE_P = np.array([0.2, 0.5, 0.3])


def test_identity_confusion_changes_nothing() -> None:
    C = np.eye(3) * 100
    est = corrected_prevalence(C, [20, 50, 30], CLASSES3, n_boot=200)
    np.testing.assert_allclose(est.corrected, [0.2, 0.5, 0.3], atol=1e-12)
    np.testing.assert_allclose(est.observed, est.corrected, atol=1e-12)
    assert not est.unstable and est.reason == ""
    assert np.all(est.low <= est.corrected + 1e-12) and np.all(est.corrected <= est.high + 1e-12)


def test_exact_expected_counts_recover_the_truth() -> None:
    C = TRUE_M * 1000
    q = TRUE_M.T @ TRUE_P
    np.testing.assert_allclose(adjusted_classify_and_count(C, q * 10_000), TRUE_P, atol=1e-9)


def test_binary_matches_forman_formula() -> None:
    # Forman's ACC for two classes: p = (q - fpr) / (tpr - fpr), clipped to [0, 1]
    tpr, fpr = 0.9, 0.2
    C = np.array([[tpr, 1 - tpr], [fpr, 1 - fpr]]) * 500
    for q in (0.1, 0.35, 0.6, 0.95):
        p = adjusted_classify_and_count(C, [q * 1000, (1 - q) * 1000])
        assert p[0] == pytest.approx(min(max((q - fpr) / (tpr - fpr), 0.0), 1.0), abs=1e-9)


def test_simplex_solver_equals_nnls_reference() -> None:
    rng = np.random.default_rng(5)
    for k in (2, 3, 5, 9):
        C = rng.random((200, k, k)) + rng.random((200, 1, 1)) * 3 * np.eye(k)
        M, _ = misclassification_matrix(C)
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


def test_align_confusion_reorders_and_fills() -> None:
    C = align_confusion(["c", "a"], [[5, 1], [2, 7]], CLASSES3)
    np.testing.assert_array_equal(C, [[7, 0, 2], [0, 0, 0], [1, 0, 5]])
    with pytest.raises(ValueError, match="not among"):
        align_confusion(["z"], [[1]], CLASSES3)
    with pytest.raises(ValueError, match="shape"):
        align_confusion(["a", "b"], [[1, 2, 3]], CLASSES3)
    with pytest.raises(ValueError):
        align_confusion(["a", "b"], [[1, -2], [0, 1]], CLASSES3)


def test_absent_class_is_unstable_not_a_crash() -> None:
    C = np.array([[90, 10, 0], [0, 0, 0], [5, 0, 95]])
    est = corrected_prevalence(C, [40, 10, 50], CLASSES3, n_boot=200)
    assert est.unstable
    assert "no held-out faces of true class b" in est.reason
    assert np.all(np.isfinite(est.corrected)) and est.corrected.sum() == pytest.approx(1.0)


def test_singular_matrix_is_unstable() -> None:
    C = np.array([[50, 50], [50, 50]])
    est = corrected_prevalence(C, [30, 70], ("x", "y"), n_boot=200)
    assert est.unstable and "singular" in est.reason
    assert np.all(np.isfinite(est.corrected)) and np.all(np.isfinite(est.low))


def test_ill_conditioned_matrix_is_unstable() -> None:
    C = np.array([[52, 48], [47, 53]]) * 10  # nearly random classifier: cond(M) ~ 40
    assert np.linalg.cond(misclassification_matrix(C)[0]) > MAX_CONDITION
    est = corrected_prevalence(C, [500, 500], ("x", "y"), n_boot=200)
    assert est.unstable and "ill-conditioned" in est.reason


def test_few_heldout_faces_is_unstable() -> None:
    C = np.array([[90, 10], [2, MIN_HELDOUT_PER_CLASS - 3]])
    est = corrected_prevalence(C, [50, 50], ("x", "y"), n_boot=200)
    assert est.unstable
    assert f"fewer than {MIN_HELDOUT_PER_CLASS} held-out faces of true class y (" in est.reason


def test_data_far_outside_the_simplex_is_unstable() -> None:
    C = np.array([[80, 20], [40, 60]])  # predicted "x" share is at least 0.4 for any truth
    est = corrected_prevalence(C, [5, 95], ("x", "y"), n_boot=200)
    assert est.unstable and "outside the simplex" in est.reason
    np.testing.assert_allclose(est.corrected, [0.0, 1.0], atol=1e-12)
    ok = corrected_prevalence(C, [60, 40], ("x", "y"), n_boot=200)
    assert not ok.unstable


def test_empty_slice_and_bad_counts() -> None:
    ests = corrected_prevalences(np.eye(2) * 50, [[0, 0], [3, 4]], ("x", "y"), n_boot=100)
    assert ests[0].n == 0 and ests[0].unstable and np.all(np.isnan(ests[0].corrected))
    assert ests[1].n == 7 and not ests[1].unstable
    with pytest.raises(ValueError):
        corrected_prevalence(np.eye(2), [1.5, 2], ("x", "y"))
    with pytest.raises(ValueError):
        corrected_prevalence(np.eye(3), [1, 2], ("x", "y"))


def test_seeded_and_slices_independent() -> None:
    C = TRUE_M * 200
    counts = np.array([[30, 50, 20], [10, 10, 80], [5, 3, 2]])
    a = corrected_prevalences(C, counts, CLASSES3, n_boot=300, seed=4, slice_seeds=[1, 2, 3])
    b = corrected_prevalences(C, counts, CLASSES3, n_boot=300, seed=4, slice_seeds=[1, 2, 3])
    alone = corrected_prevalences(C, counts[1:2], CLASSES3, n_boot=300, seed=4, slice_seeds=[2])[0]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.low, y.low)
        np.testing.assert_array_equal(x.high, y.high)
    np.testing.assert_array_equal(alone.low, a[1].low)
    np.testing.assert_array_equal(alone.high, a[1].high)
    other = corrected_prevalences(C, counts, CLASSES3, n_boot=300, seed=5, slice_seeds=[1, 2, 3])
    assert not np.array_equal(other[0].low, a[0].low)
    assert isinstance(a[0], PrevalenceEstimate)


def test_a_thousand_replicates_for_thirty_slices() -> None:
    """One estimate per slice, each a proper interval around its point estimate (the speed of this
    case is measured by benchmarks/bench_statistics.py)."""
    rng = np.random.default_rng(0)
    k = 9
    C = rng.multinomial(40, np.full(k, 1 / k), size=k) + np.eye(k, dtype=int) * 60
    counts = rng.multinomial(600, rng.dirichlet(np.full(k, 0.5)), size=30)
    ests = corrected_prevalences(C, counts, tuple("abcdefghi"), n_boot=1000)
    assert len(ests) == 30
    for est in ests:
        assert np.all((0 <= est.low) & (est.low <= est.high) & (est.high <= 1))


def _simulate(
    rng: np.random.Generator, M: np.ndarray, p: np.ndarray, heldout: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out confusion counts (``heldout`` faces per true class) and predicted counts of ``n`` faces."""
    k = len(p)
    C = np.stack([rng.multinomial(heldout, M[i]) for i in range(k)])
    true_counts = rng.multinomial(n, p)
    predicted = sum(rng.multinomial(true_counts[i], M[i]) for i in range(k))
    return C, predicted


def test_corrected_interval_covers_the_truth_where_the_raw_share_does_not() -> None:
    """The issue's simulation: 200 seeded data sets from a known truth and a known biased classifier."""
    sims, heldout, n = 200, 150, 1000
    rng = np.random.default_rng(2024)
    corrected_cover = np.zeros(3)
    raw_cover = np.zeros(3)
    unstable = 0
    for sim in range(sims):
        C, predicted = _simulate(rng, TRUE_M, TRUE_P, heldout, n)
        est = corrected_prevalence(C, predicted, CLASSES3, n_boot=300, seed=sim)
        unstable += est.unstable
        corrected_cover += (est.low <= TRUE_P) & (TRUE_P <= est.high)
        low, high = wilson_intervals(predicted, n)
        raw_cover += (low <= TRUE_P) & (TRUE_P <= high)
    corrected_rate, raw_rate = corrected_cover / sims, raw_cover / sims
    assert unstable == 0
    assert np.all(corrected_rate >= 0.90), corrected_rate
    # "a" and "c" are the biased classes (expected predicted shares 0.315 and 0.225 vs 0.2 and 0.3)
    assert raw_rate[0] < 0.5 and raw_rate[2] < 0.5, raw_rate


def test_binary_coverage_includes_heldout_uncertainty() -> None:
    """A small held-out set: intervals that treat M as known would under-cover; ours must not."""
    M = np.array([[0.9, 0.1], [0.3, 0.7]])
    p = np.array([0.35, 0.65])
    rng = np.random.default_rng(7)
    sims, covered, known, raw = 200, 0, 0, 0
    for sim in range(sims):
        C, predicted = _simulate(rng, M, p, heldout=60, n=2000)
        est = corrected_prevalence(C, predicted, ("f", "m"), n_boot=300, seed=sim)
        covered += est.low[0] <= p[0] <= est.high[0]
        # the same estimate with M taken as exactly known (a huge held-out set with the same rates)
        exact = C / C.sum(axis=1, keepdims=True) * 1e7
        as_known = corrected_prevalence(exact, predicted, ("f", "m"), n_boot=300, seed=sim)
        known += as_known.low[0] <= p[0] <= as_known.high[0]
        low, high = wilson_intervals(predicted[0], 2000)
        raw += low <= p[0] <= high
    assert covered / sims >= 0.90
    assert known / sims < 0.8  # measured 0.345: resampling the held-out rows is what makes it cover
    assert raw / sims < 0.5
