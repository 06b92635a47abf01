"""Canonical attribute vocabularies (snake_case) shared by every stage."""

from __future__ import annotations

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
