"""Asset checks evaluated inside their asset's step (the model floors live next to their assets).

Each check is an `AssetCheckSpec` on its asset's decorator (`check_specs=`); the asset computes
its value, evaluates the check on that value and returns both (`checked`): no separate check
step, no second load of the artifact. The checks are non-blocking, as they always were: a failed
check turns red in the UI and never stops downstream assets.

* `embeddings_finite_and_normalised` (`embeddings_clip`): no NaN/inf, every L2 norm within 1e-3 of 1.
* `every_face_embedded` (`embeddings_clip`): each `ok` row of the face-chips manifests has an
  embedding.
* `predictions_cover_embeddings` (`attributes`) and `scores_cover_embeddings`
  (`attractiveness_scores`): one prediction per embedded face, none missing or null.
* `composite_json_matches_image` (`composite`): every `<slug>.json` in the composites folder
  agrees with its picture and with itself (`facestats_core.analysis.integrity`).

The functions below build each check's result from the frames it covers (the logic is in
`facestats_core.analysis.integrity`); each result carries counts and the first offending ids as
metadata.
"""

from typing import Any

import dagster as dg
import polars as pl

from facestats_core.analysis.integrity import (
    NORM_TOLERANCE,
    composite_sidecar_problems,
    embedding_health,
    id_coverage,
)
from facestats_dagster.resources import PathsResource

SHOWN = 10
"""How many offending ids a check lists in its metadata."""

ERROR = dg.AssetCheckSeverity.ERROR


def check_spec(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    """A check evaluated in `asset`'s own step. Not blocking (a failure is reported, downstream
    assets still run). No automation condition of its own: the check belongs to the asset's
    execution set, so declarative automation requests it with every request of the asset, and
    never alone (a run of the check without its asset is not a valid selection)."""
    return dg.AssetCheckSpec(name, asset=asset, description=description)


def checked(value: Any, *results: dg.AssetCheckResult, metadata: dict[str, Any] | None = None) -> dg.MaterializeResult:
    """What an asset with checks returns: its value (stored by its IO manager, `None` included), the
    results of its checks and, optionally, its metadata.

    Such an asset has several outputs (its value and one per check), so its function has no return
    annotation (Dagster would read `-> dg.MaterializeResult` as "no value") and adds metadata with
    `context.add_asset_metadata` or `metadata=` here, not `context.add_output_metadata`."""
    return dg.MaterializeResult(value=value, metadata=metadata, check_results=list(results))


def _ids(values: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.json(values[:SHOWN])


EMBEDDINGS_CLIP_CHECKS = [
    check_spec("embeddings_finite_and_normalised", "embeddings_clip",
               f"No NaN/inf in any embedding and every L2 norm within {NORM_TOLERANCE:g} of 1."),
    check_spec("every_face_embedded", "embeddings_clip",
               "Every face chip (ok rows of the face_chips manifests) has an embedding."),
]
ATTRIBUTES_CHECKS = [
    check_spec("predictions_cover_embeddings", "attributes",
               "Every embedded face has exactly one non-null gender / age / ethnicity prediction."),
]
SCORES_CHECKS = [
    check_spec("scores_cover_embeddings", "attractiveness_scores",
               "Every embedded face has exactly one non-null attractiveness score, percentile and decile "
               "(no scores at all when attractiveness was skipped for want of ratings: nothing to cover)."),
]
COMPOSITE_CHECKS = [
    check_spec("composite_json_matches_image", "composite",
               "Every composite json in the composites folder agrees with its image: the image exists at "
               "the recorded size, used + read failures == len(face_ids), the spec is canonical and names the file."),
]


def embeddings_finite_and_normalised(embeddings_clip: pl.DataFrame) -> dg.AssetCheckResult:
    report = embedding_health(embeddings_clip.select("face_id", "embedding"))
    bad = len(report["non_finite_ids"]) + len(report["bad_norm_ids"])
    return dg.AssetCheckResult(
        check_name="embeddings_finite_and_normalised",
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


def every_face_embedded(
    embeddings_clip: pl.DataFrame, face_chips: dict[str, pl.DataFrame]
) -> dg.AssetCheckResult:
    manifests = list(face_chips.values())
    ok = pl.concat(manifests).filter(pl.col("ok"))["face_id"].to_list() if manifests else []
    report = id_coverage(ok, embeddings_clip["face_id"].to_list())
    missing = report["missing_ids"]
    return dg.AssetCheckResult(
        check_name="every_face_embedded",
        passed=not missing,
        severity=ERROR,
        description=None if not missing
        else f"{len(missing)} of {report['expected']} face chips have no embedding "
        "(see the embedding_shards warnings, or re-materialize the image shards)",
        metadata={
            "chips_ok": report["expected"],
            "embedded": report["present"],
            "missing": len(missing),
            "missing_ids": _ids(missing),
            "embeddings_without_chip": len(report["extra_ids"]),
            "extra_ids": _ids(report["extra_ids"]),
        },
    )


def _cover(name: str, predicted: pl.DataFrame, embedded: pl.DataFrame, value_columns: list[str]
           ) -> dg.AssetCheckResult:
    report = id_coverage(embedded["face_id"].to_list(), predicted["face_id"].to_list())
    nulls = predicted.filter(pl.any_horizontal(pl.col(value_columns).is_null()))["face_id"].to_list()
    problems = len(report["missing_ids"]) + len(report["duplicate_ids"]) + len(nulls)
    return dg.AssetCheckResult(
        check_name=name,
        passed=problems == 0,
        severity=ERROR,
        description=None if problems == 0 else (
            f"{len(report['missing_ids'])} embedded faces without a prediction, "
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


def predictions_cover_embeddings(attributes: pl.DataFrame, embeddings_clip: pl.DataFrame) -> dg.AssetCheckResult:
    return _cover("predictions_cover_embeddings", attributes, embeddings_clip, ["gender_pred", "age_pred", "ethnicity_pred"])


def scores_cover_embeddings(attractiveness_scores: pl.DataFrame, embeddings_clip: pl.DataFrame) -> dg.AssetCheckResult:
    if attractiveness_scores.height == 0:  # the asset returns no rows only when there is no regressor
        return dg.AssetCheckResult(check_name="scores_cover_embeddings", passed=True, severity=ERROR,
                                   description="attractiveness skipped (no regressor): no scores to check",
                                   metadata={"scores": 0})
    return _cover("scores_cover_embeddings", attractiveness_scores, embeddings_clip,
                  ["attractiveness_raw", "attractiveness_percentile", "attractiveness_decile"])


def composite_json_matches_image(paths: PathsResource) -> dg.AssetCheckResult:
    folder = paths.layout().composites_dir
    report = composite_sidecar_problems(folder)
    problems: dict[str, list[str]] = report["problems"]
    lines = ["| composite | problem |", "|---|---|"]
    lines += [f"| `{slug}` | {'; '.join(reasons)} |" for slug, reasons in list(problems.items())[:SHOWN]]
    return dg.AssetCheckResult(
        check_name="composite_json_matches_image",
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
