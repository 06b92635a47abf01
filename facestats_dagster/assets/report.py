"""``stats_report``: a self-contained HTML report with PNG charts (rendering in ``facestats_core.report.html``)."""

from typing import Any

import dagster as dg
import polars as pl

from facestats_core.models.attractiveness import DEFAULT_NAME as REGRESSOR_NAME
from facestats_core.report.html import REPORT_FILE, build_report, read_composites, read_json, write_report
from facestats_dagster.assets._metadata import image_markdown
from facestats_dagster.assets.attractiveness import attractiveness_regressor
from facestats_dagster.assets.attributes import CLASSIFIERS_NAME, attribute_classifiers, embedding_clusters
from facestats_dagster.assets.composites import composite
from facestats_dagster.resources import PathsResource

INLINE_PLOTS = ("attributes_ethnicity.png", "attractiveness_histogram.png", "fairness_ethnicity.png")
"""Charts shown inline in the materialization metadata (when the report has them)."""


@dg.asset(
    group_name="report",
    deps=[attribute_classifiers, attractiveness_regressor, embedding_clusters, composite],
    kinds={"html", "png"},
)
def stats_report(
    context: dg.AssetExecutionContext, master_metadata: pl.DataFrame, paths: PathsResource
) -> dg.MaterializeResult:
    """``processed/report/index.html`` (self-contained: charts inlined) plus the charts as PNGs:
    final gender/age/ethnicity by source (manual/predicted), attractiveness histogram and mean
    score by group, classifier metrics and accuracy per group (fairness view), cluster ×
    predicted-ethnicity crosstab, and a gallery of the built composites.

    Reads ``master_metadata`` plus, when present, ``<model_root>/attribute_classifiers.metrics.json``,
    ``<model_root>/attractiveness_regressor.json`` and ``processed/composites/*.json``; a missing one
    leaves its section with a note saying so (e.g. no ratings → no attractiveness charts).
    """
    layout = paths.layout()
    sources: dict[str, Any] = {
        "classifier metrics": layout.model_root / f"{CLASSIFIERS_NAME}.metrics.json",
        "regressor": layout.model_root / f"{REGRESSOR_NAME}.json",
    }
    loaded: dict[str, Any] = {}
    for label, path in sources.items():
        try:
            loaded[label] = read_json(path)
        except (OSError, ValueError) as exc:
            context.log.warning(f"Cannot read the {label} at {path}: {exc}; that section is left empty.")
            loaded[label] = None
        if loaded[label] is None:
            context.log.warning(f"No {label} at {path}: that section of the report says so.")
    composites = read_composites(layout.composites_dir)
    report = build_report(
        master_metadata,
        loaded["classifier metrics"],
        loaded["regressor"],
        composites,
        title="FaceStats report",
    )
    written = write_report(report, layout.report_dir)
    lines = ["| section | status |", "|---|---|"] + [f"| {k} | {v} |" for k, v in report.sections.items()]
    metadata: dict[str, Any] = {
        "path": dg.MetadataValue.path(str(written[REPORT_FILE])),
        "sections": dg.MetadataValue.md("\n".join(lines)),
        "charts": dg.MetadataValue.json(sorted(report.images)),
        "html_bytes": len(report.html.encode()),
        **{k: v for k, v in report.summary.items() if v is not None},
    }
    for name in INLINE_PLOTS:
        if name in report.images:
            metadata[f"plot_{name.removesuffix('.png')}"] = image_markdown(report.images[name], alt=name)
    context.log.info(f"report written to {written[REPORT_FILE]} ({len(report.images)} charts)")
    return dg.MaterializeResult(metadata=metadata)
