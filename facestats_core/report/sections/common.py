"""What the report sections share: the section result, charts, ordering, and slice tables."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.report.stat_rows import ALL, StatRow

OK = "ok"
"""Status of a section that has all its content."""
NONE_LABEL = "(none)"
"""Label of the rows without a value."""


@dataclass(frozen=True)
class Chart:
    """One PNG chart: its file name next to ``index.html``, alt text and bytes."""

    name: str
    alt: str
    png: bytes

    @property
    def uri(self) -> str:
        """The PNG as a ``data:`` URI (the page inlines every chart)."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class Section:
    """One section of the page: ``key`` (anchor and template macro), ``title``, ``status``
    (:data:`OK` or what is missing), ``view`` (what its template macro renders) and its charts."""

    key: str
    title: str
    status: str
    view: Any
    charts: tuple[Chart, ...] = field(default_factory=tuple)

    @property
    def images(self) -> dict[str, bytes]:
        """PNG file name → bytes, in drawing order."""
        return {chart.name: chart.png for chart in self.charts}


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


def order_values(key: str, values: Sequence[str]) -> list[str]:
    """The distinct ``values`` of a grouping ``key`` in reading order: ``all`` first, then the
    vocabulary order of an attribute, numeric order of clusters, else by name."""
    distinct = list(dict.fromkeys(values))
    head = [ALL] if ALL in distinct else []
    rest = [v for v in distinct if v != ALL]
    if key in ATTRIBUTES:
        return head + [c for c in classes(key, rest) if c in rest]

    def rank(value: str) -> tuple[int, float, str]:
        try:
            return 0, float(value), value
        except ValueError:
            return 1, 0.0, value

    return head + sorted(rest, key=rank)


def order_keys(keys: Sequence[str]) -> list[str]:
    """Grouping keys in reading order: ``all``, the attributes, ``cluster``, ``quality``, ``composite``,
    then the rest by name."""
    fixed = [ALL, *ATTRIBUTES, "cluster", "quality", "composite"]
    distinct = list(dict.fromkeys(keys))
    return [k for k in fixed if k in distinct] + sorted(k for k in distinct if k not in fixed)


@dataclass(frozen=True)
class SliceLine:
    """One row of a slice table: the slice value, its n, and one estimate (or None) per column."""

    label: str
    n: int | None
    cells: tuple[StatRow | None, ...]


@dataclass(frozen=True)
class SliceTable:
    """Estimates of one statistic within every value of one slice (rows) for every class (columns)."""

    title: str
    columns: tuple[str, ...]
    lines: tuple[SliceLine, ...]
    percent: bool
    has_corrected: bool
    collapsed: bool
    """Shown folded (slices that are not an attribute: clusters, composites)."""


def slice_tables(
    rows: Sequence[StatRow], column_key: str, title: Callable[[str], str], *, percent: bool
) -> list[SliceTable]:
    """One :class:`SliceTable` per ``slice_key`` of ``rows`` other than ``all`` and ``column_key``
    itself; columns are the ``value`` s (ordered as values of ``column_key``)."""
    tables = []
    for key in order_keys([r.slice_key for r in rows]):
        if key in (ALL, column_key):
            continue
        picked = [r for r in rows if r.slice_key == key]
        columns = order_values(column_key, [r.value for r in picked])
        lines = []
        for slice_value in order_values(key, [r.slice_value for r in picked]):
            cells = {r.value: r for r in picked if r.slice_value == slice_value}
            n = next((c.n for c in cells.values() if c.n is not None), None)
            lines.append(SliceLine(slice_value, n, tuple(cells.get(c) for c in columns)))
        tables.append(
            SliceTable(
                title=title(key),
                columns=tuple(columns),
                lines=tuple(lines),
                percent=percent,
                has_corrected=any(r.corrected is not None for r in picked),
                collapsed=key not in ATTRIBUTES,
            )
        )
    return tables
