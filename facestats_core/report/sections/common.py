"""What the report sections share: the section result and attribute-aware ordering."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES

OK = "ok"
"""Status of a section that has content."""
NONE_LABEL = "(none)"
"""Label of the rows without a value."""


@dataclass(frozen=True)
class Section:
    """One rendered section: ``key`` (its anchor), its ``html``, ``status`` (:data:`OK` or why
    it is empty) and the PNG charts it shows (file name → bytes, in drawing order)."""

    key: str
    html: str
    status: str
    images: dict[str, bytes] = field(default_factory=dict)


def column(master: pl.DataFrame, name: str) -> pl.Series | None:
    """Column ``name`` of ``master``, or None when it has none."""
    return master[name] if name in master.columns else None


def ordered(mapping: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Items in canonical attribute order (gender, age, ethnicity), then the others by name."""
    rank = {name: i for i, name in enumerate(ATTRIBUTES)}
    return sorted(mapping.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def classes(attr: str, values: Sequence[Any]) -> list[str]:
    """The canonical values of ``attr`` in vocabulary order, then any other ``values`` by name."""
    canonical = list(ATTRIBUTES.get(attr, ()))
    extra = sorted({str(v) for v in values if v is not None} - set(canonical))
    return canonical + extra
