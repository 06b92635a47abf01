"""Checkpoint parts of an embedding run: reuse, key mismatch, corrupt parts, clean-up."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from upath import UPath

from facestats_core.embedding.checkpoint import (
    Checkpoint,
    checkpoint_key,
    chunk_size,
    clear_parts,
    read_parts,
    write_part,
)
from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.loader import load_clip
from facestats_core.embedding.table import embed_manifest, embedding_schema
from tests.conftest import write_photos
from tests.core.embedding.towers import recording


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir: Path):
    return load_clip(ClipConfig(model=str(tiny_clip_dir)))


def _manifest(paths: list[Path]) -> pl.DataFrame:
    n = len(paths)
    return pl.DataFrame(
        {"face_id": [f"f{i:03d}" for i in range(n)], "image_id": [f"i{i:03d}" for i in range(n)],
         "path": [p.name for p in paths], "ok": [True] * n, "chip_version": ["v"] * n,
         "source_key": ["k"] * n, "chip_path": [p.name for p in paths]}
    )


def test_chunks_are_whole_batches() -> None:
    assert chunk_size(256, 32) == 256 and chunk_size(10, 4) == 12 and chunk_size(1, 8) == 8
    with pytest.raises(ValueError):
        Checkpoint("x", chunk_faces=0)


def test_parts_are_written_per_chunk_and_resume_a_run(tiny_clip, tmp_path) -> None:
    manifest = _manifest(write_photos(tmp_path / "img", 10))
    parts = tmp_path / "parts"
    plain, _, _ = embed_manifest(manifest, tiny_clip, 2, tmp_path / "img")
    clip, calls = recording(tiny_clip)
    table, stats, _ = embed_manifest(manifest, clip, 2, tmp_path / "img", checkpoint=Checkpoint(parts, 3))
    assert sum(calls) == 10 and calls == [2] * 5  # chunks of 4 faces (3 rounded up to batches): same batches
    assert len(list(parts.glob("part-*.parquet"))) == 3  # 4 + 4 + 2 faces
    assert table["face_id"].to_list() == plain["face_id"].to_list()
    np.testing.assert_allclose(table["embedding"].to_numpy(), plain["embedding"].to_numpy(), atol=1e-6)

    calls.clear()
    again, stats, _ = embed_manifest(manifest, clip, 2, tmp_path / "img", checkpoint=Checkpoint(parts, 3))
    assert sum(calls) == 0 and (stats.resumed, stats.embedded, stats.reused) == (10, 0, 0)
    assert again.equals(table)

    # the previous table wins over the parts: its faces count as reused, not resumed
    _, stats, _ = embed_manifest(manifest, tiny_clip, 2, tmp_path / "img", previous=table[:4],
                                 checkpoint=Checkpoint(parts, 3))
    assert (stats.reused, stats.resumed, stats.embedded) == (4, 6, 0)
    assert clear_parts(parts) == 3 and not parts.exists()


def test_key_mismatch_and_recut_chips_are_not_reused(tiny_clip, tmp_path) -> None:
    manifest = _manifest(write_photos(tmp_path / "img", 4))
    parts = tmp_path / "parts"
    embed_manifest(manifest, tiny_clip, 2, tmp_path / "img", checkpoint=Checkpoint(parts, 2))
    schema = embedding_schema(tiny_clip.dim)
    model = (tiny_clip.model_id, tiny_clip.revision, tiny_clip.recorded_precision)
    other_precision = "fp32" if tiny_clip.recorded_precision == "bf16" else "bf16"  # auto: bf16 where the CPU has it
    other = checkpoint_key(tiny_clip.model_id, tiny_clip.revision, other_precision, tiny_clip.dim)
    read = read_parts(parts, other, schema, (tiny_clip.model_id, tiny_clip.revision, other_precision))
    assert read.rows.height == 0 and len(read.skipped) == 2
    assert all("another model" in reason for reason in read.skipped)

    key = checkpoint_key(*model, tiny_clip.dim)
    assert read_parts(parts, key, schema, model).rows.height == 4
    clip, calls = recording(tiny_clip)
    recut = manifest.with_columns(pl.when(pl.col("face_id") == "f001").then(pl.lit("k2"))
                                  .otherwise(pl.col("source_key")).alias("source_key"))
    _, stats, _ = embed_manifest(recut, clip, 2, tmp_path / "img", checkpoint=Checkpoint(parts, 2))
    assert (stats.resumed, stats.embedded, sum(calls)) == (3, 1, 1)  # the chip cut again is embedded again

    # a part whose name carries the key but whose rows were made by another model is not used either
    rows = read_parts(parts, key, schema, model).rows.with_columns(pl.lit(other_precision).alias("precision"))
    clear_parts(parts)
    write_part(parts, key, "forged", 0, rows)
    read = read_parts(parts, key, schema, model)
    assert read.rows.height == 0 and "rows of other models" in read.skipped[0]


def test_corrupt_and_truncated_parts_are_skipped_with_a_reason(tiny_clip, tmp_path) -> None:
    manifest = _manifest(write_photos(tmp_path / "img", 6))
    parts = tmp_path / "parts"
    embed_manifest(manifest, tiny_clip, 2, tmp_path / "img", checkpoint=Checkpoint(parts, 2))
    files = sorted(parts.glob("part-*.parquet"))
    assert len(files) == 3
    files[0].write_bytes(files[0].read_bytes()[: len(files[0].read_bytes()) // 2])  # truncated
    files[1].write_bytes(b"PAR1 garbage")  # not a parquet file
    (parts / ".part-x.parquet.abc.tmp").write_bytes(b"half a write")  # a killed atomic write's temp file
    clip, calls = recording(tiny_clip)
    table, stats, _ = embed_manifest(manifest, clip, 2, tmp_path / "img", checkpoint=Checkpoint(parts, 2))
    assert (stats.resumed, stats.embedded, sum(calls)) == (2, 4, 4)
    assert len(stats.checkpoint_skipped) == 2 and all("unreadable" in r for r in stats.checkpoint_skipped)
    assert table.height == 6
    # a part with a vector that is not unit norm (flipped bits in a readable file) is skipped too
    schema = embedding_schema(tiny_clip.dim)
    model = (tiny_clip.model_id, tiny_clip.revision, tiny_clip.recorded_precision)
    key = checkpoint_key(*model, tiny_clip.dim)
    clear_parts(parts)
    bad = table[:2].with_columns((pl.col("embedding").arr.to_list().list.eval(pl.element() * 2))
                                 .list.to_array(tiny_clip.dim).alias("embedding"))
    write_part(parts, key, "bad", 0, bad)
    read = read_parts(parts, key, schema, model)
    assert read.rows.height == 0 and "unit-norm" in read.skipped[0]


def test_parts_on_an_fsspec_url(tiny_clip, tmp_path) -> None:
    manifest = _manifest(write_photos(tmp_path / "img", 5))
    parts = UPath(f"memory://facestats-{uuid.uuid4().hex}/processed/checkpoints/embedding_shards/00")
    first, _, _ = embed_manifest(manifest, tiny_clip, 2, tmp_path / "img", checkpoint=Checkpoint(parts, 2))
    assert len(list(parts.glob("part-*.parquet"))) == 3
    again, stats, _ = embed_manifest(manifest, tiny_clip, 2, tmp_path / "img", checkpoint=Checkpoint(parts, 2))
    assert stats.resumed == 5 and again.equals(first)
    assert clear_parts(parts) == 3 and not list(parts.glob("part-*.parquet"))


@pytest.mark.e2e
def test_a_killed_run_resumes_and_re_embeds_at_most_one_chunk(tiny_clip, tiny_clip_dir, tmp_path) -> None:
    """SIGKILL a slow embedding subprocess once its first part is written and one more batch is done (mid
    chunk), then finish in process."""
    import os
    import signal
    import subprocess
    import sys
    import time

    total, batch, chunk = 60, 4, 8
    manifest = _manifest(write_photos(tmp_path / "img", total))
    manifest.write_parquet(tmp_path / "manifest.parquet")
    plain, _, _ = embed_manifest(manifest, tiny_clip, batch, tmp_path / "img")
    parts, log = tmp_path / "parts", tmp_path / "forwarded.log"
    root = Path(__file__).resolve().parents[3]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.core.embedding.checkpoint_worker", str(tiny_clip_dir), str(tmp_path / "img"),
         str(tmp_path / "manifest.parquet"), str(parts), str(chunk), str(batch), "0.2", str(log)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"},
    )
    def forwarded() -> int:
        return sum(int(line) for line in log.read_text().split()) if log.exists() else 0

    deadline = time.monotonic() + 120
    while worker.poll() is None and time.monotonic() < deadline and not (
        list(parts.glob("part-*.parquet")) and forwarded() >= chunk + batch
    ):
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(30) == -signal.SIGKILL  # killed, not finished
    first_run = forwarded()
    model = (tiny_clip.model_id, tiny_clip.revision, tiny_clip.recorded_precision)
    in_parts = read_parts(parts, checkpoint_key(*model, tiny_clip.dim), embedding_schema(tiny_clip.dim), model)
    saved = in_parts.rows.height
    assert 0 < saved < total and not in_parts.skipped

    clip, calls = recording(tiny_clip)
    table, stats, _ = embed_manifest(manifest, clip, batch, tmp_path / "img", checkpoint=Checkpoint(parts, chunk))
    re_embedded = first_run - saved  # embedded by the killed run but not in a part: done twice
    print(f"total {total}, chunk {chunk}, killed run embedded {first_run}, in parts {saved}, "
          f"second run embedded {sum(calls)}, re-embedded {re_embedded}")
    assert stats.resumed == saved and stats.embedded == sum(calls) <= total - saved
    assert 0 <= re_embedded <= chunk
    assert table["face_id"].to_list() == plain["face_id"].to_list()
    np.testing.assert_allclose(table["embedding"].to_numpy(), plain["embedding"].to_numpy(), atol=1e-6)


def test_clearing_a_partition_prunes_only_empty_parent_folders(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    for shard in ("01", "02"):
        (root / "embedding_shards" / shard).mkdir(parents=True)
        (root / "embedding_shards" / shard / "part-x.parquet").write_bytes(b"x")
    assert clear_parts(root / "embedding_shards" / "01", prune=2) == 1
    assert not (root / "embedding_shards" / "01").exists() and (root / "embedding_shards" / "02").exists()
    assert clear_parts(root / "embedding_shards" / "02", prune=2) == 1
    assert not root.exists() and tmp_path.exists()  # prune stops at its count: the data root stays
