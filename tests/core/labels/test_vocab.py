"""One vocabulary: the alias tables serve the label reader and the filter specs alike."""

from __future__ import annotations

import pytest

from facestats_core.composites.filter_spec import parse_spec
from facestats_core.labels.attribute_labels import normalize_age
from facestats_core.labels.vocab import (
    AGE_ALIASES,
    AGE_BINS,
    ALIASES,
    ATTRIBUTES,
    ETHNICITY_ALIASES,
    FAIRFACE_AGE,
    FAIRFACE_GENDER,
    FAIRFACE_RACE,
    GENDER_ALIASES,
    age_key,
    is_null_marker,
    normalize_age_bin,
    normalize_ethnicity,
    normalize_gender,
    word_key,
)


def test_alias_tables_map_onto_the_canonical_vocabularies() -> None:
    assert set(ALIASES) == set(ATTRIBUTES)
    for attribute, table in ALIASES.items():
        assert set(table.values()) == set(ATTRIBUTES[attribute])
        assert all(table[value] == value for value in ATTRIBUTES[attribute])
    assert all(word_key(k) == k for k in (*GENDER_ALIASES, *ETHNICITY_ALIASES))
    assert all(age_key(k) == k for k in AGE_ALIASES)


def test_fairface_spellings_read_back_as_canonical_values() -> None:
    assert set(FAIRFACE_GENDER) == set(ATTRIBUTES["gender"])
    assert set(FAIRFACE_AGE) == set(AGE_BINS)
    assert set(FAIRFACE_RACE) == set(ATTRIBUTES["ethnicity"])
    assert all(normalize_gender(s) == g for g, s in FAIRFACE_GENDER.items())
    assert all(normalize_age_bin(s) == a for a, s in FAIRFACE_AGE.items())
    assert all(normalize_ethnicity(s) == e for e, s in FAIRFACE_RACE.items())
    assert FAIRFACE_AGE["70+"] == "more than 70" and FAIRFACE_RACE["east_asian"] == "East Asian"


@pytest.mark.parametrize(
    ("key", "text", "canonical"),
    [
        ("gender", "Women", "female"),
        ("gender", "man", "male"),
        ("ethnicity", "Latina", "latino_hispanic"),
        ("ethnicity", "Hispanic Latino", "latino_hispanic"),
        ("ethnicity", "South East Asian", "southeast_asian"),
        ("ethnicity", "Middle East", "middle_eastern"),
        ("age", "over 70", "70+"),
        ("age", "More Than 70", "70+"),
    ],
)
def test_label_files_and_filter_specs_accept_the_same_aliases(key: str, text: str, canonical: str) -> None:
    reader = {"gender": normalize_gender, "ethnicity": normalize_ethnicity, "age": normalize_age}[key]
    assert reader(text) == canonical
    assert parse_spec(f"{key}={text}").canonical == f"{key}={canonical}"


def test_null_markers() -> None:
    assert is_null_marker(None) and is_null_marker("  N/A ") and is_null_marker("")
    assert not is_null_marker("male")
