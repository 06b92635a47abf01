"""Attribute vocabularies shared by every stage: canonical values, accepted aliases, FairFace spellings.

Canonical values are snake_case (:data:`GENDERS`, :data:`AGE_BINS`,
:data:`ETHNICITIES`). Each attribute has one alias table (normalised spelling
→ canonical value) that every reader of free text uses: the label files
(:mod:`facestats_core.labels.attribute_labels`) and the filter specs
(:mod:`facestats_core.composites.filter_spec`). The FairFace spellings
(:data:`FAIRFACE_GENDER`, :data:`FAIRFACE_AGE`, :data:`FAIRFACE_RACE`) are
what FairFace label files (and the demo data) write; they are in the alias
tables too, so reading them back gives the canonical values.

Spellings are normalised before lookup: gender and ethnicity with
:func:`word_key` (case, spaces, ``_`` and ``-`` do not matter), age with
:func:`age_key` (case, spaces and ``_`` do not matter).
"""

from __future__ import annotations

import re

GENDERS: tuple[str, ...] = ("male", "female")

AGE_BINS: tuple[str, ...] = (
    "0-2",
    "3-9",
    "10-19",
    "20-29",
    "30-39",
    "40-49",
    "50-59",
    "60-69",
    "70+",
)

ETHNICITIES: tuple[str, ...] = (
    "white",
    "black",
    "latino_hispanic",
    "east_asian",
    "southeast_asian",
    "indian",
    "middle_eastern",
)

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "gender": GENDERS,
    "age": AGE_BINS,
    "ethnicity": ETHNICITIES,
}

# --------------------------------------------------------------------------- FairFace spellings

FAIRFACE_GENDER: dict[str, str] = {"male": "Male", "female": "Female"}
"""Canonical gender → FairFace spelling."""

FAIRFACE_AGE: dict[str, str] = {**{a: a for a in AGE_BINS if a != "70+"}, "70+": "more than 70"}
"""Canonical age bin → FairFace spelling."""

FAIRFACE_RACE: dict[str, str] = {
    "white": "White",
    "black": "Black",
    "latino_hispanic": "Latino_Hispanic",
    "east_asian": "East Asian",
    "southeast_asian": "Southeast Asian",
    "indian": "Indian",
    "middle_eastern": "Middle Eastern",
}
"""Canonical ethnicity → FairFace ``race`` spelling."""

# --------------------------------------------------------------------------- normalisation

NULL_MARKERS: frozenset[str] = frozenset({"", "unknown", "na", "n/a", "none", "null", "nan", "?", "-"})
"""Explicit "don't know" markers (lower case, trimmed): read as no value, not as an error."""


def word_key(text: str) -> str:
    """Lookup form of a gender or ethnicity: lower case, runs of spaces/``_``/``-`` as one ``_``."""
    return re.sub(r"[\s_\-]+", "_", text.strip().lower()).strip("_")


def age_key(text: str) -> str:
    """Lookup form of an age bin: lower case without spaces and ``_`` (``More Than 70`` → ``morethan70``)."""
    return re.sub(r"[\s_]+", "", text.strip().lower())


def is_null_marker(value: str | None) -> bool:
    """True for blank cells and explicit unknown markers (``unknown``, ``n/a``, ``?`` …)."""
    return value is None or value.strip().lower() in NULL_MARKERS


# --------------------------------------------------------------------------- alias tables

GENDER_ALIASES: dict[str, str] = {
    **{g: g for g in GENDERS},
    **{word_key(spelling): g for g, spelling in FAIRFACE_GENDER.items()},
    "m": "male",
    "man": "male",
    "men": "male",
    "f": "female",
    "woman": "female",
    "women": "female",
}
"""Every accepted gender spelling (in :func:`word_key` form) → canonical gender."""

ETHNICITY_ALIASES: dict[str, str] = {
    **{e: e for e in ETHNICITIES},
    **{word_key(spelling): e for e, spelling in FAIRFACE_RACE.items()},
    "latino": "latino_hispanic",
    "latina": "latino_hispanic",
    "hispanic": "latino_hispanic",
    "hispanic_latino": "latino_hispanic",
    "south_east_asian": "southeast_asian",
    "middle_east": "middle_eastern",
}
"""Every accepted ethnicity spelling (in :func:`word_key` form) → canonical ethnicity."""

AGE_ALIASES: dict[str, str] = {
    **{a: a for a in AGE_BINS},
    **{age_key(spelling): a for a, spelling in FAIRFACE_AGE.items()},
    "morethan70": "70+",
    "over70": "70+",
    ">70": "70+",
    "70plus": "70+",
    "70andover": "70+",
}
"""Every accepted age-bin spelling (in :func:`age_key` form) → canonical bin."""

ALIASES: dict[str, dict[str, str]] = {
    "gender": GENDER_ALIASES,
    "age": AGE_ALIASES,
    "ethnicity": ETHNICITY_ALIASES,
}
"""Attribute → its alias table."""


def normalize_gender(value: str) -> str | None:
    """Map ``Male``/``female``/``M``/``woman`` … to a canonical gender, else None."""
    return GENDER_ALIASES.get(word_key(value))


def normalize_ethnicity(value: str) -> str | None:
    """Map ``East Asian``/``east_asian``/``Latino_Hispanic`` … to canonical, else None."""
    return ETHNICITY_ALIASES.get(word_key(value))


def normalize_age_bin(value: str) -> str | None:
    """Map an age-bin spelling (``20-29``, ``20 - 29``, ``more than 70``, ``70+``) to canonical, else None."""
    return AGE_ALIASES.get(age_key(value))
