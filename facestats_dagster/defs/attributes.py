"""Stage 5, attributes: the data set's labels, probes (trained on a reference set or the data set's
labels, or from a bundle), predictions (probe, out of fold, or zero-shot) with open-vocabulary tags,
flags, clusters, manual labels."""

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from facestats_core.analysis.clusters import cluster_embeddings, crosstab
from facestats_core.analysis.flags import build_flags, labels_template, near_duplicates
from facestats_core.embedding.loader import ClipLoadError
from facestats_core.embedding.vectors import embedding_matrix
from facestats_core.io.atomic import atomic_write_text
from facestats_core.labels.attribute_labels import (
    LabelIssue,
    match_labels_to_images,
    read_manual_labels,
    summarize_issues,
)
from facestats_core.labels.face_labels import labels_to_faces
from facestats_core.labels.labelled_faces import labelled_faces
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.classifiers import TrainedClassifier
from facestats_core.models.face_predictions import attributes_without_probes, face_attribute_table
from facestats_core.models.model_source import label_rows
from facestats_core.models.probe_training import train_probes
from facestats_core.models.prompt_models import prompt_models, zero_shot_predictions
from facestats_core.models.tag_config import TagConfigError, read_tag_config
from facestats_dagster.bundles import run_models
from facestats_dagster.checks import ATTRIBUTES_CHECKS, check_spec, checked, predictions_cover_embeddings
from facestats_dagster.conditions import FOLLOW_UPSTREAM
from facestats_dagster.markdown import classifier_metrics_markdown, crosstab_markdown, probe_vs_zero_shot_markdown
from facestats_dagster.metadata import count_values, counts_table, log_issues
from facestats_dagster.resources import (
    AnalysisResource,
    ClipResource,
    FacesResource,
    LabelsResource,
    ModelsResource,
    PathsResource,
)


def _log_issues(context: dg.AssetExecutionContext, source: str, issues: list[LabelIssue]) -> None:
    log_issues(context, source, issues, summarize_issues(issues), what="label issues")


@dg.asset(group_name="attributes", kinds={"parquet"}, automation_condition=FOLLOW_UPSTREAM)
def dataset_labels(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    paths: PathsResource,
    labels: LabelsResource,
) -> pl.DataFrame:
    """The analysed set's own labels (FairFace format) and ratings (SCUT format, manual ratings
    over them), one row per labelled face: the ground truth of the master table and, without a
    reference set, what the probes and the regressor train on. No files: an empty table."""
    layout = paths.layout()
    labels_file = layout.data_file(labels.fairface_labels)
    ratings_file = layout.data_file(labels.ratings)
    manual = layout.data_file(labels.manual_ratings)
    try:
        found = labelled_faces(embeddings_clip.select("face_id", "image_id", "path"), labels_file, ratings_file,
                               prefix=labels.fairface_prefix, manual_ratings_file=manual)
    except (OSError, ValueError) as exc:
        raise dg.Failure(f"Cannot read the data set's labels or ratings: {exc}") from exc
    if found.label_issues:
        _log_issues(context, str(labels_file), found.label_issues)
    if found.rating_issues:
        context.log.warning(f"{len(found.rating_issues)} rating issues (first: {found.rating_issues[0].message})")
    skipped = found.multi_face_labels + found.multi_face_ratings
    if skipped:
        context.log.warning(f"{skipped} labels or ratings name images with several faces: not applied.")
    table = found.table
    context.add_output_metadata({
        "labelled_faces": label_rows(table).height,
        "rated_faces": int(table["score"].is_not_null().sum()),
        "labels_file": _describe(labels_file),
        "ratings_file": _describe(ratings_file),
        "label_issues": counts_table(summarize_issues(found.label_issues), key="issue"),
        "labels_on_multi_face_images": skipped,
    })
    return table


def _describe(source: Any) -> str:
    if source is None:
        return "not configured"
    return str(source) if source.exists() else f"none at {source}"


def _zero_shot_accuracy(clip: ClipResource, models: ModelsResource, layout: Any, data: pl.DataFrame,
                        context: dg.AssetExecutionContext) -> dict[str, float]:
    """Zero-shot accuracy on every labelled row (zero-shot never trains, so every row is held out for it).

    The prompts are encoded with the configured tags' too: the text cache keys the whole set, so `attributes`
    then finds every prompt it needs encoded already (the attribute prompts are not encoded twice)."""

    try:
        prompts = prompt_models(clip.load(), _tag_specs(context, models, quiet=True),
                                cache_dir=layout.model_root / "text_cache")
    except ClipLoadError as exc:
        context.log.warning(f"no zero-shot comparison: {exc}")
        return {}
    finally:
        clip.release()  # the steps after this one do not hold the weights
    predicted = zero_shot_predictions(prompts, embedding_matrix(data))
    out = {}
    for attr in ATTRIBUTES:
        known = data[attr].is_not_null().to_numpy()
        if known.any():
            out[attr] = float((predicted[f"{attr}_pred"].to_numpy()[known] == data[attr].to_numpy()[known]).mean())
    return out


