"""Stage 5, attributes: probes trained on labelled embeddings, predictions, flags, clusters, manual labels."""

import time
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from facestats_core.analysis.clusters import cluster_embeddings, crosstab
from facestats_core.analysis.flags import build_flags, labels_template, near_duplicates
from facestats_core.embedding.matrix import embedding_matrix
from facestats_core.io.atomic import atomic_write_text
from facestats_core.labels.attribute_labels import (
    LabelIssue,
    match_labels_to_images,
    race4,
    read_fairface_labels,
    read_manual_labels,
    summarize_issues,
)
from facestats_core.labels.face_labels import labels_to_faces
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.classifiers import TrainedClassifier, predict_attributes, train_attribute_classifier
from facestats_dagster.conditions import CHECKS_FOLLOW_ASSET, FOLLOW_UPSTREAM
from facestats_dagster.markdown import classifier_metrics_markdown, crosstab_markdown
from facestats_dagster.metadata import count_values, counts_table, log_issues
from facestats_dagster.resources import AnalysisResource, LabelsResource, PathsResource


def _log_issues(context: dg.AssetExecutionContext, source: str, issues: list[LabelIssue]) -> None:
    log_issues(context, source, issues, summarize_issues(issues), what="label issues")


@dg.asset(
    group_name="attributes", kinds={"scikitlearn"}, io_manager_key="model_store",
    automation_condition=FOLLOW_UPSTREAM,
)
def attribute_classifiers(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    paths: PathsResource,
    labels: LabelsResource,
    analysis: AnalysisResource,
) -> dict[str, TrainedClassifier]:
    """Logistic-regression probes for gender (2), age (9 FairFace bins) and ethnicity (7),
    trained on labelled embeddings; C by cross-validation; held-out metrics with per-group accuracy.

    Stored by the model store as `<model_root>/attribute_classifiers.joblib` and `.metrics.json`
    (with its sha256).
    """
    layout = paths.layout()
    label_file = layout.data_file(labels.fairface_labels)
    if label_file is None:
        raise dg.Failure("No FairFace labels configured: set FACESTATS_FAIRFACE_LABELS (labels.fairface_labels).")
    try:
        read = read_fairface_labels(label_file)
    except (FileNotFoundError, ValueError) as exc:
        raise dg.Failure(f"Cannot read FairFace labels {label_file}: {exc}") from exc
    matched, match_issues = match_labels_to_images(
        read.labels, embeddings_clip.select("image_id", "path").unique("image_id", keep="first"),
        prefix=labels.fairface_prefix,
    )
    issues = [*read.issues, *match_issues]
    _log_issues(context, str(label_file), issues)
    if matched.height == 0:
        raise dg.Failure(
            f"None of the {read.labels.height} labels in {label_file} matches an embedded image "
            f"(paths are relative to {layout.raw_dir}; set labels.fairface_prefix if the FairFace tree is a sub-folder)."
        )
    faces, multi_face_labels = labels_to_faces(
        matched.select("image_id", "gender", "age", "ethnicity", "split"), embeddings_clip.select("face_id", "image_id")
    )
    if multi_face_labels:
        context.log.warning(f"{multi_face_labels} labels name images with several faces (or none) and were not used.")
    data = embeddings_clip.select("face_id", "embedding").join(
        faces.select("face_id", "gender", "age", "ethnicity", "split"), on="face_id"
    )
    X = embedding_matrix(data)
    val = data["split"] == "val"
    val_mask = val.to_numpy() if val.any() else None
    groups = {"gender": data["gender"].to_numpy(), "ethnicity": data["ethnicity"].to_numpy()}
    started = time.perf_counter()
    models = {
        attr: train_attribute_classifier(
            X, data[attr].to_numpy(), classes, groups=groups, val_mask=val_mask, seed=analysis.seed
        )
        for attr, classes in ATTRIBUTES.items()
    }
    seconds = time.perf_counter() - started
    metrics = {attr: model.metrics for attr, model in models.items()}
    metadata: dict[str, Any] = {
        "metrics": dg.MetadataValue.md(classifier_metrics_markdown(metrics)),
        "labelled_faces": data.height,
        "labels_on_multi_face_images": multi_face_labels,
        "label_issues": counts_table(summarize_issues(issues), key="issue"),
        "train_seconds": round(seconds, 2),
    }
    for attr, m in metrics.items():
        metadata[f"accuracy_{attr}"] = round(float(m["accuracy"]), 4)
        metadata[f"baseline_{attr}"] = round(float(m["majority_baseline_accuracy"]), 4)
    context.add_output_metadata(metadata)
    return models


