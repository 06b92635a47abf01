"""Vectors: row-wise L2 normalisation, row cosines, and embedding columns (Array or List) as float32
matrices with clear errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from facestats_core.embedding.vectors import cosine_rows, embedding_matrix, l2_normalize


def test_l2_normalize_rows_and_zero_rows() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-6)
    assert np.all(out[1] == 0)


def test_cosine_rows_pairs_rows_whatever_their_norms() -> None:
    a = np.array([[1.0, 0.0], [2.0, 2.0], [0.0, 3.0]])
    b = np.array([[5.0, 0.0], [-1.0, -1.0], [3.0, 0.0]])
    np.testing.assert_allclose(cosine_rows(a, b), [1.0, -1.0, 0.0], atol=1e-6)


ARRAY_2 = pl.Array(pl.Float32, 2)


def test_array_column_is_float32_c_contiguous() -> None:
    frame = pl.DataFrame({"e": [[1.0, 2.0], [3.0, 4.0]]}, schema={"e": pl.Array(pl.Float64, 2)})
    X = embedding_matrix(frame, "e")
    assert X.dtype == np.float32 and X.flags.c_contiguous and X.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_list_column_and_empty_frames() -> None:
    lists = pl.DataFrame({"embedding": [[1.0, 0.5], [0.0, 2.0]]})
    assert embedding_matrix(lists).tolist() == [[1, 0.5], [0, 2]]
    empty = pl.DataFrame(schema={"embedding": pl.Array(pl.Float32, 3)})
    assert embedding_matrix(empty).shape == (0, 3)
    assert embedding_matrix(pl.DataFrame(schema={"embedding": pl.List(pl.Float32)})).shape == (0, 0)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"embedding": [[1.0, 2.0], [3.0]]}), "ragged"),
        (pl.DataFrame({"embedding": [[1.0, 2.0], None]}), "1 null embedding"),
        (pl.DataFrame({"embedding": [[1.0, None]]}, schema={"embedding": ARRAY_2}), "null value"),
        (pl.DataFrame({"embedding": [1.0]}), "not an Array or List"),
        (pl.DataFrame({"other": [[1.0]]}), "no 'embedding' column"),
    ],
)
def test_bad_columns_raise(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        embedding_matrix(frame)
