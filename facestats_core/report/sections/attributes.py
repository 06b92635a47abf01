"""Report section: the share of every attribute value, observed and corrected for classifier errors.

With a face_statistics table: per attribute, the observed share (95 % Wilson interval), the
corrected share (95 % posterior interval, or why there is none) and the share among the labelled
validation images, over the whole data set (table + chart) and within every other slice
(compact tables). Without it: the observed shares of the master table's final values, no
intervals, and a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.report.figures import Bar, BarGroup, BarRow, hbars
from facestats_core.report.sections.common import (
    OK,
    Chart,
    Section,
    SliceTable,
    classes,
    order_values,
    ordered,
    slice_tables,
)
from facestats_core.report.stat_rows import ALL, SHARE, StatRow, correction_sentences, select

KEY = "attributes"
TITLE = "Attributes"
SOURCES = ("manual", "predicted", "none")
OBSERVED_ONLY = "observed only (no face_statistics)"
"""Status of the section when it has no face_statistics table."""
NO_STATISTICS = (
    "No face_statistics table: the shares below are observed shares counted on the master table, "
    "without intervals and without correction for classifier errors. Materialize face_statistics "
    "for both."
)
NO_ROWS = (
    "face_statistics has no share rows for {attr}: observed shares of the master table, without intervals."
)


@dataclass(frozen=True)
class AttributeBlock:
    """One attribute: rows over the whole data set, their chart, the correction and the slices."""

    attribute: str
    rows: tuple[StatRow, ...]
    chart: Chart
    has_intervals: bool
    has_corrected: bool
    has_true: bool
    has_notes: bool
    """Some row is unstable or has a note (the table then has a note column)."""
    unstable_note: str | None
    """The reason shared by every row when all are unstable (said once, above the table)."""
    corrections: tuple[str, ...]
    notes: tuple[str, ...]
    sources: tuple[tuple[str, int], ...]
    """How many master rows got their final value from each source (manual / predicted / none)."""
    slices: tuple[SliceTable, ...]


@dataclass(frozen=True)
class AttributesView:
    observed_only: bool
    """No face_statistics: observed shares of the master table only."""
    notes: tuple[str, ...]
    blocks: tuple[AttributeBlock, ...]
    any_unstable: bool


def counted_column(master: pl.DataFrame, attr: str) -> str | None:
    """The master column shares are counted on without face_statistics: the prediction
    ``<attr>_pred`` (as face_statistics does) when it has values, else the final ``attr``."""
    for name in (f"{attr}_pred", attr):
        if name in master.columns and master[name].drop_nulls().len():
            return name
    return None


def observed_shares(master: pl.DataFrame, name: str, attr: str) -> list[StatRow]:
    """Share rows of ``attr`` counted on master column ``name`` (no intervals): n = images with a
    value; every vocabulary class gets a row (zero counts included)."""
    values = master.get_column(name).cast(pl.String).drop_nulls()
    n = values.len()
    counts = {str(v): int(c) for v, c in values.value_counts().iter_rows()}
    return [
        StatRow(
            SHARE,
            attr,
            ALL,
            ALL,
            value,
            n,
            counts.get(value, 0) / n if n else None,
            count=counts.get(value, 0),
        )
        for value in classes(attr, list(counts))
    ]


def source_counts(master: pl.DataFrame, attr: str) -> tuple[tuple[str, int], ...]:
    """Master rows per source of the final ``attr`` (a null value counts as ``none``)."""
    name = f"{attr}_source"
    if name not in master.columns:
        return ()
    sources = master.select(
        pl.when(pl.col(attr).is_null())
        .then(pl.lit("none"))
        .otherwise(pl.col(name).cast(pl.String))
        .alias("s")
    )["s"].fill_null("none")
    counts = dict(sources.value_counts().iter_rows())
    return tuple((s, int(counts[s])) for s in [*SOURCES, *sorted(set(counts) - set(SOURCES))] if s in counts)


def _chart(attr: str, rows: list[StatRow], series: list[str]) -> Chart:
    """Observed vs corrected vs true share of every value of ``attr``, with error bars."""
    picks = {
        "observed": lambda r: Bar(r.estimate, r.low, r.high),
        "corrected": lambda r: Bar(r.corrected, r.corrected_low, r.corrected_high),
        "true (labelled)": lambda r: Bar(r.true_share),
    }
    bar_rows = tuple(
        BarRow(
            f"{r.value} (n={r.count})" if r.count is not None else r.value,
            tuple(picks[s](r) for s in series),
            marked=r.unstable,
        )
        for r in rows
    )
    n = rows[0].n if rows else None
    intervals = any(r.low is not None or r.corrected_low is not None for r in rows)
    png = hbars(
        f"{attr}: share of faces" + (f" (n = {n})" if n is not None else ""),
        [BarGroup(None, bar_rows)],
        series,
        x_label="share of faces" + (" (error bars: 95 % interval)" if intervals else ""),
        percent=True,
        marked_label="unstable",
    )
    return Chart(f"attributes_{attr}.png", f"{attr} shares", png)


def _shared_note(rows: list[StatRow]) -> str | None:
    """The note when every row is unstable for the same reason (said once, not on every row)."""
    notes = {r.note for r in rows}
    if len(notes) == 1 and None not in notes and all(r.unstable for r in rows):
        return next(iter(notes))
    return None


def _block(attr: str, stats: list[StatRow] | None, master: pl.DataFrame) -> AttributeBlock | None:
    """The block of one attribute from its share rows, else from the master table (None: neither)."""
    shares = select(stats or [], SHARE, attribute=attr)
    overall = [r for r in shares if r.slice_key == ALL]
    notes: list[str] = []
    if not overall:
        name = counted_column(master, attr)
        if name is None:
            return None
        overall = observed_shares(master, name, attr)
        if stats is not None:
            notes.append(NO_ROWS.format(attr=attr))
        what = "predicted" if name != attr else "final (manual, else predicted)"
        missing = master.height - master[name].drop_nulls().len()
        unused = (
            "; 1 image without one is not counted"
            if missing == 1
            else f"; {missing} images without one are not counted"
            if missing
            else ""
        )
        notes.append(f"Counted on the {what} values ({name}){unused}.")
    order = order_values(attr, [r.value for r in overall])
    rows = sorted(overall, key=lambda r: order.index(r.value))
    has_corrected = any(r.corrected is not None for r in rows)
    has_true = any(r.true_share is not None for r in rows)
    shared = _shared_note(rows)
    series = (
        ["observed"] + (["corrected"] if has_corrected else []) + (["true (labelled)"] if has_true else [])
    )
    return AttributeBlock(
        attribute=attr,
        rows=tuple(rows),
        chart=_chart(attr, rows, series),
        has_intervals=any(r.low is not None for r in rows),
        has_corrected=has_corrected,
        has_true=has_true,
        has_notes=shared is None and any(r.unstable or r.note for r in rows),
        unstable_note=None if shared is None else f"Every row is unstable: {shared}.",
        corrections=tuple(correction_sentences(rows)) if stats is not None and shares else (),
        notes=tuple(notes),
        sources=source_counts(master, attr) if attr in master.columns else (),
        slices=tuple(slice_tables(shares, attr, lambda key: f"{attr} share by {key}", percent=True)),
    )


def attributes_section(master: pl.DataFrame, stats: list[StatRow] | None) -> Section:
    """Shares of every attribute's values (observed, corrected, true) overall and per slice."""
    names = dict.fromkeys([*ATTRIBUTES, *(r.attribute for r in select(stats or [], SHARE))])
    blocks = [b for attr, _ in ordered(names) if (b := _block(attr, stats, master)) is not None]
    view = AttributesView(
        observed_only=stats is None,
        notes=(NO_STATISTICS,) if stats is None else (),
        blocks=tuple(blocks),
        any_unstable=any(r.unstable for b in blocks for r in b.rows)
        or any(
            c is not None and c.unstable
            for b in blocks
            for t in b.slices
            for line in t.lines
            for c in line.cells
        ),
    )
    if not blocks:
        return Section(KEY, TITLE, "no attribute columns in the master table", view)
    status = OK if stats is not None else OBSERVED_ONLY
    return Section(KEY, TITLE, status, view, tuple(b.chart for b in blocks))
