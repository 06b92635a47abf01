"""embedding_shards resumes from checkpoint parts, reports how many faces it resumed, and the parts are
removed once the shard is written."""

from __future__ import annotations

import dagster as dg
import polars as pl

from facestats_core.embedding.checkpoint import checkpoint_key, write_part
from facestats_core.embedding.torch_tower import TorchTower
from facestats_dagster.partitions import SHARD_KEYS

IMAGE_SELECTION = ["raw_images", "face_detections", "face_chips", "embedding_shards"]


def test_a_killed_shard_resumes_from_its_parts(all_assets, resources, raw_folder, monkeypatch) -> None:
    instance = dg.DagsterInstance.ephemeral()
    layout = resources["paths"].layout()
    shard = SHARD_KEYS[0]
    assert dg.materialize(all_assets, resources=resources, selection=IMAGE_SELECTION, instance=instance,
                          partition_key=shard).success
    parts = layout.checkpoint_dir("embedding_shards", shard)
    assert not parts.exists()  # the IO manager removed them after writing the shard
    stored = layout.artifact_dir("embedding_shards") / f"{shard}.parquet"
    table = pl.read_parquet(stored)
    assert table.height >= 2

    # what a run killed after its first part leaves behind: no shard file, one part with half the faces
    stored.unlink()
    clip = resources["clip"].load()
    key = checkpoint_key(clip.model_id, clip.revision, clip.recorded_precision, clip.dim)
    half = table.height // 2
    write_part(parts, key, "killed", 0, table[:half])
    calls: list[int] = []
    original = TorchTower.embed
    monkeypatch.setattr(TorchTower, "embed", lambda tower, x: calls.append(len(x)) or original(tower, x))
    result = dg.materialize(all_assets, resources=resources, selection=["embedding_shards"], instance=instance,
                            partition_key=shard)
    assert result.success
    metadata = result.asset_materializations_for_node("embedding_shards")[0].metadata
    assert metadata["resumed_from_checkpoint"].value == half
    assert metadata["embedded"].value == sum(calls) == table.height - half
    assert pl.read_parquet(stored)["face_id"].to_list() == table["face_id"].to_list()
    assert not parts.exists()
