"""Automation while a Dagster daemon runs (`dagster dev`, a deployment): new images, a daily
refresh, and downstream assets that follow their upstreams. `docs/operations.md` explains it.

* `new_images_sensor` lists the raw folder every minute (names, sizes, mtimes: no file is read)
  and, when the listing differs from its cursor *and* from the stored `raw_images` manifest,
  requests ONE run of the image-level shard assets (group `images`) over the whole shard
  range (tags `dagster/asset_partition_range_start|end`: their `BackfillPolicy.single_run`
  lets one process handle every shard, as `--partition-range` does on the command line; Dagster
  1.13's sensor daemon turns it into one run of `image_assets_job`: tests/e2e/test_sensor_daemon.py).
* `daily_update_schedule` requests the same run at 02:00 (UTC) every day, so label, rating
  and settings changes are picked up even when no image changed.
* Declarative automation does the rest: the conditions sit on the decorators of each stage
  (`facestats_dagster/conditions.py`): every unpartitioned asset downstream of the images
  (`embeddings_clip`, the attribute and attractiveness stages, `master_metadata`,
  `contact_sheet`, reports) runs once its upstreams updated, none missing or in progress;
  `composite` partitions are rebuilt when `master_metadata` updates (new specs are the
  `composite_specs_sensor`'s job). Asset checks follow their asset, so floors and consistency
  checks run after each automated update. `default_automation_condition_sensor` (declared here
  over all assets so that its default status can be set; Dagster's implicit one starts stopped)
  evaluates them every 30 s.

Default status. `new_images_sensor` and the automation sensor start RUNNING, like the
existing `composite_specs_sensor`: the issue asks for a pipeline that follows new images from
the UI without extra clicks, and it is cheap and safe: a tick is one directory listing, the
first tick after `make demo` or `facestats update` requests nothing (the stored manifest
already covers the folder), no request is made while an image run is queued or in progress or
while files are still being copied (newest mtime under `SETTLE_SECONDS`), and all work is
incremental. Set `FACESTATS_AUTOMATION=0` to start both STOPPED (e.g. a machine that also
runs the README's cron line on the same `DAGSTER_HOME`, or a UI you only want to browse).
`daily_update_schedule` starts STOPPED: the README's cron line does the same job without a
daemon, and running both would process the same images twice at 02:00.
"""

from __future__ import annotations

import json
import time
from typing import Any

import dagster as dg

from facestats_core.images.raw_watch import list_raw_files, manifest_covers
from facestats_core.images.scan import file_mtime_ns
from facestats_dagster.defs.embeddings import embedding_shards
from facestats_dagster.defs.faces import face_chips, face_detections
from facestats_dagster.defs.images import raw_images
from facestats_dagster.partitions import SHARD_KEYS
from facestats_dagster.resources import PathsResource
from facestats_dagster.sensor_cursor import load_cursor
from facestats_dagster.settings import load_settings

IMAGE_ASSET_KEYS = [asset.key for asset in (raw_images, face_detections, face_chips, embedding_shards)]
"""The image-level shard assets (group `images`), in the order one shard runs them."""
ALL_SHARDS_TAGS = {
    "dagster/asset_partition_range_start": SHARD_KEYS[0],
    "dagster/asset_partition_range_end": SHARD_KEYS[-1],
}
"""Run tags of one run over every shard (what `--partition-range 00...03` sets)."""

SETTLE_SECONDS = 30.0
"""The sensor waits until the newest raw file is this old (copies still running otherwise)."""

SENSOR_TAG = "facestats/trigger"
IMAGE_JOB_NAMES = ("image_assets_job", "image_shards")
"""Jobs that write the image manifests: ours, and the shard-partitioned scale-out job of `scaleout.py`."""
_IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _automation_default() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if load_settings()["run.automation"] else dg.DefaultSensorStatus.STOPPED


# --------------------------------------------------------------------------- jobs

image_assets_job = dg.define_asset_job(
    "image_assets_job",
    selection=dg.AssetSelection.assets(*IMAGE_ASSET_KEYS),
    description="raw_images, face_detections, face_chips and embedding_shards; run it over every "
    "shard in one process with the tags dagster/asset_partition_range_start|end (what the sensor and "
    "the schedule do).",
)


