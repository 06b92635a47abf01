"""Stage 1, images: the raw manifest and the preprocessed squares, one partition per hash shard."""

import time
import warnings

import dagster as dg
import polars as pl

from facestats_core.images.preprocess import preprocess_manifest
from facestats_core.images.scan import scan_shards
from facestats_core.images.thumbnails import thumbnail_strip
from facestats_dagster.metadata import count_values, counts_table, image_markdown
from facestats_dagster.partitions import IMAGE_GROUP, N_SHARDS, shard_partitions
from facestats_dagster.progress import progress_logger
from facestats_dagster.resources import PathsResource, PreprocessResource

# Single-run backfills let one command cover every shard (`--partition-range 00...03`);
# the policy is marked beta in Dagster 1.13, which is not news to our users.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

IMAGE_ASSET_ARGS = {
    "partitions_def": shard_partitions,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "group_name": IMAGE_GROUP,
}
"""Every image-level asset: one partition per hash shard, one run over any shard range."""


@dg.asset(**IMAGE_ASSET_ARGS, kinds={"python", "parquet"})
def raw_images(
    context: dg.AssetExecutionContext, paths: PathsResource, preprocess: PreprocessResource
) -> dict[str, pl.DataFrame]:
    """Manifest of every file under `<data_root>/raw`, keyed by content sha256.

    Unreadable files are rows with `readable = false` and an `error` reason.
    Only new or changed files are read; known content reuses its inspection.
    """
    layout = paths.layout()
    if not layout.raw_dir.exists():
        raise dg.Failure(
            f"The raw image folder {layout.raw_dir} does not exist. Put images there, "
            "set FACESTATS_DATA_ROOT, or run `facestats demo-data` for the demo set."
        )
    started = time.perf_counter()
    manifests, stats = scan_shards(
        layout.raw_dir,
        context.partition_keys,
        N_SHARDS,
        previous=layout.read_partitions("raw_images"),
        max_pixels=preprocess.max_pixels,
    )
    combined = pl.concat(list(manifests.values()))
    unreadable = combined.filter(~pl.col("readable"))
    context.add_output_metadata(
        {
            "shards": ", ".join(context.partition_keys),
            "images": combined.height,
            "readable": combined.height - unreadable.height,
            "unreadable": unreadable.height,
            "unreadable_by_reason": counts_table(count_values(unreadable["error"])),
            "converted_modes": counts_table(count_values(combined["note"]), key="conversion"),
            "files_listed": stats.files_listed,
            "files_hashed": stats.files_hashed,
            "images_inspected": stats.images_inspected,
            "images_reused": stats.images_reused,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    return manifests


@dg.asset(**IMAGE_ASSET_ARGS, kinds={"python", "parquet", "jpeg"})
def preprocessed_images(
    context: dg.AssetExecutionContext,
    raw_images: dict[str, pl.DataFrame],
    paths: PathsResource,
    preprocess: PreprocessResource,
) -> dict[str, pl.DataFrame]:
    """Square RGB JPEGs `<data_root>/processed/preproc/<image_id>.jpg` plus their manifest.

    Images done before with the same settings are not redone; unreadable raw
    files stay in the manifest with `ok = false` and flag `unreadable`.
    """
    layout = paths.layout()
    config = preprocess.config()
    previous = layout.read_partitions("preprocessed_images")
    started = time.perf_counter()
    outputs: dict[str, pl.DataFrame] = {}
    processed = reused = 0
    for shard, manifest in raw_images.items():
        frame, stats = preprocess_manifest(
            manifest, layout.raw_dir, layout.preproc_dir, config, previous=previous,
            progress=progress_logger(context, f"preprocess shard {shard}"),
        )
        outputs[shard] = frame
        processed, reused = processed + stats.processed, reused + stats.reused
    combined = pl.concat(list(outputs.values()))
    seconds = time.perf_counter() - started
    flags = count_values(flag for row in combined["flags"].to_list() for flag in row)
    metadata: dict[str, object] = {
        "images": combined.height,
        "ok": int(combined["ok"].sum()),
        "processed": processed,
        "reused": reused,
        "flags": counts_table(flags, key="flag"),
        "size": config.size,
        "preproc_version": config.version,
        "images_per_second": round(processed / seconds, 1) if processed and seconds > 0 else 0.0,
    }
    done = [layout.preproc_dir / name for name in combined.filter(pl.col("ok"))["output_path"].head(8)]
    metadata["preview"] = image_markdown(thumbnail_strip(done), alt="preprocessed faces")
    if done:
        metadata["preview_path"] = dg.MetadataValue.path(str(done[0]))
    context.add_output_metadata(metadata)
    return outputs
