"""Stage 5b, model bundle: the trained probes and regressor with what they were trained with, ready to
be applied to any other folder (`FACESTATS_MODELS=<model root>/bundle`)."""

import dagster as dg
import polars as pl

from facestats_core.attractiveness.domain import fit_domain
from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.embedding.vectors import embedding_matrix
from facestats_core.models.bundle import TrainedWith, describe_bundle, read_bundle, write_bundle
from facestats_core.models.classifiers import TrainedClassifier
from facestats_dagster.conditions import follow_upstream_except
from facestats_dagster.resources import ClipResource, FacesResource, ModelsResource, PathsResource

BUNDLE_FOLDER = "bundle"


@dg.asset(
    group_name="attributes",
    kinds={"scikitlearn", "pytorch"},
    ins={"attractiveness_regressor": dg.AssetIn(metadata={"optional": True})},
    automation_condition=follow_upstream_except("attractiveness_regressor"),
)
def model_bundle(
    context: dg.AssetExecutionContext,
    attribute_classifiers: dict[str, TrainedClassifier],
    attractiveness_regressor: AttractivenessRegressor | None,
    reference_embeddings: pl.DataFrame,
    dataset_labels: pl.DataFrame,
    embeddings_clip: pl.DataFrame,
    paths: PathsResource,
    clip: ClipResource,
    faces: FacesResource,
    models: ModelsResource,
) -> dg.MaterializeResult:
    """`<model_root>/bundle`: the attribute probes, the attractiveness regressor (when there is one),
    the out-of-domain reference (training embeddings + threshold) and `bundle.json` (CLIP id and
    weights revision, face mode, chip version, label sets and counts), sha256-checked. Apply it to
    any folder with `FACESTATS_MODELS`; `facestats models describe` prints it.

    Not written when there are no probes (zero-shot run) or when the probes came from a bundle."""

    sources = {m.metrics.get("trained_on") for m in attribute_classifiers.values()}
    if not attribute_classifiers or "bundle" in sources:
        reason = "no probes (zero-shot)" if not attribute_classifiers else "the probes came from a bundle"
        context.log.info(f"No model bundle written: {reason}")
        return dg.MaterializeResult(metadata={"bundle": f"not written: {reason}"})
    trained_on = next(iter(sources))
    if trained_on == "reference":
        training = reference_embeddings
        face_mode = models.reference_face_mode
    else:
        training = embeddings_clip.join(dataset_labels.drop("image_id"), on="face_id")
        face_mode = faces.face_mode
    loaded = clip.load()
    label_sets = {
        "trained_on": trained_on,
        "faces": training.height,
        **{attr: {str(k): int(v) for k, v in training[attr].drop_nulls().value_counts().iter_rows()}
           for attr in ("gender", "age", "ethnicity") if attr in training.columns},
        "rated_faces": int(training["score"].is_not_null().sum()) if "score" in training.columns else 0,
    }
    trained_with = TrainedWith(loaded.model_id, loaded.revision, loaded.dim, face_mode, faces.chips().version,
                               label_sets)
    del loaded
    clip.release()  # the steps after this one do not hold the weights
    domain = fit_domain(embedding_matrix(training)) if training.height >= 2 else None
    root = paths.layout().model_root / BUNDLE_FOLDER
    write_bundle(root, trained_with, attribute_classifiers, attractiveness_regressor, domain)
    description = describe_bundle(read_bundle(root))
    context.log.info(description)
    return dg.MaterializeResult(metadata={"bundle": dg.MetadataValue.path(str(root)),
                                          "description": dg.MetadataValue.md(f"```\n{description}\n```")})
