"""The `image_shards` fan-out job: one independent step per shard, executor chosen by environment."""

from __future__ import annotations

import sys

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


def test_each_shard_op_runs_the_face_assets_with_their_resources() -> None:
    from facestats_dagster.defs.scaleout import SHARD_ASSETS, SHARD_RESOURCES

    assert SHARD_ASSETS == ("raw_images", "face_detections", "face_chips", "embedding_shards")
    job = build_shard_job(["00"])
    [op] = job.graph.node_defs
    assert op.required_resource_keys == set(SHARD_RESOURCES) == {"paths", "faces", "clip"}
    assert "face_detections" in (op.description or "") and "face_chips" in (op.description or "")


def test_executor_follows_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESTATS_SHARD_EXECUTOR", "multiprocess")
    assert shard_executor() is dg.multiprocess_executor
    with pytest.raises(ValueError, match="multiprocess, celery, k8s"):
        shard_executor("ray")


@pytest.mark.parametrize(("name", "module"), [("celery", "dagster_celery"), ("k8s", "dagster_k8s")])
def test_missing_executor_library_names_the_pin(name: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether or not the library is installed here: hidden from the import system, the error names
    the release to install."""
    monkeypatch.setitem(sys.modules, module, None)  # `import dagster_celery` now raises ImportError
    with pytest.raises(ImportError, match=f"dagster-{name}=={library_version()}"):
        shard_executor(name)


def test_celery_extra_gives_the_celery_executor() -> None:
    celery = pytest.importorskip("dagster_celery", reason="the `celery` extra is not installed")
    assert shard_executor("celery") is celery.celery_executor


def test_library_version_matches_core_release() -> None:
    assert library_version("1.13.28") == "0.29.28"
    assert library_version("1.9.5") == "0.25.5"


def test_shard_ops_write_every_image_asset_of_their_shard(resources, raw_folder) -> None:
    import polars as pl

    from facestats_core.io.layout import Layout
    from facestats_dagster.defs.scaleout import SHARD_ASSETS, SHARD_RESOURCES

    shards = SHARD_KEYS[:2]
    job = build_shard_job(shards, executor=dg.in_process_executor)
    result = job.execute_in_process(resources={key: resources[key] for key in SHARD_RESOURCES})
    assert result.success
    layout = Layout.from_roots(raw_folder.parent, "models")
    for name in SHARD_ASSETS:
        assert sorted(p.stem for p in layout.artifact_dir(name).glob("*.parquet")) == shards, name
    assert not any(layout.checkpoint_dir("embedding_shards", s).exists() for s in shards)  # parts removed
    materialized = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()
                    for e in [e.event_specific_data.materialization]}
    assert materialized == {(name, shard) for name in SHARD_ASSETS for shard in shards}
    raw = layout.read_partitions("raw_images")
    detections = layout.read_partitions("face_detections")
    chips = layout.read_partitions("face_chips")
    embeddings = pl.concat([pl.read_parquet(layout.artifact_dir("embedding_shards") / f"{s}.parquet") for s in shards])
    assert set(detections["image_id"]) == set(raw["image_id"])  # every image of the shards, with or without a face
    assert embeddings.height > 0
    assert set(chips.filter(pl.col("ok"))["face_id"]) == set(embeddings["face_id"]) == set(
        detections["face_id"].drop_nulls())
