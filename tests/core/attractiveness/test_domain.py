from __future__ import annotations

import numpy as np
import pytest

from facestats_core.attractiveness.domain import fit_domain, nearest_distances, out_of_domain, outside_rated_ethnicities


def test_nearest_distance_matches_brute_force_whatever_the_chunk() -> None:
    rng = np.random.default_rng(0)
    query, reference = rng.normal(size=(37, 8)), rng.normal(size=(11, 8))
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    r = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    expected = 1 - (q @ r.T).max(axis=1)
    for chunk in (1, 5, 1000):
        np.testing.assert_allclose(nearest_distances(query, reference, chunk_rows=chunk), expected, atol=1e-5)


def test_leave_one_out_skips_each_row_itself() -> None:
    points = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01]])
    assert np.all(nearest_distances(points, points) < 1e-6)
    loo = nearest_distances(points, points, exclude_self=True, chunk_rows=2)
    assert loo[1] == pytest.approx(1 - 0.01 / np.hypot(1, 0.01), abs=1e-5)
    assert loo[0] == pytest.approx(loo[2]) and loo[0] < 1e-3


def test_threshold_is_the_training_quantile_and_flags_far_faces() -> None:
    rng = np.random.default_rng(1)
    training = np.abs(rng.normal(size=(200, 6))) + np.array([5, 0, 0, 0, 0, 0])  # one cone
    domain = fit_domain(training, quantile=0.99)
    loo = nearest_distances(training, training, exclude_self=True)
    assert domain.threshold == pytest.approx(float(np.quantile(loo, 0.99)), rel=1e-4)
    assert (loo > domain.threshold).sum() <= 2
    far = -training[:5]
    near = training[:5] * 1.5  # same directions: distance 0
    distance, flag = out_of_domain(np.vstack([near, far]), domain)
    assert flag.tolist() == [False] * 5 + [True] * 5
    assert np.all(distance[:5] < 1e-5)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="same dimension"):
        nearest_distances(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        fit_domain(np.ones((1, 3)))
    with pytest.raises(ValueError, match="quantile"):
        fit_domain(np.ones((3, 3)), quantile=0)


def test_faces_outside_the_rated_ethnicities_are_flagged() -> None:
    flags = outside_rated_ethnicities(["east_asian", "white", "black", None, "indian"])
    assert flags.tolist() == [False, False, True, False, True]
