"""Stage 5a, reference set: a labelled face set (FairFace / SCUT-FBP5500 format) processed with the
analysed set's functions and CLIP, for training the attribute probes and the attractiveness regressor."""

import time
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.embedding.checkpoint import Checkpoint
from facestats_core.embedding.table import embedding_schema
from facestats_core.faces.known_landmarks import read_landmark_file
from facestats_core.labels.labelled_faces import LABELLED_SCHEMA, labelled_faces
from facestats_core.references.embed_set import embed_face_set
from facestats_dagster.conditions import FOLLOW_UPSTREAM
from facestats_dagster.metadata import count_values, counts_table
from facestats_dagster.progress import progress_logger
from facestats_dagster.resources import ClipResource, FacesResource, ModelsResource, PathsResource

REFERENCE_GROUP = "reference"


def empty_reference(dim: int) -> pl.DataFrame:
    schema = {**embedding_schema(dim), **{k: v for k, v in LABELLED_SCHEMA.items() if k not in ("face_id", "image_id")}}
    return pl.DataFrame(schema=schema)


@dg.asset(group_name=REFERENCE_GROUP, kinds={"pytorch", "parquet"}, automation_condition=FOLLOW_UPSTREAM)
def reference_embeddings(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    faces: FacesResource,
    clip: ClipResource,
    models: ModelsResource,
) -> pl.DataFrame:
    """Embeddings of the labelled reference set (`FACESTATS_REFERENCE_ROOT`) with their labels
    (`gender`, `age`, `ethnicity`, `split`) and ratings (`score`), one row per face.

    Its images go through the same face detection (mode `reference_face_mode`, `whole` for
    pre-cropped sets), chips and CLIP as the analysed set, cached under the reference root.
    No reference set configured: an empty table (the probes then train on the analysed set's
    own labels, or a bundle or zero-shot takes over).
    """
    layout = models.reference_layout()
    if layout is None:
        context.add_output_metadata({"faces": 0, "reference_set": "not configured (FACESTATS_REFERENCE_ROOT)"})
        return empty_reference(0)
    model = clip.load()
    detector, detector_name = faces.face_detector()
    detection = faces.detection(detector_name, face_mode=models.reference_face_mode)
    started = time.perf_counter()
    previous = paths.layout().read_artifact("reference_embeddings")
    if previous is not None:
        columns = list(embedding_schema(model.dim))
        previous = previous.select(columns) if set(columns) <= set(previous.columns) else None
    known = _reference_landmarks(layout, faces)
    try:
        face_set = embed_face_set(
            layout, detector, detection, faces.chips(), model, clip.batch_size,
            previous_embeddings=previous, landmark_files=known, workers=faces.detect_workers(),
            progress=progress_logger(context, "embed reference set"),
            checkpoint=Checkpoint(paths.layout().checkpoint_dir("reference_embeddings")),
        )
    except FileNotFoundError as exc:
        raise dg.Failure(f"Reference set {models.reference_root}: {exc}") from exc
    model_id = model.model_id
    del model
    clip.release()  # the steps after this one do not hold the weights
    for reason in face_set.checkpoint_skipped:
        context.log.warning(f"reference set: checkpoint part not used: {reason}")
    if face_set.resumed:
        context.log.info(f"reference set: {face_set.resumed} faces resumed from checkpoint parts")
    labels_file = layout.data_file(models.reference_labels)
    ratings_file = layout.data_file(models.reference_ratings)
    try:
        found = labelled_faces(face_set.embeddings.select("face_id", "image_id", "path"), labels_file, ratings_file)
    except (OSError, ValueError) as exc:
        raise dg.Failure(f"Cannot read the reference set's labels or ratings: {exc}") from exc
    table = face_set.embeddings.join(found.table.drop("image_id"), on="face_id", how="left")
    labelled = table.filter(pl.col("gender").is_not_null() | pl.col("age").is_not_null()
                            | pl.col("ethnicity").is_not_null())
    metadata: dict[str, Any] = {
        "reference_root": models.reference_root,
        "images": face_set.raw.height,
        "faces": table.height,
        "labelled_faces": labelled.height,
        "rated_faces": int(table["score"].is_not_null().sum()),
        "labels_file": str(labels_file) if labels_file is not None and labels_file.exists() else "none",
        "ratings_file": str(ratings_file) if ratings_file is not None and ratings_file.exists() else "none",
        "label_issues": counts_table(count_values(i.kind for i in found.label_issues), key="issue"),
        "labels_on_multi_face_images": found.multi_face_labels + found.multi_face_ratings,
        "face_mode": detection.face_mode,
        "detector_runs": face_set.detector_runs,
        "chips_made": face_set.chips_made,
        "embedded": face_set.embedded,
        "resumed_from_checkpoint": face_set.resumed,
        "model_id": model_id,
        "seconds": round(time.perf_counter() - started, 2),
    }
    for attr in ("gender", "age", "ethnicity"):
        metadata[f"labels_{attr}"] = counts_table(count_values(labelled[attr].drop_nulls()), key=attr)
    context.add_output_metadata(metadata)
    return table


def _reference_landmarks(layout: Any, faces: FacesResource) -> dict[str, Any] | None:
    """Landmarks of the reference images from the landmarks file at the same relative path under the
    reference root (e.g. the demo truth), so its chips are cut like the analysed set's."""
    from pathlib import Path

    source = layout.data_file(faces.landmarks)
    if source is None or not source.exists() or source.protocol not in ("", "file", "local"):
        return None
    try:
        return read_landmark_file(Path(source.path))
    except (OSError, ValueError):
        return None
