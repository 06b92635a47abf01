"""embed_paths: image files to L2-normalised embeddings, in batches, failures reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.embed import embed_paths
from facestats_core.embedding.loader import load_clip
from tests.conftest import write_photos
from tests.core.embedding.towers import recording


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir: Path):
    return load_clip(ClipConfig(model=str(tiny_clip_dir), precision="fp32"))  # exact numbers: not `auto`


def test_embeddings_are_unit_norm_and_batch_invariant(tiny_clip, tmp_path) -> None:
    paths = write_photos(tmp_path, 7)
    one = embed_paths(tiny_clip, paths, batch_size=1)
    many = embed_paths(tiny_clip, paths, batch_size=4)
    assert one.embeddings.shape == (7, 16) and one.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(one.embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(one.embeddings, many.embeddings, atol=1e-5)
    assert one.ok_indices == list(range(7))


def test_unreadable_file_is_reported_not_raised(tiny_clip, tmp_path) -> None:
    paths = write_photos(tmp_path, 3)
    paths[1].write_bytes(b"not a jpeg")
    clip, calls = recording(tiny_clip)
    progress: list[tuple[int, int]] = []
    result = embed_paths(clip, paths, batch_size=2, progress=lambda done, total, _s: progress.append((done, total)))
    assert result.ok_indices == [0, 2]
    assert set(result.failures) == {1}
    assert result.embeddings.shape[0] == 2
    assert calls == [1, 1] and progress == [(2, 3), (3, 3)]  # the failed file reached no model, was counted done


def test_no_paths_give_an_empty_matrix(tiny_clip) -> None:
    result = embed_paths(tiny_clip, [], batch_size=4)
    assert result.embeddings.shape == (0, 16) and result.ok_indices == [] and not result.failures
