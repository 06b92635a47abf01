"""Wilson intervals against the formula and published values; the bootstrap mean interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facestats_core.statistics.intervals import (
    bootstrap_mean_interval,
    normal_quantile,
    wilson_interval,
    wilson_intervals,
)

Z95 = 1.959963984540054


def wilson_by_formula(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n", [(0, 10), (5, 10), (81, 263), (1, 29), (10, 10), (3, 7)])
def test_wilson_matches_the_formula(k: int, n: int) -> None:
    low, high = wilson_interval(k, n)
    ref_low, ref_high = wilson_by_formula(k, n)
    assert low == pytest.approx(max(ref_low, 0.0), abs=1e-12)
    assert high == pytest.approx(min(ref_high, 1.0), abs=1e-12)


@pytest.mark.parametrize(
    "k, n, published",
    [
        # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score)
        (81, 263, (0.2553, 0.3662)),
        (15, 148, (0.0624, 0.1605)),
        (0, 20, (0.0000, 0.1611)),
        (1, 29, (0.0061, 0.1718)),
        # textbook values for 0/10 and 5/10
        (0, 10, (0.0000, 0.2775)),
        (5, 10, (0.2366, 0.7634)),
    ],
)
def test_wilson_matches_published_values(k: int, n: int, published: tuple[float, float]) -> None:
    low, high = wilson_interval(k, n)
    assert (round(low, 4), round(high, 4)) == published


def test_wilson_edges_and_empty() -> None:
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)
    assert normal_quantile(0.95) == pytest.approx(Z95)


def test_wilson_vectorised_equals_scalar_and_widens_with_confidence() -> None:
    k = np.array([[0, 5], [81, 7]])
    n = np.array([[10, 10], [263, 0]])
    low, high = wilson_intervals(k[:, :1].ravel(), n[:, :1].ravel())
    assert low.tolist() == [wilson_interval(0, 10)[0], wilson_interval(81, 263)[0]]
    assert high.tolist() == [wilson_interval(0, 10)[1], wilson_interval(81, 263)[1]]
    low99, high99 = wilson_intervals(81, 263, confidence=0.99)
    assert low99 < wilson_interval(81, 263)[0] and high99 > wilson_interval(81, 263)[1]
    with pytest.raises(ValueError):
        wilson_intervals(5, 3)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


def test_bootstrap_mean_interval_basics() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 10.0])
    mean, low, high = bootstrap_mean_interval(values, seed=3)
    assert mean == pytest.approx(4.0)
    assert low < mean < high
    assert (mean, low, high) == bootstrap_mean_interval(values, seed=3)
    assert bootstrap_mean_interval([2.5]) == (2.5, 2.5, 2.5)
    assert all(math.isnan(v) for v in bootstrap_mean_interval([]))
    assert all(math.isnan(v) for v in bootstrap_mean_interval([np.nan]))


def test_bootstrap_mean_interval_chunks_large_inputs() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 1.0, size=20_000)  # 1000 x 20,000 cells: drawn in chunks
    mean, low, high = bootstrap_mean_interval(values, n_boot=1000)
    se = values.std() / math.sqrt(values.size)
    assert low < mean < high
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_bootstrap_mean_interval_covers() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    sims = 200
    for sim in range(sims):
        sample = rng.exponential(1.0, size=60)  # skewed, true mean 1
        _, low, high = bootstrap_mean_interval(sample, n_boot=500, seed=sim)
        covered += low <= 1.0 <= high
    assert 0.85 <= covered / sims <= 0.99


def test_accuracy_interval_is_the_wilson_interval_of_the_rounded_count() -> None:
    from facestats_core.statistics.intervals import accuracy_interval

    assert accuracy_interval(0.8, 5) == pytest.approx(wilson_interval(4, 5))
    assert accuracy_interval(None, 5) is None and accuracy_interval(0.5, 0) is None
    assert accuracy_interval(float("nan"), 5) is None
