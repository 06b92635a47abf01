"""new_images_sensor, daily_update_schedule and declarative automation (facestats_dagster.defs.automation)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from facestats_core.images.raw_watch import list_raw_files, manifest_covers
from facestats_core.images.scan import scan_shards
from facestats_dagster.defs import automation
from facestats_dagster.defs.automation import IMAGE_ASSET_KEYS, daily_update_schedule, new_images_sensor
from facestats_dagster.partitions import COMPOSITE_SPECS

IMAGE_ASSET_NAMES = [key.to_user_string() for key in IMAGE_ASSET_KEYS]
from facestats_dagster.definitions import defs
from facestats_dagster.partitions import N_SHARDS, SHARD_KEYS
from tests.conftest import write_photos

RANGE_TAGS = {
    "dagster/asset_partition_range_start": SHARD_KEYS[0],
    "dagster/asset_partition_range_end": SHARD_KEYS[-1],
}


def _age(folder: Path, seconds: float = 3600) -> None:
    """Pretend every file under ``folder`` was written ``seconds`` ago (copies finished)."""
    stamp = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (stamp, stamp))


def _evaluate(instance: dg.DagsterInstance, resources: dict, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"paths": resources["paths"]}, definitions=defs
    )
    return new_images_sensor(context)


def test_raw_listing_state_and_manifest_coverage(tmp_path) -> None:
    raw = tmp_path / "raw"
    write_photos(raw / "a", 3)
    (raw / "a" / "copy.jpg").write_bytes((raw / "a" / "photo_000.jpg").read_bytes())  # an alias
    (raw / ".hidden").write_text("ignored, as by the scan")
    _age(raw)
    listing = list_raw_files(raw)
    assert [f[0] for f in listing.files] == ["a/copy.jpg", "a/photo_000.jpg", "a/photo_001.jpg", "a/photo_002.jpg"]
    manifests, _ = scan_shards(raw, SHARD_KEYS, N_SHARDS)
    manifest = pl.concat(list(manifests.values()))
    assert manifest_covers(listing, manifest, time.time_ns()).covered
    assert not manifest_covers(listing, None, None).covered
    assert not manifest_covers(listing, manifest, 0).covered  # alias newer than the manifest

    write_photos(raw / "b", 1, seed=5)
    grown = list_raw_files(raw)
    assert grown.count == 5 and grown.state() != listing.state()
    coverage = manifest_covers(grown, manifest, time.time_ns())
    assert coverage.new_or_changed == ["b/photo_000.jpg"] and not coverage.covered
    (raw / "a" / "photo_001.jpg").unlink()
    coverage = manifest_covers(list_raw_files(raw), manifest, time.time_ns())
    assert coverage.removed == ["a/photo_001.jpg"] and "1 removed" in coverage.summary()
    os.utime(raw / "a" / "photo_002.jpg", ns=(1, 1))  # rewritten in place: mtime differs
    assert list_raw_files(raw).state()["digest"] != grown.state()["digest"]


def test_new_images_sensor_requests_one_run_over_all_shards(resources, raw_folder) -> None:
    _age(raw_folder)
    instance = dg.DagsterInstance.ephemeral()
    first = _evaluate(instance, resources, None)
    assert isinstance(first, dg.SensorResult)
    [request] = first.run_requests
    assert request.asset_selection == IMAGE_ASSET_KEYS
    assert IMAGE_ASSET_NAMES == ["raw_images", "face_detections", "face_chips", "embedding_shards"]  # shard order
    group = dg.AssetSelection.groups("images").resolve(defs.resolve_asset_graph())
    assert set(request.asset_selection) == group
    assert request.partition_key is None and RANGE_TAGS.items() <= request.tags.items()
    assert request.run_key.startswith("new-images-1-")
    assert json.loads(first.cursor)["state"]["count"] == len(list(raw_folder.rglob("*.*")))

    # what the daemon launches: one run over the shard range (BackfillPolicy.single_run)
    result = dg.materialize(
        list(defs.assets), resources=resources, instance=instance, selection=request.asset_selection,
        tags=request.tags,
    )
    assert result.success
    assert len(instance.get_runs()) == 1
    for key in IMAGE_ASSET_KEYS:
        assert instance.get_materialized_partitions(key) == set(SHARD_KEYS)

    assert isinstance(_evaluate(instance, resources, first.cursor), dg.SkipReason)  # nothing changed
    fresh = _evaluate(instance, resources, None)  # a new cursor (e.g. `make ui` after `make demo`)
    assert isinstance(fresh, dg.SensorResult) and not fresh.run_requests
    assert "already in the raw_images manifest" in fresh.skip_reason.skip_message

    write_photos(raw_folder / "new", 2, seed=9)
    waiting = _evaluate(instance, resources, first.cursor)  # just copied: let the copy settle
    assert isinstance(waiting, dg.SkipReason) and "waiting" in waiting.skip_message
    _age(raw_folder / "new")
    busy = dg.DagsterInstance.ephemeral()
    from dagster._core.test_utils import create_run_for_test

    create_run_for_test(busy, job_name="image_assets_job", status=dg.DagsterRunStatus.STARTED)
    blocked = _evaluate(busy, resources, first.cursor)
    assert isinstance(blocked, dg.SkipReason) and "queued or running" in blocked.skip_message
    second = _evaluate(instance, resources, first.cursor)
    [again] = second.run_requests
    assert again.run_key.startswith("new-images-2-") and again.run_key != request.run_key
    assert again.tags["facestats/raw_changes"] == "2"


def test_sensor_without_raw_folder_skips(tmp_path, resources) -> None:
    paths = {"paths": type(resources["paths"])(data_root=str(tmp_path / "nowhere"))}
    result = _evaluate(dg.DagsterInstance.ephemeral(), paths, None)
    assert isinstance(result, dg.SkipReason) and "does not exist" in result.skip_message


def test_daily_schedule_and_default_statuses(monkeypatch) -> None:
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 3, 1, 2, 0))
    request = daily_update_schedule(context)
    assert request.run_key == "daily-2026-03-01" and RANGE_TAGS.items() <= request.tags.items()
    assert request.asset_selection == IMAGE_ASSET_KEYS
    assert daily_update_schedule.cron_schedule == "0 2 * * *"
    assert daily_update_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert new_images_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    repo = defs.get_repository_def()
    assert repo.get_sensor_def("default_automation_condition_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert repo.get_schedule_def("daily_update_schedule").job_name == "image_assets_job"
    monkeypatch.setenv("FACESTATS_AUTOMATION", "0")
    assert automation._automation_default() == dg.DefaultSensorStatus.STOPPED


def _report(instance: dg.DagsterInstance, *names: str, partitions: list[str] | None = None) -> None:
    for name in names:
        for partition in partitions or [None]:
            instance.report_runless_asset_event(dg.AssetMaterialization(name, partition=partition))


ASSET_KEYS = defs.resolve_asset_graph().get_all_asset_keys()


def _requested(result) -> set[str]:
    return {key.to_user_string() for key in ASSET_KEYS if result.get_num_requested(key)}


def _requested_checks(result) -> set[str]:
    """The checks requested with their assets: they have no condition of their own, so they appear in
    the requested subsets (Dagster adds a non-subsettable asset's checks), not in the results."""
    subsets = result._requested_subsets  # no public accessor for check keys in dagster 1.13
    return {s.key.name for s in subsets if isinstance(s.key, dg.AssetCheckKey) and s.size}


@pytest.mark.filterwarnings("ignore:Parameter `include_sources`")  # raised inside dagster's own tester
def test_downstream_assets_and_checks_follow_the_image_assets() -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(COMPOSITE_SPECS, ["all", "gender=female"])
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # nothing materialized: nothing can run

    _report(instance, *IMAGE_ASSET_NAMES, partitions=SHARD_KEYS)
    _report(instance, "reference_embeddings")  # no upstream: materialized once (empty without a reference set)
    after_images = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = _requested(after_images)
    downstream = {
        "embeddings_clip", "dataset_labels", "attribute_classifiers", "attributes", "attribute_flags",
        "embedding_clusters", "manual_labels", "attractiveness_regressor", "attractiveness_scores", "master_metadata",
        "model_bundle",
    }
    assert downstream <= requested and not requested & set(IMAGE_ASSET_NAMES)
    assert "composite" not in requested  # partitioned differently: waits until the master table has run
    checks = _requested_checks(after_images)
    assert {"embeddings_finite_and_normalised", "every_face_embedded",
            "predictions_cover_embeddings", "classifier_accuracy_floor", "master_one_row_per_face"} <= checks
    graph = defs.resolve_asset_graph()  # a check runs in its asset's step: never requested apart from it
    assert checks == {key.name for key in graph.asset_check_keys if key.asset_key.to_user_string() in requested}

    handled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_images.cursor)
    assert handled.total_requested == 0  # requested once per update

    _report(instance, *downstream)  # the automated run succeeded: the composites follow the master table
    composites = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=handled.cursor)
    assert composites.get_requested_partitions(dg.AssetKey("composite")) == {"all", "gender=female"}
    assert _requested_checks(composites) == {"composite_json_matches_image"}
    assert "embeddings_clip" not in _requested(composites)

    # no ratings configured: attractiveness_scores never appears, the master table still follows
    _report(instance, "embeddings_clip", "attribute_classifiers", "attributes", "attribute_flags",
            "embedding_clusters", "manual_labels")
    later = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=composites.cursor)
    assert "master_metadata" in _requested(later)
    # a composite spec that keeps failing does not block the contact sheet
    _report(instance, "composite", partitions=["all"])
    sheet = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=later.cursor)
    assert "contact_sheet" in _requested(sheet)


