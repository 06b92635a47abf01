"""Embedding vectors: row-wise L2 normalisation, cosine of paired rows, embedding columns as matrices."""

from __future__ import annotations

import numpy as np
import polars as pl


def l2_normalize(features: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation in float32; all-zero rows stay zero."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, eps)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (float32)."""
    return (l2_normalize(a) * l2_normalize(b)).sum(axis=1)


def _width(series: pl.Series) -> int:
    """Vector length of a fixed-size `Array` column or an equal-length `List` column."""
    if isinstance(series.dtype, pl.Array):
        return int(series.dtype.size)
    lengths = series.list.len().unique()
    if lengths.len() > 1:
        raise ValueError(
            f"column {series.name!r} is ragged: embedding lengths range "
            f"from {lengths.min()} to {lengths.max()}"
        )
    return int(lengths[0]) if lengths.len() else 0


def _check_vectors(series: pl.Series) -> None:
    """Raise unless `series` is an Array/List column without null embeddings or null values."""
    if not isinstance(series.dtype, (pl.Array, pl.List)):
        raise ValueError(f"column {series.name!r} is {series.dtype}, not an Array or List embedding column")
    if series.null_count():
        raise ValueError(f"column {series.name!r} has {series.null_count()} null embedding(s)")
    values = series.arr.explode() if isinstance(series.dtype, pl.Array) else series.list.explode()
    if values.null_count():
        raise ValueError(f"column {series.name!r} has {values.null_count()} null value(s) in its embeddings")


def embedding_matrix(frame: pl.DataFrame, column: str = "embedding") -> np.ndarray:
    """`(n, D)` float32, C-contiguous matrix from an `Array` or equal-length `List` embedding column.

    An empty frame gives `(0, D)` (`D` is 0 for an empty `List` column). Raises
    `ValueError` for a column that is missing or not a vector column, a null
    embedding or value, or (`List`) embeddings of different lengths.
    """
    if column not in frame.columns:
        raise ValueError(f"no {column!r} column; columns are {frame.columns}")
    series = frame[column]
    _check_vectors(series)
    width = _width(series)
    if frame.height == 0:
        return np.zeros((0, width), dtype=np.float32)
    if isinstance(series.dtype, pl.List):
        series = series.list.to_array(width)
    return np.ascontiguousarray(series.to_numpy(), dtype=np.float32)
