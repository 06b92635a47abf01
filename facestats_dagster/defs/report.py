"""Stage 9, report: `stats_report`, a self-contained HTML report with PNG charts (rendering in
`facestats_core.report`)."""

from importlib import metadata as package_metadata
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.analysis.run_summary import summarize
from facestats_core.composites.method_comparison import method_comparison
from facestats_core.models.caveats import numbers_caveats
from facestats_core.models.classifiers import TrainedClassifier
from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.report.build import REPORT_FILE, build_report, write_report
from facestats_core.report.face_previews import read_face_previews
from facestats_core.report.inputs import read_composites
from facestats_dagster.conditions import follow_upstream_except
from facestats_dagster.defs.composites import composite
from facestats_dagster.metadata import image_markdown
from facestats_dagster.resources import AnalysisResource, ClipResource, CompositesResource, PathsResource
from facestats_dagster.settings import environment_settings

INLINE_PLOTS = (
    "attributes_gender.png", "attributes_ethnicity.png", "attractiveness_histogram.png",
    "attractiveness_by_group.png", "fairness_ethnicity.png", "faces_per_image.png", "composite_methods.png",
)
"""Charts shown inline in the materialization metadata (when the report has them)."""

OPTIONAL_INPUTS = ("attribute_classifiers", "attractiveness_regressor", "face_statistics")
PACKAGES = ("dagster", "torch", "transformers", "polars", "numpy", "scikit-learn", "matplotlib", "pillow", "openvino", "nncf")
"""Package versions recorded in the report's reproducibility section."""


def _latest_metadata(context: dg.AssetExecutionContext, asset: str, key: str) -> str:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    materialization = event.asset_materialization if event is not None else None
    value = materialization.metadata.get(key) if materialization is not None else None
    return "–" if value is None else str(getattr(value, "value", value))


def reproducibility(
    context: dg.AssetExecutionContext, clip: ClipResource, analysis: AnalysisResource,
    composites: CompositesResource,
) -> dict[str, str]:
    """What produced the report: CLIP and model hashes (from their materializations), thresholds,
    settings, package versions and the run id."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[f"package {name}"] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            versions[f"package {name}"] = "not installed"
    return {
        "run id": context.run.run_id,
        "CLIP model (configured)": clip.model,
        "CLIP model (embeddings)": _latest_metadata(context, "embeddings_clip", "model_id"),
        "CLIP weights revision": _latest_metadata(context, "embeddings_clip", "model_revision"),
        "CLIP precision": clip.precision,
        "attribute_classifiers sha256": _latest_metadata(context, "attribute_classifiers", "sha256"),
        "attractiveness_regressor sha256": _latest_metadata(context, "attractiveness_regressor", "sha256"),
        "seed": str(analysis.seed),
        "low-confidence thresholds": ", ".join(f"{k} {v:g}" for k, v in analysis.low_confidence().items()),
        "accuracy floors": ", ".join(f"{k} {v:g}" for k, v in analysis.accuracy_floors().items()),
        "near-duplicate cosine": f"{analysis.duplicate_threshold:g}",
        "composite min faces": str(composites.min_faces),
        **{f"setting {name}": value for name, value in environment_settings().items()},
        **versions,
    }


@dg.asset(
    group_name="report",
    deps=[composite],
    ins={name: dg.AssetIn(metadata={"optional": True}) for name in OPTIONAL_INPUTS},
    kinds={"html", "png"},
    automation_condition=follow_upstream_except(*OPTIONAL_INPUTS, "composite"),
)
def stats_report(
    context: dg.AssetExecutionContext,
    master_metadata: pl.DataFrame,
    attribute_classifiers: dict[str, TrainedClassifier] | None,
    attractiveness_regressor: AttractivenessRegressor | None,
    face_statistics: pl.DataFrame | None,
    paths: PathsResource,
    clip: ClipResource,
    analysis: AnalysisResource,
    composites: CompositesResource,
) -> dg.MaterializeResult:
    """`processed/report/index.html` (self-contained: charts inlined) plus the charts as PNGs:
    final gender/age/ethnicity by source (manual/predicted), attractiveness histogram and mean
    score by group, classifier metrics and accuracy per group (fairness view), cluster ×
    predicted-ethnicity crosstab, faces per image with a strip of face chips, the same faces
    averaged by none | eyes | warp, and a gallery of the built composites
    (`processed/composites/*.json`).

    Shares and means carry the 95 % intervals of `face_statistics` (observed vs corrected for
    classifier error); a reproducibility table records CLIP, model hashes, thresholds and
    package versions. The classifiers, the regressor and the statistics are optional inputs: a
    missing one leaves its section with a note saying so (e.g. no ratings → no attractiveness
    charts).
    """
    layout = paths.layout()
    for name, model in (("attribute_classifiers", attribute_classifiers),
                        ("attractiveness_regressor", attractiveness_regressor)):
        if model is None:
            context.log.warning(f"No {name} in {layout.model_root}: that section of the report says so.")
    classifier_metrics = (
        {attr: model.metrics for attr, model in attribute_classifiers.items()} if attribute_classifiers else None
    )
    caveats = numbers_caveats(clip.model, summarize(master_metadata, []).methods)
    for caveat in caveats:
        context.log.warning(f"NOTICE: {caveat}")
    report = build_report(
        master_metadata,
        classifier_metrics,
        attractiveness_regressor.evaluation if attractiveness_regressor is not None else None,
        read_composites(layout.composites_dir),
        face_statistics,
        reproducibility(context, clip, analysis, composites),
        read_face_previews(master_metadata, layout.chips_dir, layout.raw_dir),
        method_comparison(master_metadata, layout, seed=analysis.seed),
        title="FaceStats report",
        caveats=caveats,
    )
    written = write_report(report, layout.report_dir)
    lines = ["| section | status |", "|---|---|"] + [f"| {k} | {v} |" for k, v in report.sections.items()]
    metadata: dict[str, Any] = {
        "path": dg.MetadataValue.path(str(written[REPORT_FILE])),
        "what_the_numbers_rest_on": dg.MetadataValue.md(
            "\n".join(f"- **NOTICE:** {c}" for c in caveats) or "a real CLIP; attributes measured or labelled"),
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
