"""Report section: final attribute values per source (manual, predicted, none)."""

from __future__ import annotations

import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.report.charts import BarGroup, BarRow, hbar_chart
from facestats_core.report.html_parts import esc, img, note, table
from facestats_core.report.sections.common import NONE_LABEL, OK, Section, classes

KEY = "attributes"
SOURCES = ("manual", "predicted", "none")


def _value_source_counts(master: pl.DataFrame, attr: str) -> dict[tuple[str, str], int]:
    """``(value, source) → images``; a missing value is :data:`NONE_LABEL` with source ``none``."""
    source_col = f"{attr}_source"
    frame = master.select(
        pl.col(attr).cast(pl.String).alias("value"),
        (
            pl.col(source_col).cast(pl.String) if source_col in master.columns else pl.lit("predicted")
        ).alias("source"),
    ).with_columns(
        pl.when(pl.col("value").is_null())
        .then(pl.lit("none"))
        .otherwise(pl.col("source"))
        .alias("source")
    )
    counts: dict[tuple[str, str], int] = {}
    for value, source, n in frame.group_by("value", "source").len().iter_rows():
        counts[(value if value is not None else NONE_LABEL, source or "predicted")] = int(n)
    return counts


def _attribute_block(master: pl.DataFrame, attr: str, images: dict[str, bytes]) -> str:
    """Chart and table of one attribute's values by source; adds the chart to ``images``."""
    counts = _value_source_counts(master, attr)
    values_seen = classes(attr, [v for v, _ in counts if v != NONE_LABEL])
    if any(v == NONE_LABEL for v, _ in counts):
        values_seen.append(NONE_LABEL)
    rows, table_rows = [], []
    for cls in values_seen:
        values = [float(counts.get((cls, s), 0)) for s in SOURCES]
        total = int(sum(values))
        rows.append(BarRow(cls, values, note=str(total)))
        table_rows.append([esc(cls), *(str(int(v)) for v in values), str(total)])
    png = hbar_chart(
        f"{attr}: final values by source (n = {master.height})",
        [BarGroup(None, rows)],
        series=SOURCES,
        x_label="images",
    )
    name = f"attributes_{attr}.png"
    images[name] = png
    return (
        f"<h3>{esc(attr)}</h3><div class=row>{img(name, png, f'{attr} distribution')}"
        + table([attr, *SOURCES, "total"], table_rows)
        + "</div>"
    )


def attributes_section(master: pl.DataFrame) -> Section:
    """Counts of every attribute's final values (manual > predicted) over the master table."""
    head = "<h2 id=attributes>Attributes (final = manual &gt; predicted)</h2>"
    present = [a for a in ATTRIBUTES if a in master.columns]
    if not present or master.height == 0:
        return Section(
            KEY,
            head + note("No attributes in the master table: materialize attributes and master_metadata."),
            "no attribute columns in the master table",
        )
    parts = [
        head,
        "<p>Counts over every image of the master table. <em>manual</em> = from the manual labels file, "
        f"<em>predicted</em> = classifier, <em>{NONE_LABEL}</em> = no value "
        "(unreadable or not embedded).</p>",
    ]
    images: dict[str, bytes] = {}
    parts += [_attribute_block(master, attr, images) for attr in present]
    return Section(KEY, "".join(parts), OK, images)
