"""Clustering: determinism, recovery of planted clusters, k > n, crosstab."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from facestats_core.analysis.clusters import cluster_embeddings, crosstab
from facestats_core.labels.vocab import ETHNICITIES


def _blobs(sizes: list[int], dim: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim)) * 3
    truth = np.repeat(np.arange(len(sizes)), sizes)
    X = centres[truth] + 0.3 * rng.normal(size=(len(truth), dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), truth


def test_clustering_is_deterministic_and_recovers_blobs() -> None:
    X, truth = _blobs([60, 40, 25])
    a = cluster_embeddings(X, k=3, pca_dim=8, seed=0)
    b = cluster_embeddings(X, k=3, pca_dim=8, seed=0)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.labels.dtype == np.int32 and a.centers.shape == (3, 8)
    assert a.explained_variance_ratio.shape == (8,) and 0 < a.explained_variance_ratio.sum() <= 1.0 + 1e-6
    # ids are by size, largest first, and match the planted blobs exactly
    np.testing.assert_array_equal(a.labels, truth)


def test_k_larger_than_n_raises() -> None:
    X, _ = _blobs([3, 2])
    with pytest.raises(ValueError, match="k=8.*5 embeddings"):
        cluster_embeddings(X, k=8)
    assert cluster_embeddings(X, k=5, pca_dim=32).centers.shape == (5, 5)  # pca_dim clamped to n


def test_crosstab_counts() -> None:
    clusters = np.array([0, 0, 1, 1, 1, 2])
    eth = ["white", "black", "white", None, "white", "indian"]
    table = crosstab(clusters, eth)
    assert table.columns == ["cluster", *ETHNICITIES, "unknown", "total"]
    assert table["total"].to_list() == [2, 3, 1]
    assert table.filter(pl.col("cluster") == 1).select("white", "unknown").row(0) == (2, 1)
    assert int(table.drop("cluster", "total").sum().sum_horizontal().item()) == 6