CLASSIFIER_CHECKS = [
    check_spec("classifier_accuracy_floor", "attribute_classifiers",
               "Held-out accuracy of each classifier is at least its floor (no probes: nothing to check)."),
]


@dg.asset(
    group_name="attributes", kinds={"scikitlearn"}, io_manager_key="model_store",
    automation_condition=FOLLOW_UPSTREAM, check_specs=CLASSIFIER_CHECKS,
)
def attribute_classifiers(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    reference_embeddings: pl.DataFrame,
    dataset_labels: pl.DataFrame,
    paths: PathsResource,
    clip: ClipResource,
    faces: FacesResource,
    models: ModelsResource,
    analysis: AnalysisResource,
):
    """Logistic-regression probes for gender (2), age (9 FairFace bins) and ethnicity (7), C by
    cross-validation, held-out metrics with per-group accuracy, next to CLIP zero-shot accuracy
    on the same labels. Where they come from is `facestats_core.models.model_source`'s decision
    (metadata `model_source`, `model_source_reason`): a bundle's probes (`FACESTATS_MODELS`), else
    trained on the reference set's labels, else on the analysed set's own labels (then `attributes`
    predicts its labelled faces out of fold); with no labels and no bundle there are no probes (an
    empty model) and `attributes` uses zero-shot prompts.

    Stored by the model store as `<model_root>/attribute_classifiers.safetensors` and `.metrics.json`;
    `classifier_accuracy_floor` checks them in this step.
    """
    run = run_models(models, clip, faces, embeddings_clip, reference_embeddings, dataset_labels)
    decision = run.sources.attributes
    context.add_asset_metadata(decision.metadata())
    if decision.source == "bundle":
        trained = {attr: replace(model, metrics={**model.metrics, "trained_on": "bundle"})
                   for attr, model in run.bundle.classifiers.items()}
        context.add_asset_metadata({"source": f"bundle {models.bundle}",
                                    "metrics": dg.MetadataValue.md(classifier_metrics_markdown(
                                        {a: m.metrics for a, m in trained.items()}))})
        return checked(trained, classifier_accuracy_floor(trained, analysis))
    if not decision.trains:
        context.log.warning(f"Attributes from CLIP zero-shot prompts: {decision.reason}.")
        context.add_asset_metadata({"source": "none: zero-shot", "labelled_faces": 0})
        return checked({}, classifier_accuracy_floor({}, analysis))
    trained_on, data = decision.source, run.sets.rows(decision)
    X = embedding_matrix(data)
    val = data["split"] == "val"
    val_mask = val.to_numpy() if val.any() else None
    started = time.perf_counter()
    probes = train_probes(X, {a: data[a].to_list() for a in ATTRIBUTES},
                          groups={g: data[g].to_list() for g in ("gender", "ethnicity")}, val_mask=val_mask,
                          seed=analysis.seed, folds=models.oof_folds, trained_on=trained_on)
    for attr, count in probes.too_few.items():
        context.log.warning(f"{count} faces labelled with {attr}: no {attr} probe (zero-shot instead)")
    trained: dict[str, TrainedClassifier] = probes.probes
    seconds = time.perf_counter() - started
    zero_shot = _zero_shot_accuracy(clip, models, paths.layout(), data, context)
    trained = {attr: replace(model, metrics={**model.metrics, "zero_shot_accuracy": zero_shot.get(attr)})
               for attr, model in trained.items()}
    metrics = {attr: model.metrics for attr, model in trained.items()}
    metadata: dict[str, Any] = {
        "source": f"probes trained on the {trained_on} set",
        "metrics": dg.MetadataValue.md(classifier_metrics_markdown(metrics)),
        "probe_vs_zero_shot": dg.MetadataValue.md(probe_vs_zero_shot_markdown(metrics, zero_shot)),
        "labelled_faces": data.height,
        "train_seconds": round(seconds, 2),
    }
    for attr, m in metrics.items():
        metadata[f"accuracy_{attr}"] = round(float(m["accuracy"]), 4)
        metadata[f"baseline_{attr}"] = round(float(m["majority_baseline_accuracy"]), 4)
    for attr, accuracy in zero_shot.items():
        metadata[f"zero_shot_accuracy_{attr}"] = round(accuracy, 4)
    context.add_asset_metadata(metadata)
    return checked(trained, classifier_accuracy_floor(trained, analysis))


