"""Stage 8, report: `stats_report`, a self-contained HTML report with PNG charts (rendering in
`facestats_core.report`)."""

from typing import Any

import dagster as dg
import polars as pl

from facestats_core.models.classifiers import TrainedClassifier
from facestats_core.models.regressor import LoadedRegressor
from facestats_core.report.build import REPORT_FILE, build_report, write_report
from facestats_core.report.inputs import read_composites
from facestats_dagster.conditions import follow_upstream_except
from facestats_dagster.defs.composites import composite
from facestats_dagster.metadata import image_markdown
from facestats_dagster.resources import PathsResource

INLINE_PLOTS = ("attributes_ethnicity.png", "attractiveness_histogram.png", "fairness_ethnicity.png")
"""Charts shown inline in the materialization metadata (when the report has them)."""

OPTIONAL_MODELS = ("attribute_classifiers", "attractiveness_regressor")


@dg.asset(
    group_name="report",
    deps=[composite],
    ins={name: dg.AssetIn(metadata={"optional": True}) for name in OPTIONAL_MODELS},
    kinds={"html", "png"},
    automation_condition=follow_upstream_except(*OPTIONAL_MODELS, "composite"),
)
def stats_report(
    context: dg.AssetExecutionContext,
    master_metadata: pl.DataFrame,
    attribute_classifiers: dict[str, TrainedClassifier] | None,
    attractiveness_regressor: LoadedRegressor | None,
    paths: PathsResource,
) -> dg.MaterializeResult:
    """`processed/report/index.html` (self-contained: charts inlined) plus the charts as PNGs:
    final gender/age/ethnicity by source (manual/predicted), attractiveness histogram and mean
    score by group, classifier metrics and accuracy per group (fairness view), cluster ×
    predicted-ethnicity crosstab, and a gallery of the built composites
    (`processed/composites/*.json`).

    The classifiers and the regressor are optional inputs: a missing one leaves its section
    with a note saying so (e.g. no ratings → no attractiveness charts).
    """
    layout = paths.layout()
    for name, model in (("attribute_classifiers", attribute_classifiers),
                        ("attractiveness_regressor", attractiveness_regressor)):
        if model is None:
            context.log.warning(f"No {name} in {layout.model_root}: that section of the report says so.")
    classifier_metrics = (
        {attr: model.metrics for attr, model in attribute_classifiers.items()} if attribute_classifiers else None
    )
    report = build_report(
        master_metadata,
        classifier_metrics,
        attractiveness_regressor.metadata if attractiveness_regressor is not None else None,
        read_composites(layout.composites_dir),
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