# --------------------------------------------------------------------------- new images sensor


def _image_run_in_progress(instance: dg.DagsterInstance) -> str | None:
    """The id of a queued or running run that materializes the image assets, if any."""
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_IN_PROGRESS), limit=100):
        selected = set(run.asset_selection or ())
        if run.job_name in IMAGE_JOB_NAMES or selected & set(IMAGE_ASSET_KEYS):
            return run.run_id
    return None


def _stored_manifest(paths: PathsResource) -> tuple[Any, int | None]:
    """All shards of the stored raw manifest and the oldest shard file's mtime (ns); (None, None)
    when a shard has never been written."""
    layout = paths.layout()
    folder = layout.artifact_dir("raw_images")
    files = [folder / f"{shard}.parquet" for shard in SHARD_KEYS]
    if not all(file.exists() for file in files):
        return None, None
    written = min(file_mtime_ns(file) for file in files)
    return layout.read_partitions("raw_images"), written


@dg.sensor(
    name="new_images_sensor",
    job=image_assets_job,
    minimum_interval_seconds=60,
    default_status=_automation_default(),
    description="Requests one run of the image shard assets over all shards when files under "
    "<data_root>/raw are added, removed or changed (directory listing only; see docs/operations.md).",
)
def new_images_sensor(
    context: dg.SensorEvaluationContext, paths: PathsResource
) -> dg.SensorResult | dg.SkipReason:
    raw_dir = paths.layout().raw_dir
    if not raw_dir.exists():
        return dg.SkipReason(f"the raw folder {raw_dir} does not exist")
    cursor = load_cursor(context.cursor)
    listing = list_raw_files(raw_dir)
    state = listing.state()
    if cursor.get("state") == state:
        return dg.SkipReason(f"no change in {raw_dir} ({listing.count} files)")
    age = time.time() - listing.max_mtime_ns / 1e9
    if listing.count and age < SETTLE_SECONDS:
        return dg.SkipReason(
            f"{raw_dir} changed {age:.0f} s ago; waiting until files are {SETTLE_SECONDS:.0f} s old "
            "(copy in progress?)"
        )
    running = _image_run_in_progress(context.instance)
    if running is not None:
        return dg.SkipReason(f"an image run ({running}) is queued or running; checking again after it")
    manifest, written = _stored_manifest(paths)
    coverage = manifest_covers(listing, manifest, written)
    new_cursor = {"state": state, "seq": int(cursor.get("seq", 0))}
    if coverage.covered:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{listing.count} files in {raw_dir}, all already in the raw_images manifest"
            ),
            cursor=json.dumps(new_cursor),
        )
    new_cursor["seq"] += 1
    context.log.info(
        f"{raw_dir}: {coverage.summary()}; requesting the image shards {SHARD_KEYS[0]}…{SHARD_KEYS[-1]} in one run"
    )
    request = dg.RunRequest(
        run_key=f"new-images-{new_cursor['seq']}-{state['digest'][:16]}",
        asset_selection=IMAGE_ASSET_KEYS,
        tags={
            **ALL_SHARDS_TAGS,
            SENSOR_TAG: "new_images_sensor",
            "facestats/raw_files": str(listing.count),
            "facestats/raw_changes": str(len(coverage.new_or_changed) + len(coverage.removed)),
        },
    )
    return dg.SensorResult(run_requests=[request], cursor=json.dumps(new_cursor))


# --------------------------------------------------------------------------- daily schedule


@dg.schedule(
    name="daily_update_schedule",
    job=image_assets_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every day at 02:00 UTC: the image shard assets over all shards in one run; declarative "
    "automation then updates everything downstream. The daemon-side twin of the README's cron line.",
)
def daily_update_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time else "now"
    return dg.RunRequest(
        run_key=f"daily-{day}",
        asset_selection=IMAGE_ASSET_KEYS,
        tags={**ALL_SHARDS_TAGS, SENSOR_TAG: "daily_update_schedule"},
    )


# --------------------------------------------------------------------------- declarative automation

automation_condition_sensor = dg.AutomationConditionSensorDefinition(
    "default_automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=_automation_default(),
    minimum_interval_seconds=30,
    description="Evaluates the automation conditions of every FaceStats asset and check (downstream "
    "assets follow their upstreams; composites follow the master table).",
)
