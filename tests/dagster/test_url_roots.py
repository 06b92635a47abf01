"""Data roots may be fsspec URLs: the image assets run on an in-memory filesystem."""

from __future__ import annotations

import io
import uuid

import dagster as dg
import numpy as np
import polars as pl
from PIL import Image
from upath import UPath

from facestats_dagster.definitions import defs
from facestats_dagster.partitions import ALL_SHARDS_RANGE, SHARD_KEYS
from facestats_dagster.resources import ClipResource
from tests.dagster.resources import make_resources


def test_image_assets_on_a_memory_url(tiny_clip_dir) -> None:
    root = UPath(f"memory://facestats-{uuid.uuid4().hex}/data")
    rng = np.random.default_rng(0)
    for index in range(6):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(buffer, format="JPEG")
        target = root / "raw" / "batch" / f"{index}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(buffer.getvalue())
    (root / "raw" / "batch" / "broken.jpg").write_bytes(b"not a jpeg")
    resources = make_resources(root, root.parent / "models", clip=ClipResource(model=str(tiny_clip_dir)))
    first, last = ALL_SHARDS_RANGE.split("...")
    result = dg.materialize(
        list(defs.assets), resources=resources,
        selection=["raw_images", "face_detections", "face_chips", "embedding_shards"],
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
    assert result.success
    assert dg.materialize(list(defs.assets), resources=resources, selection=["embeddings_clip"]).success
    with (root / "processed" / "embeddings" / "embeddings_clip.parquet").open("rb") as fh:
        table = pl.read_parquet(fh)
    assert table.height == 6 and table["face_id"].n_unique() == 6  # whole-image faces: one per readable image
    layout = resources["paths"].layout()
    assert not any(layout.checkpoint_dir("embedding_shards", s).exists() for s in SHARD_KEYS)  # parts removed
    detections = layout.read_partitions("face_detections")
    assert detections.filter(pl.col("face_id").is_null())["reason"].to_list() == ["unreadable"]
    chips = layout.read_partitions("face_chips")
    assert chips.height == 6 and chips["ok"].all()
    chip_files = [p for p in (root / "processed" / "chips").rglob("*.jpg")]
    assert {p.stem for p in chip_files} == set(table["face_id"].to_list())
