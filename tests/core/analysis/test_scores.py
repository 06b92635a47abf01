"""Attractiveness score tables: mid-rank percentiles and deciles."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from facestats_core.analysis.scores import decile_of, percentile_against, score_table


def test_score_table_ranks_and_deciles() -> None:
    ids = [f"i{k}" for k in range(20)]
    table = score_table(ids, np.arange(20, dtype=float))
    assert table.schema["attractiveness_decile"] == pl.Int8
    pct = table["attractiveness_percentile"].to_list()
    assert pct[0] == pytest.approx(2.5) and pct[-1] == pytest.approx(97.5)
    assert table["attractiveness_decile"].to_list() == [d for d in range(1, 11) for _ in range(2)]
    top = table.filter(pl.col("attractiveness_decile") == 10)["face_id"].to_list()
    assert top == ["i18", "i19"]  # decile 10 is the top 10%


def test_score_table_ties_share_percentile() -> None:
    table = score_table(["a", "b", "c", "d"], np.array([1.0, 2.0, 2.0, 3.0]))
    pct = table["attractiveness_percentile"].to_list()
    assert pct == pytest.approx([12.5, 50.0, 50.0, 87.5])
    assert table["attractiveness_decile"].to_list() == [2, 6, 6, 9]


def test_score_table_small_n_and_all_equal() -> None:
    one = score_table(["only"], np.array([3.3]))
    assert one.row(0) == ("only", 3.3, 50.0, 6)
    same = score_table(list("abcde"), np.full(5, 2.0))
    assert set(same["attractiveness_percentile"].to_list()) == {50.0}
    assert set(same["attractiveness_decile"].to_list()) == {6}
    three = score_table(list("abc"), np.array([1.0, 2.0, 3.0]))
    assert three["attractiveness_decile"].to_list() == [2, 6, 9]
    empty = score_table([], np.array([]))
    assert empty.height == 0 and empty.schema["attractiveness_percentile"] == pl.Float64


def test_score_table_nan_becomes_null() -> None:
    table = score_table(["a", "b", "c", "d"], np.array([np.nan, 1.0, np.inf, 2.0]))
    assert table["attractiveness_raw"].to_list() == [None, 1.0, None, 2.0]
    assert table["attractiveness_percentile"].to_list() == [None, 25.0, None, 75.0]
    assert table["attractiveness_decile"].to_list() == [None, 3, None, 8]
    all_nan = score_table(["a"], np.array([np.nan]))
    assert all_nan.row(0) == ("a", None, None, None)
    with pytest.raises(ValueError, match="unique"):
        score_table(["a", "a"], np.array([1.0, 2.0]))


def test_percentile_against_matches_table_convention() -> None:
    ref = np.array([1.0, 2.0, 2.0, 3.0, np.nan])
    table = score_table(list("abcd"), ref[:4])
    assert np.allclose(percentile_against(ref, ref[:4]), table["attractiveness_percentile"].to_numpy())
    new = percentile_against(ref, np.array([0.0, 2.0, 10.0, np.nan]))
    assert new[:3].tolist() == [0.0, 50.0, 100.0] and math.isnan(new[3])
    assert decile_of(new[:3]).tolist() == [1, 6, 10]
    with pytest.raises(ValueError, match="no finite"):
        percentile_against(np.array([np.nan]), np.array([1.0]))
