"""The `image_shards` fan-out job: one independent step per shard, executor chosen by environment."""

from __future__ import annotations

import importlib.util

import dagster as dg
import pytest

from facestats_dagster.defs.scaleout import SHARD_JOB_NAME, build_shard_job, library_version, shard_executor
from facestats_dagster.partitions import SHARD_KEYS


def test_one_independent_op_per_shard() -> None:
    from facestats_dagster.definitions import defs

    job = defs.resolve_job_def(SHARD_JOB_NAME)
    assert sorted(node.name for node in job.graph.nodes) == [f"shard_{key}" for key in SHARD_KEYS]
    assert all(not node.definition.input_defs for node in job.graph.nodes)  # no op waits for another
    assert job.executor_def is dg.multiprocess_executor
    assert sorted(op.name for op in build_shard_job(["00", "01"]).graph.node_defs) == ["shard_00", "shard_01"]


def test_executor_follows_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESTATS_SHARD_EXECUTOR", "multiprocess")
    assert shard_executor() is dg.multiprocess_executor
    with pytest.raises(ValueError, match="multiprocess, celery, k8s"):
        shard_executor("ray")
    for name, module in (("celery", "dagster_celery"), ("k8s", "dagster_k8s")):
        if importlib.util.find_spec(module) is None:
            with pytest.raises(ImportError, match=f"dagster-{name}=={library_version()}"):
                shard_executor(name)


def test_library_version_matches_core_release() -> None:
    assert library_version("1.13.28") == "0.29.28"
    assert library_version("1.9.5") == "0.25.5"