@dg.asset_check(
    asset=attribute_classifiers, automation_condition=CHECKS_FOLLOW_ASSET,
    description="Held-out accuracy of each classifier is at least its floor.",
)
def classifier_accuracy_floor(
    attribute_classifiers: dict[str, TrainedClassifier], analysis: AnalysisResource
) -> dg.AssetCheckResult:
    metrics = {attr: model.metrics for attr, model in attribute_classifiers.items()}
    floors = analysis.accuracy_floors()
    below = {a: round(metrics[a]["accuracy"], 4) for a, floor in floors.items() if metrics[a]["accuracy"] < floor}
    return dg.AssetCheckResult(
        passed=not below,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "floors": dg.MetadataValue.json(floors),
            "accuracy": dg.MetadataValue.json({a: round(metrics[a]["accuracy"], 4) for a in floors}),
            "below_floor": dg.MetadataValue.json(below),
        },
    )


@dg.asset(group_name="attributes", kinds={"parquet"}, automation_condition=FOLLOW_UPSTREAM)
def attributes(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    attribute_classifiers: dict[str, TrainedClassifier],
) -> pl.DataFrame:
    """Predicted gender, age bin and ethnicity for every embedded face, with the probability
    of the predicted class and the full probability vector (canonical class order); plus
    `race4_pred`, the 4-group race derived from ethnicity. Low confidence is a flag
    (`attribute_flags`), never an "unknown" class."""
    predictions = predict_attributes(attribute_classifiers, embedding_matrix(embeddings_clip))
    table = pl.concat([embeddings_clip.select("face_id", "image_id", "path"), predictions], how="horizontal").with_columns(
        pl.col("ethnicity_pred").map_elements(race4, return_dtype=pl.String).alias("race4_pred")
    )
    context.add_output_metadata(
        {
            "faces": table.height,
            **{
                f"predicted_{attr}": counts_table(count_values(table[f"{attr}_pred"]), key=attr)
                for attr in ATTRIBUTES
            },
            **{f"mean_prob_{attr}": round(float(table[f"{attr}_prob"].mean() or 0.0), 4) for attr in ATTRIBUTES},
        }
    )
    return table


@dg.asset(group_name="attributes", kinds={"parquet", "csv"}, automation_condition=FOLLOW_UPSTREAM)
def attribute_flags(
    context: dg.AssetExecutionContext,
    attributes: pl.DataFrame,
    face_chips: dict[str, pl.DataFrame],
    embeddings_clip: pl.DataFrame,
    paths: PathsResource,
    analysis: AnalysisResource,
) -> pl.DataFrame:
    """Flags per face: chip flags carried over (unreadable, tiny, blurry),
    low-confidence predictions and near-duplicates (cosine ≥ threshold, blocked matrix
    products). Also writes `metadata/labels_template.csv` for manual review."""
    chips = pl.concat(list(face_chips.values())).select("face_id", "image_id", "path", "flags")
    duplicates = near_duplicates(
        embeddings_clip["face_id"].to_list(), embedding_matrix(embeddings_clip), analysis.duplicate_threshold
    )
    flags = build_flags(
        attributes, analysis.low_confidence(), preprocessing=chips.select("face_id", "flags"),
        duplicates=duplicates,
    ).join(chips.select("face_id", "image_id", "path"), on="face_id", how="left")
    template = labels_template(flags, attributes)
    template_path = paths.layout().metadata_dir / "labels_template.csv"
    atomic_write_text(template_path, template.write_csv())
    context.add_output_metadata(
        {
            "faces": flags.height,
            "flagged": int((flags["flags"].list.len() > 0).sum()),
            "flags": counts_table(count_values(f for row in flags["flags"].to_list() for f in row), key="flag"),
            "near_duplicate_pairs": duplicates.height,
            "labels_template": dg.MetadataValue.path(str(template_path)),
        }
    )
    return flags