def test_progress_logger_reports_rate_at_a_bounded_rate() -> None:
    from facestats_dagster.progress import progress_logger

    class Log:
        lines: list[str] = []

        def info(self, message: str) -> None:
            self.lines.append(message)

    context = type("Context", (), {"log": Log()})()
    quiet = progress_logger(context, "detect shard 00", every_seconds=3600)
    for done in range(1, 1001):
        quiet(done, 1000)
    assert len(context.log.lines) == 1
    assert context.log.lines[0].startswith("detect shard 00: 1000/1000 images, ")
    assert context.log.lines[0].endswith(" images/s")
    chatty = progress_logger(context, "chips of shard 00", every_seconds=0)
    chatty(1, 3)
    assert context.log.lines[-1].startswith("chips of shard 00: 1/3 images")


def test_progress_reaches_a_display_in_the_same_process() -> None:
    from facestats_dagster import run_events
    from facestats_dagster.progress import progress_logger

    seen: list[tuple[str, object]] = []
    context = type("Context", (), {"log": type("Log", (), {"info": lambda self, m: None})(),
                                   "asset_key": __import__("dagster").AssetKey("face_chips")})()
    sink = lambda kind, payload: seen.append((kind, payload))  # noqa: E731
    run_events.add_sink(sink)
    try:
        progress_logger(context, "chips of shard 00", every_seconds=3600)(2, 5)
    finally:
        run_events.remove_sink(sink)
    progress_logger(context, "chips of shard 00")(3, 5)  # no display: nothing sent
    assert seen == [("progress", ("face_chips", "chips of shard 00", 2, 5))]


@pytest.mark.parametrize("name", ["embeddings_finite_and_normalised", "composite_json_matches_image"])
def test_checks_are_registered(name) -> None:
    keys = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert name in keys
