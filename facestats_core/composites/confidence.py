"""Confident members only: a composite's gender and ethnicity terms count a predicted value only when
the prediction is confident.

A face whose gender was *predicted* (``gender_source = predicted``) matches ``gender=male`` in a
composite only when ``gender_prob`` (the probability of the predicted class) is at least
``min_confidence``; labelled and manually set values always count. Ethnicity works the same way.
Age terms are not filtered: ten-year bins blur into their neighbours (even on the demo, where age
is drawn by construction, a probe reads the bin right for about 0.6 of faces), and at 0.9 the
probability that a face is in ``20-39`` rarely reaches the bar, so age composites would lose most
members to it (docs/composites.md). Statistics never use this filter: they count every face and
correct the shares for the probes' errors instead.
"""

from __future__ import annotations

import polars as pl

from facestats_core.composites.filter_spec import FilterSpec

CONFIDENCE_TERMS: tuple[str, ...] = ("gender", "ethnicity")
"""Spec terms whose predicted values must be confident."""

DEFAULT_MIN_CONFIDENCE = 0.9


def confident_members(spec: FilterSpec, min_confidence: float) -> pl.Expr | None:
    """Master-table predicate: every gender/ethnicity term of ``spec`` is labelled, set by hand, or
    predicted with probability >= ``min_confidence`` (a prediction without a probability, from a
    table that does not record one, counts); None when nothing is filtered (no such term, or
    ``min_confidence <= 0``)."""
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
    if min_confidence <= 0.0:
        return None
    parts = [
        (pl.col(f"{attr}_source") != "predicted") | (pl.col(f"{attr}_prob").fill_null(1.0) >= min_confidence)
        for attr in CONFIDENCE_TERMS
        if getattr(spec, attr) is not None
    ]
    if not parts:
        return None
    return pl.all_horizontal(parts).fill_null(True)


def required_columns(spec: FilterSpec) -> list[str]:
    """The master columns :func:`confident_members` reads for ``spec``."""
    return [f"{attr}_{part}" for attr in CONFIDENCE_TERMS if getattr(spec, attr) is not None
            for part in ("source", "prob")]
