"""Asset checks across the graph (the metric floors live next to their assets).

* ``embeddings_finite_and_normalised`` (``embeddings_clip``): no NaN/inf, every L2 norm within 1e-3 of 1.
* ``every_preprocessed_image_embedded`` (``embeddings_clip``): each ``ok`` row of the
  preprocessed manifests has an embedding.
* ``predictions_cover_embeddings`` (``attributes``) and ``scores_cover_embeddings``
  (``attractiveness_scores``): one prediction per embedded image, none missing or null.
* ``composite_json_matches_image`` (``composite``): every ``<slug>.json`` in the composites
  folder agrees with its picture and with itself (``facestats_core.analysis.integrity``).

Checks read the stored artifacts through ``PathsResource`` (local or fsspec roots), so they
can run alone from the UI. Each returns counts and the first offending ids as metadata.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl

from facestats_core.io.layout import read_parquet
from facestats_core.analysis.integrity import NORM_TOLERANCE, composite_sidecar_problems, embedding_health, id_coverage
from facestats_dagster.resources import PathsResource

SHOWN = 10
"""How many offending ids a check lists in its metadata."""

ERROR = dg.AssetCheckSeverity.ERROR


def _read(path: Any, columns: list[str] | None = None) -> pl.DataFrame | None:
    return read_parquet(path, columns) if path.exists() else None


def _ids(values: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.json(values[:SHOWN])


def _missing(path: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False, severity=ERROR, description=f"{path} does not exist: materialize the asset first",
        metadata={"path": dg.MetadataValue.path(str(path))},
    )


@dg.asset_check(
    asset="embeddings_clip",
    description=f"No NaN/inf in any embedding and every L2 norm within {NORM_TOLERANCE:g} of 1.",
)
def embeddings_finite_and_normalised(paths: PathsResource) -> dg.AssetCheckResult:
    path = paths.layout().artifact("embeddings_clip")
    table = _read(path, ["image_id", "embedding"])
    if table is None:
        return _missing(path)
    report = embedding_health(table)
    bad = len(report["non_finite_ids"]) + len(report["bad_norm_ids"])
    return dg.AssetCheckResult(
        passed=bad == 0,
        severity=ERROR,
        description=None if bad == 0
        else f"{bad} of {report['rows']} embeddings are non-finite or not unit length",
        metadata={
            "rows": report["rows"],
            "non_finite": len(report["non_finite_ids"]),
            "bad_norm": len(report["bad_norm_ids"]),
            "tolerance": NORM_TOLERANCE,
            "norm_min": report["norm_min"],
            "norm_max": report["norm_max"],
            "non_finite_ids": _ids(report["non_finite_ids"]),
            "bad_norm_ids": _ids(report["bad_norm_ids"]),
        },
    )


@dg.asset_check(
    asset="embeddings_clip",
    description="Every preprocessed image (ok rows of the preprocessed_images manifests) has an embedding.",
)
def every_preprocessed_image_embedded(paths: PathsResource) -> dg.AssetCheckResult:
    layout = paths.layout()
    path = layout.artifact("embeddings_clip")
    embedded = _read(path, ["image_id"])
    if embedded is None:
        return _missing(path)
    manifests = layout.read_partitions("preprocessed_images")
    ok = [] if manifests is None else manifests.filter(pl.col("ok"))["image_id"].to_list()
    report = id_coverage(ok, embedded["image_id"].to_list())
    missing = report["missing_ids"]
    return dg.AssetCheckResult(
        passed=not missing,
        severity=ERROR,
        description=None if not missing
        else f"{len(missing)} of {report['expected']} preprocessed images have no embedding "
        "(see the embedding_shards warnings, or re-materialize the image shards)",
        metadata={
            "preprocessed_ok": report["expected"],
            "embedded": report["present"],
            "missing": len(missing),
            "missing_ids": _ids(missing),
            "embeddings_without_preprocessed_image": len(report["extra_ids"]),
            "extra_ids": _ids(report["extra_ids"]),
        },
    )


def _cover(paths: PathsResource, asset: str, value_columns: list[str]) -> dg.AssetCheckResult:
    layout = paths.layout()
    predicted_path, embedded_path = layout.artifact(asset), layout.artifact("embeddings_clip")
    predicted = _read(predicted_path, ["image_id", *value_columns])
    if predicted is None:
        return _missing(predicted_path)
    embedded = _read(embedded_path, ["image_id"])
    if embedded is None:
        return _missing(embedded_path)
    report = id_coverage(embedded["image_id"].to_list(), predicted["image_id"].to_list())
    nulls = predicted.filter(pl.any_horizontal(pl.col(value_columns).is_null()))["image_id"].to_list()
    problems = len(report["missing_ids"]) + len(report["duplicate_ids"]) + len(nulls)
    return dg.AssetCheckResult(
        passed=problems == 0,
        severity=ERROR,
        description=None if problems == 0 else (
            f"{len(report['missing_ids'])} embedded images without a prediction, "
            f"{len(report['duplicate_ids'])} duplicated, {len(nulls)} with null values"
        ),
        metadata={
            "embedded": report["expected"],
            "predicted": report["present"],
            "missing": len(report["missing_ids"]),
            "missing_ids": _ids(report["missing_ids"]),
            "duplicated_ids": _ids(report["duplicate_ids"]),
            "null_predictions": len(nulls),
            "null_ids": _ids(nulls),
            "predictions_without_embedding": len(report["extra_ids"]),
            "extra_ids": _ids(report["extra_ids"]),
        },
    )


@dg.asset_check(
    asset="attributes",
    description="Every embedded image has exactly one non-null gender / age / ethnicity prediction.",
)
def predictions_cover_embeddings(paths: PathsResource) -> dg.AssetCheckResult:
    return _cover(paths, "attributes", ["gender_pred", "age_pred", "ethnicity_pred"])


@dg.asset_check(
    asset="attractiveness_scores",
    description="Every embedded image has exactly one non-null attractiveness score, percentile and decile.",
)
def scores_cover_embeddings(paths: PathsResource) -> dg.AssetCheckResult:
    return _cover(paths, "attractiveness_scores",
                  ["attractiveness_raw", "attractiveness_percentile", "attractiveness_decile"])


@dg.asset_check(
    asset="composite",
    description="Every composite json in the composites folder agrees with its image: the image exists at "
    "the recorded size, used + read failures == len(image_ids), the spec is canonical and names the file.",
)
def composite_json_matches_image(paths: PathsResource) -> dg.AssetCheckResult:
    folder = paths.layout().composites_dir
    report = composite_sidecar_problems(folder)
    problems: dict[str, list[str]] = report["problems"]
    lines = ["| composite | problem |", "|---|---|"]
    lines += [f"| `{slug}` | {'; '.join(reasons)} |" for slug, reasons in list(problems.items())[:SHOWN]]
    return dg.AssetCheckResult(
        passed=not problems,
        severity=ERROR,
        description=None if not problems
        else f"{len(problems)} of {report['checked']} composites are inconsistent",
        metadata={
            "composites": report["checked"],
            "inconsistent": len(problems),
            "inconsistent_slugs": _ids(sorted(problems)),
            "problems": dg.MetadataValue.md("\n".join(lines) if problems else "_none_"),
            "folder": dg.MetadataValue.path(str(folder)),
        },
    )
