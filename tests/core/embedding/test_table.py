"""embed_manifest: the embedding table, one row per ok face, reusing rows of the same model and chip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.loader import load_clip
from facestats_core.embedding.table import embed_manifest, embedding_schema
from tests.conftest import write_photos
from tests.core.embedding.towers import recording


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir: Path):
    return load_clip(ClipConfig(model=str(tiny_clip_dir), precision="fp32"))


def test_manifest_embedding_reuses_previous_rows(tiny_clip, tmp_path) -> None:
    paths = write_photos(tmp_path, 5)
    manifest = pl.DataFrame(
        {
            "face_id": [f"id{i}_500_500" for i in range(5)],
            "image_id": [f"id{i}" for i in range(5)],
            "path": [p.name for p in paths],
            "ok": [True, True, True, True, False],
            "chip_version": ["v"] * 5,
            "source_key": ["k"] * 5,
            "chip_path": [p.name for p in paths],
        }
    )
    clip, calls = recording(tiny_clip)
    first, stats, failures = embed_manifest(manifest[:3], clip, 8, tmp_path)
    assert stats.embedded == 3 and sum(calls) == 3 and not failures
    assert first.schema == pl.Schema(embedding_schema(16))
    assert first["model_id"].to_list() == [tiny_clip.model_id] * 3
    assert set(first["model_revision"]) == {tiny_clip.revision} and set(first["precision"]) == {"fp32"}
    second, stats, _ = embed_manifest(manifest, clip, 8, tmp_path, previous=first)
    assert sum(calls) == 4  # only the one new ok image reached the model
    assert stats.reused == 3 and stats.embedded == 1
    assert second["image_id"].to_list() == ["id0", "id1", "id2", "id3"]
    assert second["face_id"].to_list() == [f"id{i}_500_500" for i in range(4)]
    assert second.schema["embedding"] == pl.Array(pl.Float32, 16)
    np.testing.assert_array_equal(
        np.stack(second["embedding"].to_list()[:3]), np.stack(first["embedding"].to_list())
    )
    recut = manifest.with_columns(pl.when(pl.col("face_id") == "id1_500_500").then(pl.lit("k2"))
                                  .otherwise(pl.col("source_key")).alias("source_key"))
    _, stats, _ = embed_manifest(recut, clip, 8, tmp_path, previous=second)
    assert (stats.reused, stats.embedded) == (3, 1)  # the chip cut again from a changed box: embedded again


def test_other_weights_under_the_same_name_are_not_reused(tmp_path) -> None:
    from facestats_demo.random_clip import build_random_clip

    paths = write_photos(tmp_path / "img", 3)
    manifest = pl.DataFrame(
        {"face_id": ["a_1", "b_1", "c_1"], "image_id": ["a", "b", "c"], "path": [p.name for p in paths],
         "ok": [True] * 3, "chip_version": ["v"] * 3, "source_key": ["k"] * 3, "chip_path": [p.name for p in paths]}
    )
    model_dir = tmp_path / "clip"
    build_random_clip(model_dir, preset="tiny", seed=0)
    first, _, _ = embed_manifest(manifest, load_clip(ClipConfig(model=str(model_dir))), 4, tmp_path / "img")
    build_random_clip(model_dir, preset="tiny", seed=1)  # retrained / replaced weights, same folder
    second, stats, _ = embed_manifest(
        manifest, load_clip(ClipConfig(model=str(model_dir))), 4, tmp_path / "img", previous=first
    )
    assert stats.reused == 0 and stats.embedded == 3
    assert first["model_revision"][0] != second["model_revision"][0]
    assert first["model_revision"][0].startswith("sha256:")
