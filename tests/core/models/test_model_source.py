"""The one decision of where the probes and the regressor come from."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from facestats_core.models.model_source import MIN_RATED, Available, decide_model_sources, training_sets


def _decide(**available: object) -> tuple[str, str]:
    sources = decide_model_sources(Available(**available))  # type: ignore[arg-type]
    return sources.attributes.source, sources.attractiveness.source


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        # a bundle wins over every label; without a regressor it gives none, never training
        ({"bundle": "b", "bundle_has_regressor": True, "reference_labelled": 5, "analysed_rated": 50},
         ("bundle", "bundle")),
        ({"bundle": "b", "reference_rated": 50}, ("bundle", "none")),
        # the reference set before the analysed set's own labels
        ({"reference_labelled": 3, "analysed_labelled": 40, "reference_rated": 20, "analysed_rated": 40},
         ("reference", "reference")),
        ({"analysed_labelled": 40, "analysed_rated": 40}, ("analysed", "analysed")),
        # labels but no ratings, and the reverse
        ({"analysed_labelled": 4}, ("analysed", "none")),
        ({"reference_rated": MIN_RATED}, ("zero_shot", "reference")),
        # stored models only when nothing trains
        ({"stored_root": "m", "stored_probes": True, "stored_regressor": True}, ("stored", "stored")),
        ({"analysed_labelled": 4, "analysed_rated": 12, "stored_root": "m", "stored_probes": True,
          "stored_regressor": True}, ("analysed", "analysed")),
        ({}, ("zero_shot", "none")),
    ],
)
def test_the_rule(available: dict[str, object], expected: tuple[str, str]) -> None:
    assert _decide(**available) == expected


def test_too_few_ratings_in_the_chosen_set_give_no_regressor_with_the_count() -> None:
    # the reference set is chosen when it has any ratings, even with plenty in the analysed set
    decision = decide_model_sources(Available(reference_rated=MIN_RATED - 1, analysed_rated=100)).attractiveness
    assert decision.source == "none" and not decision.trains
    assert decision.reason.startswith(f"{MIN_RATED - 1} rated faces in the reference set (need {MIN_RATED})")
    trained = decide_model_sources(Available(analysed_rated=MIN_RATED)).attractiveness
    assert trained.trains and trained.faces == MIN_RATED
    assert trained.metadata() == {"model_source": "analysed", "model_source_reason": trained.reason}


def _embeddings(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"face_id": ids, "embedding": [np.ones(3, dtype=np.float32).tolist() for _ in ids]})


def test_training_sets_pick_the_rows_the_decision_names() -> None:
    embeddings = _embeddings(["a", "b", "c"])
    labels = pl.DataFrame({"face_id": ["a", "b", "z"], "gender": ["male", None, "female"], "age": [None, None, None],
                           "ethnicity": [None, None, None], "split": [None, None, None], "score": [None, 3.5, 2.0]})
    sets = training_sets(embeddings, pl.DataFrame(), labels)
    assert sets.analysed_labelled["face_id"].to_list() == ["a"]  # z has no embedding
    assert sets.analysed_rated["face_id"].to_list() == ["b"]
    assert sets.reference_labelled.height == sets.reference_rated.height == 0
    available = sets.available()
    assert (available.analysed_labelled, available.analysed_rated) == (1, 1)
    sources = decide_model_sources(available, min_rated=1)
    assert sets.rows(sources.attributes)["face_id"].to_list() == ["a"]
    assert sets.rows(sources.attractiveness).columns == ["face_id", "embedding", "score"]
    with pytest.raises(ValueError, match="trains on no rows"):
        sets.rows(decide_model_sources(Available()).attractiveness)


def test_reference_rows_come_from_the_reference_table() -> None:
    reference = _embeddings(["r1", "r2"]).with_columns(
        pl.Series("gender", [None, "female"]), pl.Series("age", [None, None], dtype=pl.String),
        pl.Series("ethnicity", [None, None], dtype=pl.String), pl.Series("score", [4.0, None]))
    sets = training_sets(_embeddings(["a"]), reference, pl.DataFrame(
        schema={"face_id": pl.String, "gender": pl.String, "age": pl.String, "ethnicity": pl.String,
                "split": pl.String, "score": pl.Float64}))
    sources = decide_model_sources(sets.available(), min_rated=1)
    assert (sources.attributes.source, sources.attractiveness.source) == ("reference", "reference")
    assert sets.rows(sources.attributes)["face_id"].to_list() == ["r2"]
    assert sets.rows(sources.attractiveness)["face_id"].to_list() == ["r1"]
