"""Cheap change detection for the raw image folder (used by ``new_images_sensor``).

``list_raw_files`` lists exactly the files the raw scan considers (every
non-hidden regular file, ``facestats_core.images.decode.iter_image_files``) with their
size and mtime, from the directory listing alone: no file content is read.
Its ``state()`` (file count, newest mtime, sha256 of the sorted
``(relative path, size, mtime_ns)`` triples) changes whenever a file is added,
removed, renamed or rewritten.

``manifest_covers`` tells whether a stored raw manifest already describes a
listing, i.e. whether a scan would find nothing new: every listed file is a
manifest row with the same ``(path, bytes, mtime_ns)`` (the key the scan
itself uses to skip re-hashing), or a recorded alias path not modified since
the manifest was written, and no manifest path has disappeared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from facestats_core.images.decode import iter_image_files
from facestats_core.images.scan import stat_mtime_ns


@dataclass(frozen=True)
class RawListing:
    """``(relative posix path, size, mtime_ns)`` of every raw file, sorted by path."""

    files: tuple[tuple[str, int, int], ...]

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def max_mtime_ns(self) -> int:
        return max((mtime for _, _, mtime in self.files), default=0)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for path, size, mtime in self.files:
            h.update(f"{path}\0{size}\0{mtime}\n".encode())
        return h.hexdigest()

    def state(self) -> dict[str, Any]:
        """The JSON-able fingerprint kept in the sensor cursor."""
        return {"count": self.count, "max_mtime_ns": self.max_mtime_ns, "digest": self.digest}


def list_raw_files(root: Any) -> RawListing:
    """List ``root`` (Path or UPath) like the raw scan does, with sizes and mtimes."""
    files = []
    for file in iter_image_files(root):
        try:
            stat = file.stat()
        except OSError:  # a broken link or a file that vanished: listed as the scan records it
            files.append((file.relative_to(root).as_posix(), 0, 0))
            continue
        files.append((file.relative_to(root).as_posix(), int(stat.st_size), stat_mtime_ns(stat)))
    return RawListing(tuple(sorted(files)))


@dataclass(frozen=True)
class Coverage:
    covered: bool
    new_or_changed: list[str]
    removed: list[str]

    def summary(self, shown: int = 5) -> str:
        parts = []
        if self.new_or_changed:
            examples = ", ".join(self.new_or_changed[:shown])
            parts.append(f"{len(self.new_or_changed)} new or changed (e.g. {examples})")
        if self.removed:
            parts.append(f"{len(self.removed)} removed (e.g. {', '.join(self.removed[:shown])})")
        return "; ".join(parts) or "nothing new"


def manifest_covers(listing: RawListing, manifest: pl.DataFrame | None, written_ns: int | None) -> Coverage:
    """Whether ``manifest`` (all shards of ``raw_images`` concatenated, written at ``written_ns``,
    the oldest shard file's mtime) already describes every file of ``listing``.

    Alias paths (duplicates of known content) are recorded without size and mtime, so an alias
    counts as covered only when its mtime is older than the manifest. ``manifest=None`` (no stored
    manifest) covers nothing unless the folder is empty.
    """
    if manifest is None:
        return Coverage(listing.count == 0, [path for path, _, _ in listing.files], [])
    primary = {
        (path, size, mtime)
        for path, size, mtime in manifest.select("path", "bytes", "mtime_ns").iter_rows()
    }
    aliases = {alias for row in manifest["alias_paths"].to_list() for alias in (row or [])}
    limit = written_ns if written_ns is not None else -1
    changed = [
        path
        for path, size, mtime in listing.files
        if (path, size, mtime) not in primary and not (path in aliases and mtime < limit)
    ]
    listed = {path for path, _, _ in listing.files}
    removed = sorted(_known_paths(primary, aliases) - listed)
    return Coverage(not changed and not removed, changed, removed)


def _known_paths(primary: Iterable[tuple[str, int, int]], aliases: set[str]) -> set[str]:
    return {path for path, _, _ in primary} | aliases