def classifier_accuracy_floor(
    attribute_classifiers: dict[str, TrainedClassifier], analysis: AnalysisResource
) -> dg.AssetCheckResult:
    metrics = {attr: model.metrics for attr, model in attribute_classifiers.items()}
    floors = {a: f for a, f in analysis.accuracy_floors().items() if a in metrics}
    below = {a: round(metrics[a]["accuracy"], 4) for a, floor in floors.items() if metrics[a]["accuracy"] < floor}
    return dg.AssetCheckResult(
        check_name="classifier_accuracy_floor",
        passed=not below,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if metrics else "no probes (zero-shot attributes): no held-out accuracy to check",
        metadata={
            "floors": dg.MetadataValue.json(floors),
            "accuracy": dg.MetadataValue.json({a: round(metrics[a]["accuracy"], 4) for a in floors}),
            "below_floor": dg.MetadataValue.json(below),
        },
    )


@dg.asset(group_name="attributes", kinds={"parquet"}, automation_condition=FOLLOW_UPSTREAM,
          check_specs=ATTRIBUTES_CHECKS)
def attributes(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    attribute_classifiers: dict[str, TrainedClassifier],
    dataset_labels: pl.DataFrame,
    paths: PathsResource,
    clip: ClipResource,
    models: ModelsResource,
    analysis: AnalysisResource,
):
    """Predicted gender, age bin and ethnicity of every embedded face with the probability of the
    predicted class and the full probability vector (canonical class order), `<attr>_method`
    (`probe` or `zero_shot`) and `<attr>_prediction_source` (`out_of_fold` for faces whose labels
    trained the probes, else `model`); `race4_pred`; and one `tag_<name>` probability per
    open-vocabulary tag (`FACESTATS_TAGS`). Low confidence is a flag (`attribute_flags`), never
    an "unknown" class. `predictions_cover_embeddings` checks the table in this step."""

    X = embedding_matrix(embeddings_clip)
    tag_specs = _tag_specs(context, models)
    prompts = None
    if attributes_without_probes(attribute_classifiers) or tag_specs:
        try:
            prompts = prompt_models(clip.load(), tag_specs, cache_dir=paths.layout().model_root / "text_cache")
        except ClipLoadError as exc:
            raise dg.Failure(f"Zero-shot attributes / tags need the CLIP text tower: {exc}") from exc
        finally:
            clip.release()  # the steps after this one do not hold the weights
    labels = None
    if {m.metrics.get("trained_on") for m in attribute_classifiers.values()} == {"analysed"}:
        known = embeddings_clip.select("face_id").join(dataset_labels, on="face_id", how="left")
        labels = {a: known[a].to_list() for a in ATTRIBUTES}
    predicted = face_attribute_table(X, attribute_classifiers, prompts, labels, k=models.oof_folds,
                                     seed=analysis.seed)
    table = pl.concat([embeddings_clip.select("face_id", "image_id", "path"), predicted], how="horizontal")
    context.add_asset_metadata(
        {
            "faces": table.height,
            "method": counts_table(count_values(table[f"{a}_method"][0] for a in ATTRIBUTES if table.height),
                                   key="method"),
            "out_of_fold_faces": int(sum((table[f"{a}_prediction_source"] == "out_of_fold").sum() for a in ATTRIBUTES)),
            **{
                f"predicted_{attr}": counts_table(count_values(table[f"{attr}_pred"]), key=attr)
                for attr in ATTRIBUTES
            },
            **{f"mean_prob_{attr}": round(float(table[f"{attr}_prob"].mean() or 0.0), 4) for attr in ATTRIBUTES},
            "tags": ", ".join(spec.name for spec in tag_specs) or "none",
            **{f"share_{spec.name}": round(float((table[f"tag_{spec.name}"] >= 0.5).mean() or 0.0), 4)
               for spec in tag_specs},
        }
    )
    return checked(table, predictions_cover_embeddings(table, embeddings_clip))


def _tag_specs(context: dg.AssetExecutionContext, models: ModelsResource, *, quiet: bool = False) -> tuple[Any, ...]:
    """The configured tags; a missing file is none (with a warning), an invalid one a `dg.Failure` (``quiet``: no
    tags and no warning either way, for a step that only encodes them ahead of `attributes`, which reports)."""
    if not models.tags_file:
        return ()
    source = Path(models.tags_file)
    if not source.exists():
        if not quiet:
            context.log.warning(f"No tags file at {source}: no open-vocabulary tags (set FACESTATS_TAGS).")
        return ()
    try:
        return tuple(read_tag_config(source))
    except TagConfigError as exc:
        if quiet:
            return ()
        raise dg.Failure(f"Invalid tags file {source}: {exc}") from exc


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
