"""Embedding clusters: PCA then k-means, and cluster x ethnicity cross-tabulation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from facestats_core.labels.vocab import ETHNICITIES

N_INIT = 10
UNKNOWN = "unknown"


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """Cluster id per row (int32, 0 = largest cluster), centres in PCA space, PCA variance ratios."""

    labels: np.ndarray
    centers: np.ndarray
    explained_variance_ratio: np.ndarray


def cluster_embeddings(X: np.ndarray, k: int = 8, pca_dim: int = 32, seed: int = 0) -> ClusterResult:
    """Deterministic PCA (`pca_dim`, clamped to the data's rank bound) + k-means (fixed n_init).

    Cluster ids are renumbered by size, largest first (ties by first
    occurrence), so ids are stable for a given input and seed. `k` larger
    than the number of rows raises `ValueError` rather than being clamped:
    filter specs refer to clusters by id, so silently producing fewer clusters
    than asked would change what `cluster=7` means.
    """
    from sklearn.cluster import KMeans  # noqa: PLC0415 - heavy, imported when used
    from sklearn.decomposition import PCA  # noqa: PLC0415 - heavy, imported when used
    Xf = np.asarray(X, dtype=np.float32)
    if Xf.ndim != 2:
        raise ValueError(f"expected a 2-D embedding matrix, got shape {Xf.shape}")
    n, d = Xf.shape
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > n:
        raise ValueError(f"cannot make k={k} clusters from {n} embeddings; lower k to at most {n}")
    dim = max(1, min(pca_dim, n, d))
    pca = PCA(n_components=dim, random_state=seed)
    Z = pca.fit_transform(Xf) if n > 1 else np.zeros((n, dim), dtype=np.float32)
    evr = pca.explained_variance_ratio_ if n > 1 else np.zeros(dim)
    km = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(Z)
    raw = km.labels_
    sizes = np.bincount(raw, minlength=k)
    first_seen = np.full(k, n, dtype=np.int64)
    for i, c in enumerate(raw.tolist()):
        first_seen[c] = min(first_seen[c], i)
    order = sorted(range(k), key=lambda c: (-sizes[c], first_seen[c]))
    remap = np.empty(k, dtype=np.int32)
    remap[order] = np.arange(k, dtype=np.int32)
    return ClusterResult(
        labels=remap[raw].astype(np.int32),
        centers=km.cluster_centers_[order].astype(np.float32),
        explained_variance_ratio=np.asarray(evr, dtype=np.float32),
    )


def crosstab(clusters: Sequence[int] | np.ndarray, ethnicity_pred: Sequence[str | None]) -> pl.DataFrame:
    """Counts per cluster (rows) x ethnicity (columns, canonical order) plus `total`.

    Null ethnicities are counted under `unknown`; values outside the
    vocabulary get their own column after the canonical ones.
    """
    c = np.asarray(clusters)
    e = [v if isinstance(v, str) and v else UNKNOWN for v in list(ethnicity_pred)]
    if len(c) != len(e):
        raise ValueError(f"{len(c)} cluster ids but {len(e)} ethnicities")
    frame = pl.DataFrame(
        {"cluster": c.astype(np.int64), "ethnicity": e}, schema={"cluster": pl.Int64, "ethnicity": pl.String}
    )
    extra = sorted(set(e) - set(ETHNICITIES) - {UNKNOWN})
    columns = list(ETHNICITIES) + extra + ([UNKNOWN] if UNKNOWN in e else [])
    counts = frame.group_by("cluster", "ethnicity").len()
    table = pl.DataFrame({"cluster": sorted(set(c.astype(np.int64).tolist()))}, schema={"cluster": pl.Int64})
    for col in columns:
        part = counts.filter(pl.col("ethnicity") == col).select("cluster", pl.col("len").alias(col))
        table = table.join(part, on="cluster", how="left").with_columns(pl.col(col).fill_null(0).cast(pl.Int64))
    return table.with_columns(pl.sum_horizontal(columns).cast(pl.Int64).alias("total"))
