"""Stage 8, statistics: `face_statistics`, shares with confidence intervals, corrected for
classifier error, and mean scores by group (`facestats_core.statistics`, `docs/statistics.md`)."""

from typing import Any

import dagster as dg
import polars as pl

from facestats_core.composites.sidecars import member_ids
from facestats_core.models.classifiers import TrainedClassifier
from facestats_core.models.prevalence_calibration import calibration_of
from facestats_core.statistics.face_statistics import face_statistics as build_statistics
from facestats_dagster.conditions import follow_upstream_except
from facestats_dagster.defs.composites import composite
from facestats_dagster.markdown import share_table_markdown
from facestats_dagster.resources import AnalysisResource, LabelsResource, PathsResource
from facestats_dagster.truth import face_truth

STATISTICS_GROUP = "statistics"


@dg.asset(
    group_name=STATISTICS_GROUP,
    deps=[composite],
    ins={"attribute_classifiers": dg.AssetIn(metadata={"optional": True})},
    kinds={"polars", "parquet"},
    automation_condition=follow_upstream_except("attribute_classifiers", "composite"),
)
def face_statistics(
    context: dg.AssetExecutionContext,
    master_metadata: pl.DataFrame,
    attribute_classifiers: dict[str, TrainedClassifier] | None,
    paths: PathsResource,
    labels: LabelsResource,
    analysis: AnalysisResource,
) -> pl.DataFrame:
    """For gender, age bin and ethnicity, over the whole set and within each slice (the other
    attributes, clusters, composite specs): counts, observed shares with Wilson 95 % intervals,
    shares corrected for classifier error (EM prior adjustment on calibrated class probabilities,
    with the probes' out-of-fold calibration data; bootstrap intervals that resample the faces and
    the calibration data; slices under 50 faces report the observed share only), and true shares
    where the data set has labels; mean attractiveness by group with bootstrap intervals.
    See `docs/statistics.md`."""
    calibration = {attr: data for attr, model in (attribute_classifiers or {}).items()
                   if (data := calibration_of(model)) is not None}
    if not calibration:
        context.log.warning("No probe calibration data (no probes, or probes saved without it): shares are "
                            "not corrected for classifier error.")
    members = member_ids(paths.layout().composites_dir)
    faces = master_metadata.filter(pl.col("face_id").is_not_null())
    table = build_statistics(
        faces, calibration, truth=face_truth(context, faces, labels, paths),
        composites=members, seed=analysis.seed,
    )
    shares = table.filter(pl.col("statistic") == "share")
    metadata: dict[str, Any] = {
        "rows": table.height,
        "slices": shares.select("slice_key", "slice_value").unique().height,
        "corrected_rows": int(shares["corrected"].is_not_null().sum()),
        "unstable_rows": int(shares["unstable"].sum()),
        "composites": len(members),
    }
    for attribute in ("gender", "age", "ethnicity"):
        metadata[f"shares_{attribute}"] = dg.MetadataValue.md(share_table_markdown(table, attribute))
    context.add_output_metadata(metadata)
    return table
