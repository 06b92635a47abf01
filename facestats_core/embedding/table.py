"""The embedding table: one row per face (its vector, the model, revision and precision that made it, and
the chip it came from), the reuse of rows of an earlier table, and the assembly of checkpoint parts.

:func:`embed_manifest` embeds only the faces the previous table (or checkpoint parts of a killed run)
does not already hold for the same model, weights revision, precision label and chip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from facestats_core.embedding.checkpoint import (
    Checkpoint,
    checkpoint_key,
    chunk_size,
    new_run_id,
    read_parts,
    write_part,
)
from facestats_core.embedding.embed import EmbedResult, embed_paths
from facestats_core.embedding.tower import LoadedClip


def embedding_schema(dim: int) -> dict[str, Any]:
    """The embedding table's columns: one row per face, its ``dim``-wide float32 vector and what made it."""
    return {
        "face_id": pl.String,
        "image_id": pl.String,
        "path": pl.String,
        "embedding": pl.Array(pl.Float32, dim),
        "model_id": pl.String,
        "model_revision": pl.String,
        "precision": pl.String,
        "chip_version": pl.String,
        "source_key": pl.String,
    }


@dataclass(frozen=True)
class EmbedStats:
    images: int
    embedded: int
    reused: int
    failed: int
    seconds: float
    model_seconds: float
    resumed: int = 0
    """Faces taken from checkpoint parts of an earlier, unfinished run (not counted in ``reused``)."""
    checkpoint_skipped: tuple[str, ...] = ()
    """Why checkpoint part files were not read (another model, unreadable, inconsistent)."""

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def _reusable(candidates: Any, ok_rows: Any, clip: LoadedClip, schema: dict[str, Any]) -> Any:
    """Rows of ``candidates`` embedded by ``clip`` (model, revision, precision) from the chip an ``ok`` row
    still names (same face id, chip version, source key), with that row's image id and path."""
    if candidates is None or not candidates.height or candidates.schema != pl.Schema(schema):
        return pl.DataFrame(schema=schema)
    return (
        candidates.filter(
            (pl.col("model_id") == clip.model_id)
            & (pl.col("model_revision") == clip.revision)
            & (pl.col("precision") == clip.recorded_precision)
        )
        .drop("path", "image_id")
        .join(ok_rows.select("face_id", "image_id", "chip_version", "source_key", "path"),
              on=["face_id", "chip_version", "source_key"])
        .unique("face_id", keep="first")
        .select(list(schema))
    )


def _embedded_rows(clip: LoadedClip, rows: Any, result: EmbedResult, schema: dict[str, Any]) -> Any:
    done = rows[result.ok_indices]
    return pl.DataFrame(
        {
            "face_id": done["face_id"],
            "image_id": done["image_id"],
            "path": done["path"],
            "embedding": pl.Series("embedding", result.embeddings, dtype=schema["embedding"]),
            "model_id": [clip.model_id] * done.height,
            "model_revision": [clip.revision] * done.height,
            "precision": [clip.recorded_precision] * done.height,
            "chip_version": done["chip_version"],
            "source_key": done["source_key"],
        },
        schema=schema,
    )


def embed_manifest(
    chips: Any,
    clip: LoadedClip,
    batch_size: int,
    chips_dir: Any,
    previous: Any = None,
    progress: Callable[[int, int, float], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> tuple[Any, EmbedStats, dict[str, str]]:
    """Embeddings of every ``ok`` face chip of a face-chips table (polars frames), one row per ``face_id``.

    ``chips_dir`` (Path or UPath) holds the chips named by ``chip_path``. Faces already
    embedded by the same model, weights revision, precision label and chip version in ``previous``
    are reused, so only new faces and faces whose chip was cut again (another ``source_key``) reach
    the model. Returns the table, stats and ``{face_id: reason}`` for failures.

    With a ``checkpoint`` (:mod:`facestats_core.embedding.checkpoint`) the faces are embedded in chunks
    of ``checkpoint.chunk_faces`` (whole batches) and each finished chunk is written as a part file;
    parts of an earlier, killed run are read first and their faces reused under the same rules
    (counted in ``stats.resumed``). The caller removes the parts once it has stored the table.
    """
    schema = embedding_schema(clip.dim)
    ok_rows = chips.filter(pl.col("ok"))
    reuse = _reusable(previous, ok_rows, clip, schema)
    resumed = pl.DataFrame(schema=schema)
    skipped: list[str] = []
    if checkpoint is not None:
        model = (clip.model_id, clip.revision, clip.recorded_precision)  # what the rows record
        key = checkpoint_key(*model, clip.dim)
        parts = read_parts(checkpoint.directory, key, schema, model)
        skipped = parts.skipped
        resumed = _reusable(parts.rows, ok_rows, clip, schema).join(reuse.select("face_id"), on="face_id", how="anti")
    todo = ok_rows.join(pl.concat([reuse, resumed]).select("face_id"), on="face_id", how="anti")
    paths = [chips_dir / name for name in todo["chip_path"].to_list()]
    chunk = chunk_size(checkpoint.chunk_faces, batch_size) if checkpoint is not None else max(1, len(paths))
    run_id = new_run_id()
    started = time.perf_counter()
    fresh: list[Any] = []
    failures: dict[str, str] = {}
    seconds = model_seconds = 0.0
    for start in range(0, len(paths), chunk):
        rows = todo[start : start + chunk]
        step = None if progress is None else (
            lambda done, _total, _s, offset=start: progress(offset + done, len(paths), time.perf_counter() - started)
        )
        result = embed_paths(clip, paths[start : start + chunk], batch_size=batch_size, progress=step)
        seconds, model_seconds = seconds + result.seconds, model_seconds + result.model_seconds
        fresh.append(_embedded_rows(clip, rows, result, schema))
        failures.update({rows["face_id"][i]: reason for i, reason in result.failures.items()})
        if checkpoint is not None and fresh[-1].height:
            write_part(checkpoint.directory, key, run_id, start // chunk, fresh[-1])
    table = pl.concat([reuse, resumed, *fresh]).sort("face_id")
    stats = EmbedStats(
        images=table.height,
        embedded=sum(frame.height for frame in fresh),
        reused=reuse.height,
        failed=len(failures),
        seconds=seconds,
        model_seconds=model_seconds,
        resumed=resumed.height,
        checkpoint_skipped=tuple(skipped),
    )
    return table, stats, failures
