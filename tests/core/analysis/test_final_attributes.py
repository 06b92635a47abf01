from __future__ import annotations

import polars as pl
import pytest

from facestats_core.analysis.final_attributes import final_attributes


def _predictions(id_column: str = "face_id") -> pl.DataFrame:
    return pl.DataFrame({
        id_column: ["a", "b", "c", "d"],
        "gender_pred": ["male", "male", "female", None],
        "gender_method": ["probe", "probe", "zero_shot", "probe"],
        "age_pred": ["20-29", "30-39", "40-49", "50-59"],
    })


def test_manual_beats_label_beats_prediction() -> None:
    labels = pl.DataFrame({"face_id": ["a", "b", "x"], "gender": ["female", None, "male"], "age": [None, "3-9", "0-2"]})
    manual = pl.DataFrame({"face_id": ["a", "c"], "gender": [None, "male"], "age": ["70+", None]})
    out = final_attributes(_predictions(), labels, manual, attributes=("gender", "age", "ethnicity"))
    assert out.columns == ["face_id", "gender", "gender_source", "age", "age_source", "ethnicity", "ethnicity_source"]
    assert out["face_id"].to_list() == ["a", "b", "c", "d"]  # ids only in labels are ignored
    assert out["gender"].to_list() == ["female", "male", "male", None]
    assert out["gender_source"].to_list() == ["label", "probe", "manual", None]
    assert out["age"].to_list() == ["70+", "3-9", "40-49", "50-59"]
    assert out["age_source"].to_list() == ["manual", "label", "probe", "probe"]  # no age_method: the default
    assert out["ethnicity"].null_count() == 4 and out["ethnicity_source"].null_count() == 4


def test_zero_shot_source_and_image_keys() -> None:
    out = final_attributes(_predictions("image_id"), id_column="image_id", attributes=("gender", "age"),
                           default_method="zero_shot")
    assert out["gender_source"].to_list() == ["probe", "probe", "zero_shot", None]
    assert out["age_source"].unique().to_list() == ["zero_shot"]


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="no 'face_id'"):
        final_attributes(_predictions("image_id"))
    with pytest.raises(ValueError, match="repeats ids \\['a'\\]"):
        final_attributes(_predictions(), labels=pl.DataFrame({"face_id": ["a", "a"], "gender": ["male", "male"]}))
    with pytest.raises(ValueError, match="default_method"):
        final_attributes(_predictions(), default_method="guess")  # type: ignore[arg-type]