@dg.asset(group_name="attributes", kinds={"scikitlearn", "parquet"}, automation_condition=FOLLOW_UPSTREAM)
def embedding_clusters(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    attributes: pl.DataFrame,
    analysis: AnalysisResource,
) -> pl.DataFrame:
    """k-means clusters (k configurable) of PCA-reduced embeddings; cluster 0 is the largest."""
    k = min(analysis.clusters, embeddings_clip.height)
    result = cluster_embeddings(
        embedding_matrix(embeddings_clip), k=k, pca_dim=analysis.cluster_pca_dim, seed=analysis.seed
    )
    table = embeddings_clip.select("face_id").with_columns(pl.Series("cluster", result.labels, dtype=pl.Int32))
    ethnicity = table.join(attributes.select("face_id", "ethnicity_pred"), on="face_id", how="left")
    cross = crosstab(result.labels, ethnicity["ethnicity_pred"].to_list())
    context.add_output_metadata(
        {
            "clusters": k,
            "cluster_sizes": counts_table(count_values(str(c) for c in result.labels), key="cluster"),
            "cluster_x_predicted_ethnicity": dg.MetadataValue.md(crosstab_markdown(cross)),
            "pca_explained_variance": round(float(np.sum(result.explained_variance_ratio)), 4),
        }
    )
    return table


@dg.asset(group_name="attributes", kinds={"parquet"}, automation_condition=FOLLOW_UPSTREAM)
def manual_labels(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    paths: PathsResource,
    labels: LabelsResource,
) -> pl.DataFrame:
    """Manual overrides (`filename,gender,age,ethnicity`, optional `face_id`; blanks allowed) matched to
    faces: a row names a single-face image, or one face by `face_id` (see `labels_template.csv`).
    Applied over predictions in the master table (manual > predicted). No file: no overrides."""
    layout = paths.layout()
    source = layout.data_file(labels.manual_labels)
    empty = pl.DataFrame(schema={"face_id": pl.String, "image_id": pl.String, "gender": pl.String,
                                 "age": pl.String, "ethnicity": pl.String})
    if source is None or not source.exists():
        context.log.warning(f"No manual labels file at {source}: no overrides applied.")
        context.add_output_metadata({"overrides": 0, "source": str(source)})
        return empty
    read = read_manual_labels(source)
    images = embeddings_clip.select("image_id", "path").unique("image_id", keep="first")
    matched, match_issues = match_labels_to_images(read.labels, images)
    issues = [*read.issues, *match_issues]
    _log_issues(context, str(source), issues)
    columns = [c for c in ("face_id", "gender", "age", "ethnicity") if c in matched.columns]
    table, skipped = labels_to_faces(matched.select("image_id", *columns), embeddings_clip.select("face_id", "image_id"))
    if skipped:
        context.log.warning(f"{skipped} manual labels name images with several faces and no face_id: not applied.")
    table = table.select("face_id", "image_id", "gender", "age", "ethnicity")
    context.add_output_metadata(
        {
            "overrides": table.height,
            "skipped_multi_face": skipped,
            "issues": counts_table(summarize_issues(issues), key="issue"),
            "source": str(source),
        }
    )
    return table
