"""Stage 1, images: the raw manifest (every file, readable or not), one partition per hash shard."""

import time
import warnings

import dagster as dg
import polars as pl

from facestats_core.images.scan import scan_shards
from facestats_dagster.metadata import count_values, counts_table
from facestats_dagster.partitions import IMAGE_GROUP, N_SHARDS, shard_partitions
from facestats_dagster.resources import FacesResource, PathsResource

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
    context: dg.AssetExecutionContext, paths: PathsResource, faces: FacesResource
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
        max_pixels=faces.max_pixels,
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
