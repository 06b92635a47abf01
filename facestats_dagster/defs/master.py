"""Stage 6, master: one row per face plus one per image without a face, joining every stage (`docs/master.md`)."""

import dagster as dg
import polars as pl

from facestats_core.analysis.master import REQUIRED_COLUMNS, build_master, check_master
from facestats_core.faces.quality import quality_counts
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_dagster.checks import check_spec, checked
from facestats_dagster.conditions import follow_upstream_except
from facestats_dagster.metadata import count_values, counts_table
from facestats_dagster.resources import PathsResource


def _concat(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(list(frames.values()), how="vertical_relaxed")


MASTER_CHECKS = [
    check_spec("master_one_row_per_face", "master_metadata",
               "One row per face id and one per faceless image (with a reason), no null image ids, every "
               "required column present."),
]


@dg.asset(
    group_name="master",
    kinds={"polars", "parquet"},
    ins={"attractiveness_scores": dg.AssetIn(metadata={"optional": True})},
    automation_condition=follow_upstream_except("attractiveness_scores"),
    check_specs=MASTER_CHECKS,
)
def master_metadata(
    context: dg.AssetExecutionContext,
    raw_images: dict[str, pl.DataFrame],
    face_detections: dict[str, pl.DataFrame],
    face_chips: dict[str, pl.DataFrame],
    attributes: pl.DataFrame,
    dataset_labels: pl.DataFrame,
    manual_labels: pl.DataFrame,
    attribute_flags: pl.DataFrame,
    embedding_clusters: pl.DataFrame,
    attractiveness_scores: pl.DataFrame | None,
    paths: PathsResource,
):
    """`metadata/master.parquet`: one row per face (`face_id`) plus one row per image without a
    usable face (`face_id` null, `reason` says why: no_face, face_too_small, unreadable, …):
    manifest, detection (box, score, source), chip, predictions with probabilities, final
    `gender`/`age`/`ethnicity` = manual > data-set label > prediction with `<attr>_source`,
    `tag_<name>` probabilities, flags, cluster, attractiveness raw/percentile/decile.

    Attractiveness columns are null when `attractiveness_scores` has not been materialized
    (e.g. no ratings configured); the other stages are required inputs. `master_one_row_per_face`
    checks the table in this step.
    """
    layout = paths.layout()
    if attractiveness_scores is None:
        context.log.warning("No attractiveness scores: attractiveness columns are null.")
    table, stats = build_master(
        _concat(raw_images),
        detections=_concat(face_detections),
        chips=_concat(face_chips),
        attributes=attributes,
        manual=manual_labels,
        flags=attribute_flags,
        clusters=embedding_clusters,
        scores=attractiveness_scores,
        labels=dataset_labels,
    )
    for table_name, count in stats.orphans.items():
        context.log.warning(f"{count} rows of {table_name} belong to faces no longer detected (dropped)")
    source_lines = ["| attribute | manual | label | predicted | none |", "|---|---:|---:|---:|---:|"]
    source_lines += [
        f"| {attr} | {s['manual']} | {s['label']} | {s['predicted']} | {s['none']} |"
        for attr, s in stats.sources.items()
    ]
    verdicts, poor_reasons = quality_counts(table)
    context.add_asset_metadata(
        {
            "rows": table.height,
            "images": stats.images,
            "readable": stats.readable,
            "faces": stats.faces,
            "images_without_face": stats.images_without_face,
            "without_face_by_reason": counts_table(stats.reasons),
            "chipped": stats.chipped,
            "predicted": stats.predicted,
            "scored": stats.scored,
            "attribute_sources": dg.MetadataValue.md("\n".join(source_lines)),
            **{f"final_{attr}": counts_table(count_values(table[attr]), key=attr) for attr in ATTRIBUTES},
            "quality": counts_table(verdicts, key="quality"),
            "poor_by_reason": counts_table(poor_reasons, key="reason"),
            "orphan_rows": dg.MetadataValue.json(stats.orphans),
            "duplicate_ids_in_inputs": dg.MetadataValue.json(stats.duplicates),
            "columns": len(table.columns),
            "path": dg.MetadataValue.path(str(layout.artifact("master_metadata"))),
        }
    )
    return checked(table, master_one_row_per_face(table))


def master_one_row_per_face(master_metadata: pl.DataFrame) -> dg.AssetCheckResult:
    report = check_master(master_metadata)
    passed = not report["missing_columns"] and not report["duplicated_ids"] and not report["null_ids"] and not (
        report["bad_sources"]) and not report["faceless_without_reason"]
    return dg.AssetCheckResult(
        check_name="master_one_row_per_face",
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows": int(report["rows"]),  # type: ignore[call-overload]
            "duplicated_ids": int(report["duplicated_ids"]),  # type: ignore[call-overload]
            "null_ids": int(report["null_ids"]),  # type: ignore[call-overload]
            "faceless_without_reason": int(report["faceless_without_reason"]),  # type: ignore[call-overload]
            "missing_columns": dg.MetadataValue.json(report["missing_columns"]),
            "bad_sources": dg.MetadataValue.json(report["bad_sources"]),
            "required_columns": dg.MetadataValue.json(list(REQUIRED_COLUMNS)),
        },
    )
