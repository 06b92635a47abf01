"""`image_shards`: the image-level assets as a job partitioned by shard, executor chosen by environment."""

from __future__ import annotations

import sys

import dagster as dg
import pytest

from facestats_dagster.defs.scaleout import (
    SHARD_ASSETS,
    SHARD_JOB_NAME,
    library_version,
    shard_executor,
    shard_run_config,
)
from facestats_dagster.partitions import SHARD_KEYS


def test_image_shards_is_the_image_assets_partitioned_by_shard() -> None:
    from facestats_dagster.definitions import defs

    job = defs.resolve_job_def(SHARD_JOB_NAME)
    assert SHARD_ASSETS == ("raw_images", "face_detections", "face_chips", "embedding_shards")
    assert sorted(node.name for node in job.graph.nodes) == sorted(SHARD_ASSETS)  # the assets' own steps
    assert job.partitions_def is not None and job.partitions_def.get_partition_keys() == SHARD_KEYS
    assert job.executor_def is dg.multiprocess_executor


def test_shard_run_config_comes_from_the_named_yaml(tmp_path) -> None:
    assert shard_run_config("") is None
    config = tmp_path / "celery.yaml"
    config.write_text("execution:\n  config:\n    broker: 'filesystem://'\n")
    assert shard_run_config(str(config)) == {"execution": {"config": {"broker": "filesystem://"}}}
    with pytest.raises(ValueError, match="cannot read"):
        shard_run_config(str(tmp_path / "missing.yaml"))
    config.write_text("- not a mapping\n")
    with pytest.raises(ValueError, match="mapping"):
        shard_run_config(str(config))


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


def test_one_shard_partition_run_writes_that_shard_through_the_io_manager(resources, raw_folder, all_assets) -> None:
    """A run of `image_shards` for one partition (what a backfill launches per shard): the IO manager
    writes that shard's file of every image asset and clears its checkpoint parts; no other shard."""
    import polars as pl

    from facestats_core.io.layout import Layout
    from facestats_dagster.defs.automation import IMAGE_ASSET_KEYS

    assets = [asset for asset in all_assets if asset.key in IMAGE_ASSET_KEYS]
    layout = Layout.from_roots(raw_folder.parent, "models")
    for shard in SHARD_KEYS[:2]:
        result = dg.materialize(assets, partition_key=shard, resources=resources)
        assert result.success
        materialized = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()
                        for e in [e.event_specific_data.materialization]}
        assert materialized == {(name, shard) for name in SHARD_ASSETS}
    shards = SHARD_KEYS[:2]
    for name in SHARD_ASSETS:
        assert sorted(p.stem for p in layout.artifact_dir(name).glob("*.parquet")) == shards, name
    assert not any(layout.checkpoint_dir("embedding_shards", s).exists() for s in shards)  # parts removed
    raw = layout.read_partitions("raw_images")
    detections = layout.read_partitions("face_detections")
    chips = layout.read_partitions("face_chips")
    embeddings = pl.concat([pl.read_parquet(layout.artifact_dir("embedding_shards") / f"{s}.parquet") for s in shards])
    assert set(detections["image_id"]) == set(raw["image_id"])  # every image of the shards, with or without a face
    assert embeddings.height > 0
    assert set(chips.filter(pl.col("ok"))["face_id"]) == set(embeddings["face_id"]) == set(
        detections["face_id"].drop_nulls())
