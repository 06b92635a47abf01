"""A cache of ensembled prompt embeddings: one ``.npz`` per (CLIP weights, prompts).

Text embeddings depend only on the model's weights and the prompts, so they
are computed once and kept in ``<cache_dir>/text-<key>.npz`` with ``key`` =
:func:`text_cache_key` (sha256 of the model id, weights revision and every
prompt group). The file holds ``keys`` (unicode) and ``embeddings`` (float32,
one row per key), is written atomically and read with ``allow_pickle=False``;
an unreadable or mismatching file is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from facestats_core.io.atomic import atomic_write_bytes
from facestats_core.io.layout import to_upath

_CACHE_FORMAT = 1


def text_cache_key(model_id: str, revision: str, groups: Mapping[str, Sequence[str]]) -> str:
    """24 hex digits of the sha256 of the model id, weights revision and the prompt groups (order-sensitive)."""
    record = {
        "format": _CACHE_FORMAT,
        "model_id": model_id,
        "revision": revision,
        "groups": [[key, list(prompts)] for key, prompts in groups.items()],
    }
    return hashlib.sha256(json.dumps(record, ensure_ascii=True).encode()).hexdigest()[:24]


def text_cache_path(cache_dir: Any, key: str) -> Any:
    """``<cache_dir>/text-<key>.npz`` (a ``Path`` or UPath)."""
    return to_upath(cache_dir) / f"text-{key}.npz"


def write_text_cache(path: Any, embeddings: Mapping[str, np.ndarray]) -> None:
    """Write ``{key: (dim,) vector}`` atomically as an ``.npz``."""
    keys = list(embeddings)
    matrix = np.stack([np.asarray(embeddings[k], dtype=np.float32) for k in keys]) if keys else np.zeros((0, 0))
    buffer = io.BytesIO()
    np.savez(buffer, keys=np.asarray(keys, dtype=str), embeddings=matrix.astype(np.float32))
    atomic_write_bytes(path, buffer.getvalue())


def read_text_cache(path: Any) -> dict[str, np.ndarray] | None:
    """The cached ``{key: vector}``, or None when the file is missing or unreadable."""
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
            keys = [str(k) for k in data["keys"]]
            matrix = np.asarray(data["embeddings"], dtype=np.float32)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if matrix.ndim != 2 or matrix.shape[0] != len(keys):
        return None
    return {key: matrix[i] for i, key in enumerate(keys)}


def cached_text_embeddings(
    cache_dir: Any | None,
    key: str,
    groups: Mapping[str, Sequence[str]],
    compute: Callable[[Mapping[str, Sequence[str]]], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """``compute(groups)``, read from / written to the cache under ``cache_dir`` (no cache when None).

    A cached file is used only when it holds exactly the keys of ``groups``.
    """
    if cache_dir is None:
        return compute(groups)
    path = text_cache_path(cache_dir, key)
    cached = read_text_cache(path)
    if cached is not None and list(cached) == list(groups):
        return cached
    embeddings = compute(groups)
    write_text_cache(path, embeddings)
    return embeddings
