"""The share estimators against QuaPy 0.2.3 (the reference implementation) and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from facestats_core.statistics.quantifiers import (
    METHODS,
    calibrate,
    em_priors,
    fit_quantifier,
    fit_temperature,
    quantify,
)
from facestats_core.statistics.share_intervals import bootstrap_fits, calibration_resamples, share_intervals
from tests.core.synthetic import class_posteriors




def test_hand_computed_binary_acc_and_cc():
    # calibration: class 0 predicted right 4/5, class 1 right 3/4 -> M = [[.8, .2], [.25, .75]]
    P_cal = np.array([[0.9, 0.1]] * 4 + [[0.2, 0.8]] + [[0.3, 0.7]] * 3 + [[0.6, 0.4]])
    y_cal = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    fitted = fit_quantifier("acc", P_cal, y_cal)
    np.testing.assert_allclose(fitted.rates, [[0.8, 0.2], [0.25, 0.75]])
    # target: 6 of 10 predicted class 0 -> q = .6; p0 = (q - .25) / (.8 - .25) = 0.63636...
    target = np.array([[0.7, 0.3]] * 6 + [[0.4, 0.6]] * 4)
    np.testing.assert_allclose(quantify(fit_quantifier("cc", P_cal, y_cal), target), [0.6, 0.4])
    np.testing.assert_allclose(quantify(fitted, target), [0.35 / 0.55, 0.2 / 0.55], atol=1e-9)


def test_hand_computed_em_on_two_points():
    # one face, prior (.5, .5), posterior (.8, .2): EM converges to the vertex (1, 0)
    est = em_priors(np.array([[0.8, 0.2]]), np.array([0.5, 0.5]), tol=1e-12, max_iter=100_000)
    assert est[0] > 0.999


def test_matches_quapy_rates_adjustment_and_em():
    quapy_agg = pytest.importorskip("quapy.method.aggregative")
    k = 4
    P_cal, y_cal = class_posteriors(400, k, 0)
    P_t, _ = class_posteriors(300, k, 1, prior=np.array([0.55, 0.25, 0.15, 0.05]))
    classes = np.arange(k)
    # rates: QuaPy's matrix is M[i, j] = P(pred i | true j), ours its transpose
    ours_acc = fit_quantifier("acc", P_cal, y_cal)
    np.testing.assert_allclose(ours_acc.rates.T, quapy_agg.ACC.getPteCondEstim(classes, y_cal, P_cal.argmax(1)))
    ours_pacc = fit_quantifier("pacc", P_cal, y_cal)
    np.testing.assert_allclose(ours_pacc.rates.T, quapy_agg.PACC.getPteCondEstim(classes, y_cal, P_cal))
    # adjustment: QuaPy's "minimize" solver minimises the same ||M q - p|| on the simplex
    for fitted, q in ((ours_acc, np.eye(k)[P_t.argmax(1)].mean(0)), (ours_pacc, P_t.mean(0))):
        theirs = quapy_agg.ACC.solve_adjustment(fitted.rates.T, q, method="inversion", solver="minimize")
        np.testing.assert_allclose(quantify(fitted, P_t), theirs, atol=2e-4)
    # EM: QuaPy's EMQ.EM with its training prevalence
    prior = np.bincount(y_cal, minlength=k) / len(y_cal)
    theirs, _ = quapy_agg.EMQ.EM(prior.copy(), P_t, epsilon=1e-10)
    np.testing.assert_allclose(quantify(fit_quantifier("emq", P_cal, y_cal), P_t), theirs, atol=1e-5)


def test_bcts_matches_abstention():
    calibration = pytest.importorskip("abstention.calibration")
    k = 3
    P, y = class_posteriors(500, k, 2)
    P = P ** 1.7 / (P ** 1.7).sum(axis=1, keepdims=True)  # over-confident
    for bias, theirs_cal in ((False, calibration.TempScaling()), (True, calibration.TempScaling(bias_positions="all"))):
        T, b = fit_temperature(P, y, bias=bias)
        function = theirs_cal(P, np.eye(k)[y], posterior_supplied=True)
        np.testing.assert_allclose(calibrate(P, T, b), function(P), atol=2e-4)
    quapy_agg = pytest.importorskip("quapy.method.aggregative")
    P_t, _ = class_posteriors(300, k, 3, prior=np.array([0.7, 0.2, 0.1]))
    T, b = fit_temperature(P, y, bias=True)
    theirs, _ = quapy_agg.EMQ.EM(np.bincount(y, minlength=k) / len(y), calibrate(P_t, T, b), epsilon=1e-10)
    np.testing.assert_allclose(quantify(fit_quantifier("emq_bcts", P, y), P_t), theirs, atol=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_batched_fits_equal_single_fits_and_shares_sum_to_one(method):
    k = 3
    P_cal, y_cal = class_posteriors(120, k, 4)
    P_t, _ = class_posteriors(50, k, 5)
    weights = calibration_resamples(y_cal, 3, np.random.default_rng(0))
    batched = quantify(fit_quantifier(method, P_cal, y_cal, weights=weights), np.stack([P_t] * 3))
    for b in range(3):
        rows = np.repeat(np.arange(len(y_cal)), weights[b].astype(int))
        single = quantify(fit_quantifier(method, P_cal[rows], y_cal[rows]), P_t)
        np.testing.assert_allclose(batched[b], single, atol=1e-5)
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(batched >= 0)


def test_resamples_keep_class_counts_and_intervals_cover_the_estimate():
    y = np.array([0] * 30 + [1] * 10 + [2] * 5)
    w = calibration_resamples(y, 20, np.random.default_rng(1))
    np.testing.assert_array_equal(np.stack([w[:, y == c].sum(axis=1) for c in range(3)], axis=1),
                                  np.tile([30, 10, 5], (20, 1)))
    P_cal, y_cal = class_posteriors(300, 3, 6)
    P_t, _ = class_posteriors(200, 3, 7, prior=np.array([0.6, 0.3, 0.1]))
    fits = bootstrap_fits("pacc", P_cal, y_cal, n_boot=200, seed=3)
    low, high = share_intervals(fits, [P_t], seed=3)
    point = quantify(fit_quantifier("pacc", P_cal, y_cal), P_t)
    assert np.all(low[0] <= point + 1e-9) and np.all(point <= high[0] + 1e-9)
    assert np.all(high - low > 0.01)
    again = share_intervals(bootstrap_fits("pacc", P_cal, y_cal, n_boot=200, seed=3), [P_t], seed=3)
    np.testing.assert_array_equal(again[0], low)


def test_bad_input():
    P, y = class_posteriors(20, 2, 8)
    with pytest.raises(ValueError, match="unknown quantification method"):
        fit_quantifier("nope", P, y)
    with pytest.raises(ValueError, match="class indices"):
        fit_quantifier("pacc", P, np.full(20, 5))
    with pytest.raises(ValueError, match="no target faces"):
        quantify(fit_quantifier("pacc", P, y), np.zeros((0, 2)))


def test_early_stopped_em_takes_plain_steps_from_the_calibration_mix():
    P_cal, y_cal = class_posteriors(300, 3, 9)
    P_t, _ = class_posteriors(120, 3, 10, prior=np.array([0.7, 0.2, 0.1]))
    fitted = fit_quantifier("emq_bcts", P_cal, y_cal, em_steps=2)
    calibrated = calibrate(P_t, fitted.temperature, fitted.bias)
    q = fitted.prior
    for _ in range(2):  # two SLD steps by hand
        w = calibrated * (q / fitted.prior)
        q = (w / w.sum(axis=1, keepdims=True)).mean(axis=0)
    np.testing.assert_allclose(quantify(fitted, P_t), q, atol=1e-12)
    # the start of bootstrap replicates is ignored: the stopped estimate depends on where it starts
    np.testing.assert_allclose(quantify(fitted, P_t, start=np.array([0.1, 0.1, 0.8])), q, atol=1e-12)
    converged = quantify(fit_quantifier("emq_bcts", P_cal, y_cal), P_t)
    many = quantify(fit_quantifier("emq_bcts", P_cal, y_cal, em_steps=5000), P_t)
    np.testing.assert_allclose(many, converged, atol=1e-4)
    # two steps from the calibration mix move toward the converged shares but not all the way
    assert np.abs(q - converged).max() > 1e-3
    assert np.abs(q - fitted.prior).max() < np.abs(converged - fitted.prior).max()
    fits = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=4, seed=1, em_steps=2)
    assert fits.em_steps == 2


def test_em_steps_only_for_em_methods():
    P, y = class_posteriors(40, 2, 11)
    with pytest.raises(ValueError, match="em_steps"):
        fit_quantifier("pacc", P, y, em_steps=3)
    with pytest.raises(ValueError, match="em_steps"):
        fit_quantifier("emq", P, y, em_steps=0)


def test_early_stopped_intervals_span_the_converged_replicates():
    P_cal, y_cal = class_posteriors(300, 4, 12)
    P_t, _ = class_posteriors(80, 4, 13, prior=np.array([0.05, 0.15, 0.3, 0.5]))
    stopped = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=60, seed=5, em_steps=2)
    converged = bootstrap_fits("emq_bcts", P_cal, y_cal, n_boot=60, seed=5)
    low, high = share_intervals(stopped, [P_t], seed=5)
    c_low, c_high = share_intervals(converged, [P_t], seed=5)
    assert np.all(low <= c_low + 1e-12) and np.all(high >= c_high - 1e-12)
    point = quantify(fit_quantifier("emq_bcts", P_cal, y_cal, em_steps=2), P_t)
    assert np.all(low[0] <= point + 1e-9) and np.all(point <= high[0] + 1e-9)
