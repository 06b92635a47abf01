"""embedding_matrix: Array and List columns to float32 matrices, with clear errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from facestats_core.embedding.matrix import embedding_matrix

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
