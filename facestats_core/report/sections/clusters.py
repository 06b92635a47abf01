"""Report section: embedding clusters against predicted ethnicity."""

from __future__ import annotations

import polars as pl

from facestats_core.analysis.clusters import crosstab
from facestats_core.report.charts import heatmap
from facestats_core.report.html_parts import esc, img, note, table
from facestats_core.report.sections.common import OK, Section

KEY = "clusters"
HEATMAP_PNG = "cluster_ethnicity.png"


def _shaded_cells(row: list[float], vmax: float) -> list[str]:
    """Count cells shaded by their share of ``vmax``."""
    return [
        f'<span style="display:block;background:rgba(78,121,167,{v / vmax:.2f})">{int(v)}</span>' for v in row
    ]


def cluster_section(master: pl.DataFrame) -> Section:
    """Heatmap and table of images per cluster and predicted ethnicity."""
    head = "<h2 id=clusters>Embedding clusters × predicted ethnicity</h2>"
    if "cluster" not in master.columns or master["cluster"].drop_nulls().len() == 0:
        return Section(
            KEY,
            head
            + note("No clusters in the master table: materialize embedding_clusters and master_metadata."),
            "no clusters",
        )
    ethnicity = "ethnicity_pred" if "ethnicity_pred" in master.columns else "ethnicity"
    rows = master.filter(pl.col("cluster").is_not_null())
    counts = crosstab(
        rows["cluster"].to_numpy(),
        rows[ethnicity].to_list() if ethnicity in rows.columns else [None] * rows.height,
    )
    columns = [c for c in counts.columns if c not in ("cluster", "total")]
    matrix = [[float(v) for v in row] for row in counts.select(columns).iter_rows()]
    clusters, totals = counts["cluster"].to_list(), counts["total"].to_list()
    labels = [f"cluster {c} (n={t})" for c, t in zip(clusters, totals, strict=True)]
    png = heatmap("Images per cluster and predicted ethnicity", labels, columns, matrix)
    vmax = max((max(r) for r in matrix if r), default=1.0) or 1.0
    body = [
        [esc(cluster), *_shaded_cells(row, vmax), str(total)]
        for cluster, row, total in zip(clusters, matrix, totals, strict=True)
    ]
    html = (
        head
        + "<p>k-means clusters of the CLIP embeddings (cluster 0 = largest) against the predicted "
        "ethnicity; a cluster dominated by one group shows what the embedding separates.</p>"
        f"<div class=row>{img(HEATMAP_PNG, png, 'cluster x ethnicity')}"
        + table(["cluster", *columns, "total"], body)
        + "</div>"
    )
    return Section(KEY, html, OK, {HEATMAP_PNG: png})
