"""Atomic artifact writes: a killed run leaves the previous artifact intact.

Local paths are written to a temporary file in the destination folder and then
renamed over the target with ``os.replace`` (atomic on POSIX). Remote
fsspec/UPath URLs (``s3://`` …) are written with a single ``open("wb")``:
object stores publish an object only when its upload completes.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def _is_local(path: Any) -> bool:
    protocol = getattr(path, "protocol", "")
    return isinstance(path, (str, os.PathLike)) and protocol in ("", "file", "local")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_bytes(path: Any, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see either the old or the new file. ``durable=False``
    skips the fsync before the rename: for cache files rebuilt from their sources (face chips),
    where one fsync per file costs more than making the file; a crash can then lose the new file's
    content, never a reader's view of a half-written one."""
    if not _is_local(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            fh.write(data)
        return
    target = Path(os.fspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get normal permissions
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Any, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Any, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_parquet(path: Any, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    atomic_write_bytes(path, buffer.getvalue())
