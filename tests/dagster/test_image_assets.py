from __future__ import annotations

import dagster as dg
import numpy as np
import polars as pl

from facestats_core.embedding.torch_tower import TorchTower
from facestats_core.io.layout import Layout
from facestats_dagster.partitions import ALL_SHARDS_RANGE, SHARD_KEYS
from facestats_dagster.resources import _load_cached
from facestats_demo.edge_cases import EXPECTED
from tests.conftest import write_photos

IMAGE_SELECTION = ["raw_images", "face_detections", "face_chips", "embedding_shards"]


def _materialize_images(all_assets, resources, instance, **partition):
    result = dg.materialize(all_assets, resources=resources, selection=IMAGE_SELECTION, instance=instance, **partition)
    assert result.success
    return result


def _materialize_all(all_assets, resources, instance):
    first, last = ALL_SHARDS_RANGE.split("...")
    _materialize_images(
        all_assets, resources, instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
    result = dg.materialize(all_assets, resources=resources, selection="embeddings_clip", instance=instance)
    assert result.success
    return result


def test_pipeline_writes_embeddings_for_every_readable_image(all_assets, resources, raw_folder) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize_all(all_assets, resources, instance)
    layout = Layout.from_roots(raw_folder.parent, "models")
    raw = layout.read_partitions("raw_images")
    table = pl.read_parquet(layout.artifact("embeddings_clip"))
    n_readable = 12 + sum(reason is None for reason in EXPECTED.values())
    assert raw.height == 12 + len(EXPECTED)
    assert table.height == n_readable
    assert table["image_id"].n_unique() == table["face_id"].n_unique() == table.height  # whole-image faces
    detections = layout.read_partitions("face_detections")
    assert detections["image_id"].n_unique() == detections.height == raw.height  # one row per image
    faceless = detections.filter(pl.col("face_id").is_null())
    assert faceless.height == raw.height - n_readable and set(faceless["reason"]) <= {"unreadable"}
    assert set(table["face_id"]) == set(detections["face_id"].drop_nulls())
    vectors = np.stack(table["embedding"].to_list())
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    metadata = result.asset_materializations_for_node("embeddings_clip")[0].metadata
    assert metadata["images"].value == metadata["faces"].value == n_readable
    assert sorted(p.stem for p in layout.artifact_dir("embedding_shards").glob("*.parquet")) == SHARD_KEYS
    assert _load_cached.cache_info().currsize == 0  # the embedding step released its CLIP for the later steps


def test_clip_release_forgets_the_loaded_model(resources) -> None:
    clip = resources["clip"]
    first = clip.load()
    assert clip.load() is first  # one load per step however often it asks
    clip.release()
    assert _load_cached.cache_info().currsize == 0
    second = clip.load()
    assert second is not first and second.model_id == first.model_id
    clip.release()


def test_single_shard_run_only_touches_its_shard(all_assets, resources, raw_folder) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize_images(all_assets, resources, instance, partition_key=SHARD_KEYS[1])
    layout = Layout.from_roots(raw_folder.parent, "models")
    assert [p.stem for p in layout.artifact_dir("raw_images").glob("*.parquet")] == [SHARD_KEYS[1]]
    raw = layout.read_partitions("raw_images")
    assert raw["shard"].unique().to_list() in ([SHARD_KEYS[1]], [])
    meta = result.asset_materializations_for_node("raw_images")[0].metadata
    assert meta["images"].value == raw.height


def test_adding_images_embeds_only_the_new_ones(all_assets, resources, raw_folder, monkeypatch) -> None:
    calls: list[int] = []
    original = TorchTower.embed
    monkeypatch.setattr(TorchTower, "embed", lambda tower, x: calls.append(len(x)) or original(tower, x))
    instance = dg.DagsterInstance.ephemeral()
    _materialize_all(all_assets, resources, instance)
    first_images = sum(calls)
    assert first_images == 12 + sum(reason is None for reason in EXPECTED.values())

    write_photos(raw_folder / "new_batch", 3, seed=123)
    calls.clear()
    result = _materialize_all(all_assets, resources, instance)
    assert sum(calls) == 3
    table = pl.read_parquet(Layout.from_roots(raw_folder.parent, "models").artifact("embeddings_clip"))
    assert table.height == first_images + 3
    assert result.success


def test_unreadable_files_are_counted_by_reason_in_metadata(all_assets, resources) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _materialize_all(all_assets, resources, instance)
    # One single-run materialization covers every shard; each partition's event carries the run's totals.
    records = instance.fetch_materializations(dg.AssetKey("raw_images"), limit=10).records
    assert sorted(r.partition_key for r in records) == SHARD_KEYS
    metadata = records[0].asset_materialization.metadata
    assert metadata["unreadable"].value == sum(reason is not None for reason in EXPECTED.values())
    table = metadata["unreadable_by_reason"].value
    for reason in {r for r in EXPECTED.values() if r}:
        assert f"| {reason} |" in table


def test_missing_raw_folder_fails_with_a_clear_message(all_assets, resources, raw_folder) -> None:
    import shutil

    shutil.rmtree(raw_folder)
    result = dg.materialize(
        all_assets, resources=resources, selection="raw_images", partition_key=SHARD_KEYS[0], raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "does not exist" in failure.message and "facestats demo-data" in failure.message
