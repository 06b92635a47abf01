"""A reference set from its folder to embeddings: checkpointed like a shard, so a killed run resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facestats_core.embedding.checkpoint import Checkpoint, clear_parts
from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.loader import load_clip
from facestats_core.embedding.vectors import embedding_matrix
from facestats_core.faces.chips import ChipConfig
from facestats_core.faces.face_table import DetectionConfig
from facestats_core.io.layout import Layout
from facestats_core.references.embed_set import embed_face_set
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from tests.core.embedding.towers import recording


class Killed(RuntimeError):
    pass


def _embed(layout: Layout, clip, checkpoint: Checkpoint | None):
    return embed_face_set(layout, None, DetectionConfig(face_mode="whole"), ChipConfig(), clip, 2,
                          checkpoint=checkpoint)


def test_a_killed_reference_run_resumes_from_its_parts(tmp_path: Path, tiny_clip_dir: Path) -> None:
    generate_demo_dataset(tmp_path / "ref", DemoSpec(n_images=8, size=64, seed=3))
    layout = Layout.from_roots(tmp_path / "ref", tmp_path / "models")
    clip = load_clip(ClipConfig(model=str(tiny_clip_dir)))
    plain = _embed(Layout.from_roots(tmp_path / "ref", tmp_path / "models"), clip, None).embeddings
    for name in ("raw", "detections", "chips"):  # start over: nothing cached but the chips on disk
        (layout.processed_dir / "manifests" / f"reference_{name}.parquet").unlink()

    parts = layout.checkpoint_dir("reference_embeddings")

    def dies_on_the_third_batch(_features) -> None:
        if len(calls) == 3:
            raise Killed("killed mid-run")

    dying, calls = recording(clip, after=dies_on_the_third_batch)
    with pytest.raises(Killed):
        _embed(layout, dying, Checkpoint(parts, chunk_faces=2))
    assert len(list(parts.glob("part-*.parquet"))) == 2  # the two finished chunks of 2 faces

    resumed = _embed(layout, clip, Checkpoint(parts, chunk_faces=2))
    assert (resumed.resumed, resumed.embedded) == (4, 4) and not resumed.checkpoint_skipped
    assert resumed.embeddings.sort("face_id")["face_id"].to_list() == plain.sort("face_id")["face_id"].to_list()
    # the vectors too: the four read back from the parts and the four embedded after the kill are the
    # uninterrupted run's (same model, same batches of 2), bit for bit
    np.testing.assert_array_equal(embedding_matrix(resumed.embeddings.sort("face_id")),
                                  embedding_matrix(plain.sort("face_id")))
    clear_parts(parts, prune=2)
    assert not (layout.processed_dir / "checkpoints").exists()
