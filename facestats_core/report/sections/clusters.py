"""Report section: embedding clusters against predicted ethnicity (heatmap + shaded table)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from facestats_core.analysis.clusters import crosstab
from facestats_core.report.figures import heatmap
from facestats_core.report.sections.common import OK, Chart, Section

KEY = "clusters"
TITLE = "Embedding clusters × predicted ethnicity"
HEATMAP_PNG = "cluster_ethnicity.png"
NO_CLUSTERS_NOTE = "No clusters in the master table: materialize embedding_clusters and master_metadata."


@dataclass(frozen=True)
class Cell:
    count: int
    shade: float
    """``count`` over the largest count of the table (the cell's background opacity)."""


@dataclass(frozen=True)
class ClusterRow:
    cluster: str
    cells: tuple[Cell, ...]
    total: int


@dataclass(frozen=True)
class ClustersView:
    note: str | None
    columns: tuple[str, ...]
    rows: tuple[ClusterRow, ...]
    chart: Chart | None


def cluster_section(master: pl.DataFrame) -> Section:
    """Images per cluster and predicted ethnicity."""
    if "cluster" not in master.columns or master["cluster"].drop_nulls().len() == 0:
        return Section(KEY, TITLE, "no clusters", ClustersView(NO_CLUSTERS_NOTE, (), (), None))
    ethnicity = "ethnicity_pred" if "ethnicity_pred" in master.columns else "ethnicity"
    rows = master.filter(pl.col("cluster").is_not_null())
    counts = crosstab(
        rows["cluster"].to_numpy(),
        rows[ethnicity].to_list() if ethnicity in rows.columns else [None] * rows.height,
    )
    columns = [c for c in counts.columns if c not in ("cluster", "total")]
    matrix = [[int(v) for v in row] for row in counts.select(columns).iter_rows()]
    clusters, totals = counts["cluster"].to_list(), counts["total"].to_list()
    labels = [f"cluster {c} (n={t})" for c, t in zip(clusters, totals, strict=True)]
    png = heatmap(
        "Images per cluster and predicted ethnicity",
        labels,
        columns,
        matrix,
        x_label="predicted ethnicity",
        y_label="k-means cluster",
    )
    chart = Chart(HEATMAP_PNG, "cluster x ethnicity", png)
    vmax = max((max(r) for r in matrix if r), default=1) or 1
    table = tuple(
        ClusterRow(str(c), tuple(Cell(v, v / vmax) for v in row), int(t))
        for c, row, t in zip(clusters, matrix, totals, strict=True)
    )
    return Section(KEY, TITLE, OK, ClustersView(None, tuple(columns), table, chart), (chart,))
