"""Posterior intervals of class shares: the Gibbs sampler against exact Dirichlet posteriors, and coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from facestats_core.statistics import share_intervals
from facestats_core.statistics.class_draws import count_classes
from facestats_core.statistics.quantifiers import calibrate, fit_quantifier, quantify
from facestats_core.statistics.share_intervals import bootstrap_fits
from facestats_core.statistics.share_posterior import face_likelihoods, gibbs_shares, posterior_intervals
from tests.core.synthetic import class_posteriors




def test_known_classes_give_the_exact_dirichlet_posterior():
    # one-hot likelihoods: every face's class is known, so p | faces ~ Dirichlet(1 + counts) exactly
    counts = np.array([30, 15, 5])
    L = np.repeat(np.eye(3), counts, axis=0)[None].repeat(400, axis=0)
    draws = gibbs_shares(L, np.full(3, 1 / 3), np.random.default_rng(0), steps=3, keep=2)
    assert draws.shape == (800, 3)
    np.testing.assert_allclose(draws.mean(axis=0), (1 + counts) / (3 + counts.sum()), atol=0.01)
    a, b = 1 + counts, 3 + counts.sum() - 1 - counts
    np.testing.assert_allclose(np.quantile(draws, [0.025, 0.975], axis=0),
                               [beta.ppf(0.025, a, b), beta.ppf(0.975, a, b)], atol=0.02)


@pytest.mark.parametrize(("chains", "faces", "k"), [(3, 400, 2), (5, 300, 9), (2, 50, 1)])
def test_compiled_class_draws_equal_the_numpy_statement(chains: int, faces: int, k: int) -> None:
    """`count_classes` counts the classes numpy's `min(count_nonzero(u·cum[-1] >= cum), k - 1)` + `bincount`
    draws, including ties (a threshold equal to a cumulative weight, and u near 1: the threshold rounding
    onto the last weight)."""
    rng = np.random.default_rng(8)
    cum = np.cumsum(rng.random((chains, faces, k), dtype=np.float32), axis=-1, dtype=np.float32)
    cum[:, :20, :] = np.float32(1.0)  # ties: every cumulative weight equal, so any threshold >= some of them
    u = rng.random((chains, faces, 1), dtype=np.float32)
    u[:, 20:30] = np.float32(1.0) - np.finfo(np.float32).epsneg  # u·cum[-1] rounds to cum[-1]
    u[:, 30:40] = 0.0
    z = np.minimum(np.count_nonzero(u * cum[..., -1:] >= cum, axis=-1), k - 1)
    expected = np.bincount((z + (np.arange(chains) * k)[:, None]).ravel(), minlength=chains * k).reshape(chains, k)
    counts = count_classes(cum, u)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == chains * faces


def test_likelihoods_are_calibrated_posteriors_over_the_calibration_mix():
    P_cal, y_cal = class_posteriors(200, 3, 1, prior=np.array([0.5, 0.3, 0.2]))
    P_t, _ = class_posteriors(40, 3, 2)
    fits = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=3, seed=0)
    L = face_likelihoods(fits, P_t)
    expected = calibrate(P_t, fits.temperature, fits.bias) / fits.prior[:, None, :]
    np.testing.assert_allclose(L, expected / expected.sum(axis=-1, keepdims=True))
    single = face_likelihoods(fit_quantifier("emq", P_cal, y_cal), P_t)
    assert single.shape == (1, 40, 3)
    with pytest.raises(ValueError, match="EM estimator"):
        face_likelihoods(fit_quantifier("pacc", P_cal, y_cal), P_t)
    with pytest.raises(ValueError, match="not"):
        face_likelihoods(fits, P_t[:, :2])


def test_an_absent_class_gets_an_interval_from_zero_that_reaches_above_it():
    P_cal, y_cal = class_posteriors(300, 3, 3)
    P_t, _ = class_posteriors(150, 3, 4, prior=np.array([0.6, 0.4, 0.0]))
    fits = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=40, seed=2)
    point = quantify(fit_quantifier("emq_bcts", P_cal, y_cal), P_t)
    low, high = posterior_intervals(fits, [P_t], point[None], seed=7)
    assert low[0, 2] < 0.01 < high[0, 2] < 0.15
    assert np.all(low[0] <= point + 0.02) and np.all(point <= high[0] + 0.02)
    again = posterior_intervals(fits, [P_t], point[None], seed=7)
    np.testing.assert_array_equal(again[0], low)
    other = posterior_intervals(fits, [P_t], point[None], seed=8)
    assert not np.array_equal(other[0], low)


def test_intervals_cover_the_population_shares_of_a_well_specified_mixture():
    k = 3
    P_cal, y_cal = class_posteriors(600, k, 5)
    fits = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=40, seed=3)
    point_fit = fit_quantifier("emq_bcts", P_cal, y_cal)
    rng = np.random.default_rng(6)
    shares = rng.dirichlet(np.ones(k), size=30)
    targets = [class_posteriors(120, k, 100 + s, prior=p)[0] for s, p in enumerate(shares)]
    starts = np.stack([quantify(point_fit, t) for t in targets])
    low, high = posterior_intervals(fits, targets, starts, seed=1)
    inside = (shares >= low) & (shares <= high)
    assert inside.mean() >= 0.85
    assert np.all(high - low < 0.5)


def test_threads_give_the_same_intervals_as_one():
    P_cal, y_cal = class_posteriors(300, 3, 12)
    fits = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=20, seed=5)
    targets = [class_posteriors(60 + 10 * i, 3, 20 + i)[0] for i in range(5)]
    starts = np.stack([quantify(fit_quantifier("emq_bcts", P_cal, y_cal), t) for t in targets])
    one = posterior_intervals(fits, targets, starts, seed=3, workers=1)
    for workers in (2, 3, None):
        many = posterior_intervals(fits, targets, starts, seed=3, workers=workers)
        np.testing.assert_array_equal(many[0], one[0])
        np.testing.assert_array_equal(many[1], one[1])


def test_the_interval_holds_its_point_estimate():
    P_cal, y_cal = class_posteriors(300, 3, 10)
    P_t, _ = class_posteriors(100, 3, 11, prior=np.array([0.5, 0.3, 0.2]))
    fits = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=20, seed=4)
    point = np.array([[0.0, 0.99, 0.01]])  # far from the posterior on two classes
    low, high = posterior_intervals(fits, [P_t], point, seed=2)
    assert low[0, 0] == 0.0 and high[0, 1] == 0.99
    assert 0.1 < high[0, 0] and low[0, 1] < 0.6


def test_bad_arguments():
    P_cal, y_cal = class_posteriors(60, 2, 9)
    fits = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=4, seed=0)
    with pytest.raises(ValueError, match="keep"):
        gibbs_shares(np.ones((2, 5, 2)), np.full(2, 0.5), np.random.default_rng(0), steps=3, keep=4)
    with pytest.raises(ValueError, match="starts"):
        posterior_intervals(fits, [P_cal[:10]], np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="seeds"):
        posterior_intervals(fits, [P_cal[:10]], np.full((1, 2), 0.5), target_seeds=[1, 2])
    with pytest.raises(ValueError, match="confidence"):
        posterior_intervals(fits, [P_cal[:10]], np.full((1, 2), 0.5), confidence=1.5)


@pytest.mark.parametrize("method", ["emq_bcts", "pacc"])
def test_bootstrap_fits_in_chunks_are_the_fits_of_one_batch(method: str, monkeypatch) -> None:
    P_cal, y_cal = class_posteriors(400, 3, 30)
    whole = bootstrap_fits(method, P_cal, y_cal, n_boot=30, seed=9, em_steps=7 if method == "emq_bcts" else None)
    monkeypatch.setattr(share_intervals, "MAX_FIT_CELLS", 400 * 3 * 4)  # chunks of 4 replicates (the last of 2)
    chunked = bootstrap_fits(method, P_cal, y_cal, n_boot=30, seed=9, em_steps=7 if method == "emq_bcts" else None)
    for name in ("rates", "prior", "temperature", "bias"):
        a, b = np.asarray(getattr(whole, name)), np.asarray(getattr(chunked, name))
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert chunked.em_steps == whole.em_steps and chunked.method == whole.method
