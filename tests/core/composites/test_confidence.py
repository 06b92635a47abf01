"""Confident members: predicted gender/ethnicity must reach the bar for a composite's terms."""

from __future__ import annotations

import polars as pl
import pytest

from facestats_core.composites.confidence import confident_members, required_columns
from facestats_core.composites.filter_spec import parse_spec

MASTER = pl.DataFrame({
    "face_id": ["a", "b", "c", "d", "e"],
    "gender_source": ["predicted", "predicted", "label", "manual", "predicted"],
    "gender_prob": [0.95, 0.7, 0.1, None, None],
    "ethnicity_source": ["predicted", "predicted", "predicted", "predicted", "none"],
    "ethnicity_prob": [0.5, 0.99, 0.99, 0.99, None],
})


def _kept(spec: str, bar: float) -> list[str]:
    keep = confident_members(parse_spec(spec), bar)
    return MASTER.filter(keep)["face_id"].to_list() if keep is not None else MASTER["face_id"].to_list()


def test_predicted_values_need_the_bar_labels_and_manual_values_do_not() -> None:
    assert _kept("gender=female", 0.9) == ["a", "c", "d", "e"]  # b is unsure; e has no probability to doubt
    assert _kept("gender=female", 0.6) == ["a", "b", "c", "d", "e"]
    assert _kept("ethnicity=white", 0.9) == ["b", "c", "d", "e"]  # e's ethnicity was not predicted
    assert _kept("gender=female,ethnicity=white", 0.9) == ["c", "d", "e"]


def test_nothing_is_filtered_without_a_gender_or_ethnicity_term_or_a_bar() -> None:
    assert confident_members(parse_spec("age=20-39,attractiveness=top10"), 0.9) is None
    assert confident_members(parse_spec("gender=male"), 0.0) is None
    assert required_columns(parse_spec("age=20-29")) == []
    assert required_columns(parse_spec("ethnicity=indian")) == ["ethnicity_source", "ethnicity_prob"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confident_members(parse_spec("gender=male"), 1.2)
