"""The raw-image manifest: one row per distinct content hash, built incrementally.

``scan_shards`` lists every file under the raw root, hashes only files it has
not seen (same relative path, size and mtime as in a previous manifest), and
fully inspects only new content of its own shard. Identical files at several
paths share one ``image_id``; the other paths are kept in ``alias_paths``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from facestats_core.images.decode import DEFAULT_MAX_PIXELS, ImageInfo, inspect_image, iter_image_files
from facestats_core.io.hashing import sha256_bytes, shard_of

RAW_SCHEMA: dict[str, Any] = {
    "image_id": pl.String,
    "path": pl.String,
    "alias_paths": pl.List(pl.String),
    "bytes": pl.Int64,
    "mtime_ns": pl.Int64,
    "width": pl.Int64,
    "height": pl.Int64,
    "format": pl.String,
    "mode": pl.String,
    "exif_orientation": pl.Int64,
    "readable": pl.Boolean,
    "error": pl.String,
    "error_detail": pl.String,
    "note": pl.String,
    "shard": pl.String,
}

_INFO_COLUMNS = (
    "width", "height", "format", "mode", "exif_orientation", "readable", "error", "error_detail", "note",
)


@dataclass(frozen=True)
class ScanStats:
    files_listed: int
    files_hashed: int
    images_in_shards: int
    images_inspected: int
    images_reused: int


def empty_raw_manifest() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_SCHEMA)


def unreadable_row(rel: str, error: OSError) -> dict[str, Any]:
    """The manifest row (without its shard) of a listed file that cannot be read: its id is the
    hash of its path (there are no bytes to hash), its reason ``unreadable_file``."""
    detail = f"{type(error).__name__}: {error.strerror or error}"
    info = ImageInfo(width=None, height=None, format=None, mode=None, exif_orientation=None, readable=False,
                     error="unreadable_file", error_detail=detail, note=None)
    return {"image_id": sha256_bytes(f"unreadable:{rel}".encode()), "path": rel, "alias_paths": [], "bytes": 0,
            "mtime_ns": 0, **{column: getattr(info, column) for column in _INFO_COLUMNS}}


def stat_mtime_ns(stat: Any) -> int:
    """Modification time in ns of an ``os.stat`` result or an fsspec info object (``st_mtime`` only)."""
    value = getattr(stat, "st_mtime_ns", None)
    if value is None:
        value = int(float(getattr(stat, "st_mtime", 0.0) or 0.0) * 1e9)
    return int(value)


def file_mtime_ns(path: Any) -> int:
    """Modification time in ns of a local path or UPath."""
    return stat_mtime_ns(path.stat())


def scan_shards(
    raw_root: Any,
    shards: Iterable[str],
    n_shards: int,
    previous: pl.DataFrame | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[dict[str, pl.DataFrame], ScanStats]:
    """Manifests of the given shards for every file below ``raw_root`` (Path or UPath), in one pass.

    ``previous`` is any earlier manifest (all shards may be concatenated): it
    supplies hashes of unchanged files and inspection results of known content,
    so only new or changed files are read.
    """
    wanted = set(shards)
    previous = previous if previous is not None and previous.height else empty_raw_manifest()
    known_hash = {
        (row["path"], row["bytes"], row["mtime_ns"]): row["image_id"]
        for row in previous.select("path", "bytes", "mtime_ns", "image_id").iter_rows(named=True)
    }
    known_info = {row["image_id"]: row for row in previous.iter_rows(named=True)}

    by_id: dict[str, dict[str, Any]] = {}
    listed = hashed = inspected = 0
    for file in iter_image_files(raw_root):
        listed += 1
        rel = file.relative_to(raw_root).as_posix()
        data: bytes | None = None
        try:
            stat = file.stat()
            size, mtime = int(stat.st_size), stat_mtime_ns(stat)
            image_id = known_hash.get((rel, size, mtime))
            if image_id is None:
                data = file.read_bytes()
                image_id = sha256_bytes(data)
                hashed += 1
        except OSError as exc:
            row = unreadable_row(rel, exc)
            row["shard"] = shard_of(row["image_id"], n_shards)
            if row["shard"] in wanted:
                by_id.setdefault(row["image_id"], row)
            continue
        shard = shard_of(image_id, n_shards)
        if shard not in wanted:
            continue
        if image_id in by_id:
            by_id[image_id]["alias_paths"].append(rel)
            continue
        row: dict[str, Any] = {"image_id": image_id, "path": rel, "alias_paths": [], "bytes": size,
                               "mtime_ns": mtime, "shard": shard}
        if image_id in known_info:
            row.update({column: known_info[image_id][column] for column in _INFO_COLUMNS})
        else:
            info: ImageInfo = inspect_image(data if data is not None else file.read_bytes(), max_pixels)
            inspected += 1
            row.update({column: getattr(info, column) for column in _INFO_COLUMNS})
        by_id[image_id] = row

    rows = list(by_id.values())
    manifests = {
        shard: pl.DataFrame([r for r in rows if r["shard"] == shard] or None, schema=RAW_SCHEMA).sort("image_id")
        for shard in sorted(wanted)
    }
    total = sum(frame.height for frame in manifests.values())
    stats = ScanStats(
        files_listed=listed,
        files_hashed=hashed,
        images_in_shards=total,
        images_inspected=inspected,
        images_reused=total - inspected,
    )
    return manifests, stats
