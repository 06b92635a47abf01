"""Checkpoint parts of an embedding run: finished faces persisted while a shard is being embedded.

:func:`facestats_core.embedding.table.embed_manifest` given a :class:`Checkpoint` embeds the faces in
chunks of ``chunk_faces`` and writes each finished chunk as one part file
``<directory>/part-<key>-<run>-<n>.parquet`` (the embedding table's columns, written atomically:
a temporary file renamed over the target locally, one upload on object stores). A run that is
killed loses at most the chunk it was embedding; the next run reads the parts back and reuses their
faces like rows of the previous table. ``key`` (:func:`checkpoint_key`) names the model id, weights
revision, precision and dimension, so parts of another model are never read; the chip version and
source key are per row and are matched face by face by ``embed_manifest``. A part that cannot be
read or does not hold what its name promises (schema, model columns, unit-norm finite vectors) is
skipped with a reason, never raised. The caller removes the folder with :func:`clear_parts` once
the shard's artifact is written.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from facestats_core.analysis.integrity import embedding_health
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import read_parquet, to_upath

DEFAULT_CHUNK_FACES = 256
"""Faces per part: ~12 s of ViT-B/32 fp32 on 2 CPU cores (docs/performance.md), ~0.5 MiB per part."""

@dataclass(frozen=True)
class Checkpoint:
    """Where a shard's parts live (a ``Path`` or UPath) and how many faces go in one part (rounded
    up to whole batches by ``embed_manifest``)."""

    directory: Any
    chunk_faces: int = DEFAULT_CHUNK_FACES

    def __post_init__(self) -> None:
        if self.chunk_faces < 1:
            raise ValueError(f"chunk_faces must be >= 1, got {self.chunk_faces}")


@dataclass(frozen=True)
class Parts:
    """The rows of the readable parts of one key, the files they came from, and why others were skipped."""

    rows: pl.DataFrame
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def checkpoint_key(model_id: str, revision: str, precision: str, dim: int) -> str:
    """16 hex of sha256 over the model id, weights revision, precision and embedding dimension."""
    payload = json.dumps([model_id, revision, precision, dim]).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def chunk_size(chunk_faces: int, batch_size: int) -> int:
    """``chunk_faces`` rounded up to whole batches, so a chunked run forms the same batches as one pass."""
    return max(1, -(-chunk_faces // batch_size)) * batch_size


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def part_path(directory: Any, key: str, run_id: str, index: int) -> Any:
    return to_upath(directory) / f"part-{key}-{run_id}-{index:05d}.parquet"


def write_part(directory: Any, key: str, run_id: str, index: int, rows: pl.DataFrame) -> Any:
    """Write one finished chunk atomically; returns its path."""
    path = part_path(directory, key, run_id, index)
    atomic_write_parquet(path, rows)
    return path


def _part_files(directory: Any) -> list[Any]:
    folder = to_upath(directory)
    if not folder.exists():
        return []
    return sorted(folder.glob("part-*.parquet"), key=lambda p: p.name)


def _problem(rows: pl.DataFrame, schema: dict[str, Any], model: tuple[str, str, str]) -> str | None:
    """Why ``rows`` cannot be reused, or None."""
    if rows.schema != pl.Schema(schema):
        return f"columns {dict(rows.schema)} are not the embedding schema"
    if rows["face_id"].null_count() or rows["embedding"].null_count():
        return "null face ids or embeddings"
    models = rows.select("model_id", "model_revision", "precision").unique().rows()
    if any(row != model for row in models):
        return f"rows of other models {models}, expected {model}"
    health = embedding_health(rows)  # the check `embeddings_clip` runs on the final table
    if health["non_finite_ids"] or health["bad_norm_ids"]:
        return "non-finite or not unit-norm embeddings"
    return None


def read_parts(directory: Any, key: str, schema: dict[str, Any], model: tuple[str, str, str]) -> Parts:
    """Every valid part of ``key`` under ``directory``: rows in ``schema`` whose model columns are
    ``model`` = (model_id, revision, precision). Parts of other keys and unreadable or inconsistent
    parts are skipped with a reason."""
    frames: list[pl.DataFrame] = []
    files: list[str] = []
    skipped: list[str] = []
    for path in _part_files(directory):
        if not path.name.startswith(f"part-{key}-"):
            skipped.append(f"{path.name}: written for another model, revision, precision or dimension")
            continue
        try:
            rows = read_parquet(path)
        except Exception as exc:  # polars raises ComputeError, OSError, … on truncated or corrupt files
            skipped.append(f"{path.name}: unreadable ({type(exc).__name__}: {exc})")
            continue
        problem = _problem(rows, schema, model)
        if problem:
            skipped.append(f"{path.name}: {problem}")
            continue
        frames.append(rows)
        files.append(path.name)
    rows = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return Parts(rows.unique("face_id", keep="first", maintain_order=True), files, skipped)


def clear_parts(directory: Any, prune: int = 0) -> int:
    """Remove every file under ``directory`` (parts and leftover temporary files) and the folder,
    then up to ``prune`` of its parent folders that are left empty (``checkpoints/<asset>/``);
    returns the number of files removed. A missing folder is nothing to do."""
    folder = to_upath(directory)
    if not folder.exists():
        return 0
    removed = 0
    for path in list(folder.iterdir()):
        if path.is_file():
            path.unlink()
            removed += 1
    for _ in range(prune + 1):
        try:
            folder.rmdir()
        except OSError:  # not empty (another partition's parts), or an object store without folders
            break
        folder = folder.parent
    return removed
