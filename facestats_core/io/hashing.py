"""Content hashing and hash-based sharding of images."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB chunks (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def shard_keys(n_shards: int) -> list[str]:
    """Partition keys for ``n_shards`` shards: ``["00", "01", …]``."""
    if not 1 <= n_shards <= 256:
        raise ValueError(f"n_shards must be between 1 and 256, got {n_shards}")
    return [f"{i:02d}" for i in range(n_shards)]


def shard_of(image_id: str, n_shards: int) -> str:
    """The shard key of a content hash: uniform, stable across runs and machines."""
    if not 1 <= n_shards <= 256:
        raise ValueError(f"n_shards must be between 1 and 256, got {n_shards}")
    return f"{int(image_id[:8], 16) % n_shards:02d}"
