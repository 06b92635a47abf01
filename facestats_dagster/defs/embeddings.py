"""Stage 3, embedding: CLIP embeddings per shard, then one table for the whole data set."""

import dagster as dg
import polars as pl

from facestats_core.embedding.checkpoint import Checkpoint
from facestats_core.embedding.openvino_int8 import CALIBRATION_FACES, calibrate_from_paths, needs_calibration
from facestats_core.embedding.table import embed_manifest
from facestats_dagster.checks import (
    EMBEDDINGS_CLIP_CHECKS,
    checked,
    embeddings_finite_and_normalised,
    every_face_embedded,
)
from facestats_dagster.conditions import FOLLOW_UPSTREAM
from facestats_dagster.defs.images import IMAGE_ASSET_ARGS
from facestats_dagster.progress import progress_logger
from facestats_dagster.resources import ClipResource, PathsResource


@dg.asset(**IMAGE_ASSET_ARGS, kinds={"pytorch", "parquet"})
def embedding_shards(
    context: dg.AssetExecutionContext,
    face_chips: dict[str, pl.DataFrame],
    paths: PathsResource,
    clip: ClipResource,
) -> dict[str, pl.DataFrame]:
    """L2-normalised CLIP image embeddings of each shard's face chips, one row per `face_id`.

    Faces already embedded with the same model, precision and chip settings are
    reused: re-running after adding images only embeds the new faces. Finished chunks of faces are
    written as checkpoint parts (`processed/checkpoints/embedding_shards/<shard>/`) while a shard is
    embedded, so a killed run resumes where it stopped; the IO manager removes them once the shard is
    written.
    """
    layout = paths.layout()
    model = clip.load()
    previous = layout.read_partitions("embedding_shards")
    outputs: dict[str, pl.DataFrame] = {}
    embedded = reused = resumed = 0
    seconds = model_seconds = 0.0
    failures: dict[str, str] = {}
    if needs_calibration(model):  # int8 on OpenVINO: calibrate once on this data set's own faces (then cached)
        chip_paths = [layout.chips_dir / name for chips in face_chips.values()
                      for name in chips.filter(pl.col("ok"))["chip_path"].to_list()]
        model, report = calibrate_from_paths(model, chip_paths[:CALIBRATION_FACES])
        context.log.info(f"int8 calibration: {report}")

    for shard, chips in face_chips.items():
        frame, stats, shard_failures = embed_manifest(
            chips, model, clip.batch_size, layout.chips_dir, previous=previous,
            progress=progress_logger(context, f"embed shard {shard}"),
            checkpoint=Checkpoint(layout.checkpoint_dir("embedding_shards", shard)),
        )
        for reason in stats.checkpoint_skipped:
            context.log.warning(f"shard {shard}: checkpoint part not used: {reason}")
        if stats.resumed:
            context.log.info(f"shard {shard}: {stats.resumed} faces resumed from checkpoint parts")
        outputs[shard] = frame
        failures.update(shard_failures)
        embedded, reused, resumed = embedded + stats.embedded, reused + stats.reused, resumed + stats.resumed
        seconds, model_seconds = seconds + stats.seconds, model_seconds + stats.model_seconds
    for face_id, reason in failures.items():
        context.log.warning(f"could not embed {face_id}: {reason}")
    context.add_output_metadata(
        {
            "model_id": model.model_id,
            "model_revision": model.revision,
            "precision": model.recorded_precision,
            "dim": model.dim,
            "embedded": embedded,
            "reused": reused,
            "resumed_from_checkpoint": resumed,
            "failed": len(failures),
            "faces_per_second": round(embedded / seconds, 2) if embedded and seconds > 0 else 0.0,
            "model_share_of_time": round(model_seconds / seconds, 3) if seconds > 0 else 0.0,
        }
    )
    del model
    clip.release()  # the steps after this one do not hold the weights
    return outputs


@dg.asset(group_name="embeddings", kinds={"parquet"}, automation_condition=FOLLOW_UPSTREAM,
          check_specs=EMBEDDINGS_CLIP_CHECKS)
def embeddings_clip(embedding_shards: dict[str, pl.DataFrame], face_chips: dict[str, pl.DataFrame]):
    """`embeddings_clip.parquet`: one row per face id (with its image id) and its L2-normalised float32
    embedding. Its checks (finite unit norms, every ok face chip embedded) run in this step."""
    table = pl.concat(list(embedding_shards.values()), how="vertical").sort("face_id")
    models = table.select("model_id", "model_revision", "precision").unique().sort("model_id").rows()
    if len(models) > 1:
        raise dg.Failure(
            f"Shards hold embeddings of different models (model_id, revision, precision) {models}; "
            "re-materialize all shards of embedding_shards with one model."
        )
    norms = table["embedding"].arr.eval(pl.element().pow(2)).arr.sum().sqrt() if table.height else None
    metadata = {
        "faces": table.height,
        "images": table["image_id"].n_unique() if table.height else 0,
        "model_id": models[0][0] if models else "",
        "model_revision": models[0][1] if models else "",
        "dim": table.schema["embedding"].size if table.height else 0,
        "norm_min": round(float(norms.min()), 6) if norms is not None else 0.0,
        "norm_max": round(float(norms.max()), 6) if norms is not None else 0.0,
        "shards": len(embedding_shards),
    }
    return checked(table, embeddings_finite_and_normalised(table), every_face_embedded(table, face_chips),
                   metadata=metadata)
