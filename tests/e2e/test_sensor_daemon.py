"""new_images_sensor evaluated by Dagster's own sensor daemon loop against the code location, as
`dagster dev` does: the RunRequest over the whole shard range becomes one queued run."""

from __future__ import annotations

import logging
import os
import time

import dagster as dg
import pytest

from tests.conftest import write_photos

pytestmark = pytest.mark.e2e


def test_sensor_daemon_queues_one_run_over_every_shard(tmp_path, monkeypatch) -> None:
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.sensor import execute_sensor_iteration

    raw = tmp_path / "data" / "raw"
    write_photos(raw / "batch", 3)
    old = time.time() - 3600
    for path in raw.rglob("*.jpg"):
        os.utime(path, (old, old))
    monkeypatch.setenv("FACESTATS_DATA_ROOT", str(tmp_path / "data"))  # read by the code server
    monkeypatch.setenv("FACESTATS_MODEL_ROOT", str(tmp_path / "models"))
    monkeypatch.setenv("FACESTATS_SHARDS", "4")
    monkeypatch.setenv("FACESTATS_COMPOSITES_CONFIG", str(tmp_path / "none.yaml"))

    with instance_for_test() as instance:  # queued run coordinator: the run is created, not executed
        target = ModuleTarget(
            module_name="facestats_dagster.definitions", attribute=None, working_directory=str(tmp_path),
            location_name="facestats",
        )
        with create_test_daemon_workspace_context(target, instance) as context:
            list(execute_sensor_iteration(context, logging.getLogger("test"), None, None))
            [run] = instance.get_runs()
            assert run.job_name == "image_assets_job"
            assert {key.to_user_string() for key in run.asset_selection} == {
                "raw_images", "face_detections", "face_chips", "embedding_shards"}
            assert run.tags["dagster/asset_partition_range_start"] == "00"
            assert run.tags["dagster/asset_partition_range_end"] == "03"
            assert run.tags["facestats/trigger"] == "new_images_sensor"
            assert run.status == dg.DagsterRunStatus.QUEUED
            state = next(s for s in instance.all_instigator_state() if s.name == "new_images_sensor")
            [tick] = instance.get_ticks(state.instigator_origin_id, state.selector_id)
            assert tick.status.value == "SUCCESS" and tick.run_keys[0].startswith("new-images-1-")
