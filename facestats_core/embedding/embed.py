"""Images from disk to L2-normalised CLIP embeddings: the pixel reader feeding a loaded CLIP's image tower.

The pieces follow the reader → mapper → writer split of clip-retrieval: :mod:`~facestats_core.embedding.pixels`
decodes ahead on a thread, the :class:`~facestats_core.embedding.tower.ImageTower` runs whole batches,
:func:`embed_paths` ties them together, times them and L2-normalises; the embedding table
(:mod:`~facestats_core.embedding.table`) is the writer's side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facestats_core.embedding.pixels import iter_pixel_batches
from facestats_core.embedding.tower import LoadedClip
from facestats_core.embedding.vectors import l2_normalize


@dataclass
class EmbedResult:
    """Embeddings for the readable inputs, in input order, and the failures by index."""

    embeddings: np.ndarray
    ok_indices: list[int]
    failures: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    model_seconds: float = 0.0


def embed_paths(
    clip: LoadedClip,
    paths: Sequence[Path],
    batch_size: int = 32,
    progress: Callable[[int, int, float], None] | None = None,
) -> EmbedResult:
    """Embed images from disk in batches of ``batch_size``; unreadable files are reported, not raised.
    ``progress(done, total, seconds)`` is called after each batch."""
    started = time.perf_counter()
    clip.tower.prepare(len(paths), batch_size)
    model_seconds = 0.0
    outputs: list[np.ndarray] = []
    ok_indices: list[int] = []
    failures: dict[int, str] = {}
    done = 0
    for indices, pixels, batch_failures in iter_pixel_batches(paths, clip.image_size, batch_size):
        failures.update(batch_failures)
        if indices:
            tick = time.perf_counter()
            outputs.append(clip.tower.embed(pixels))
            model_seconds += time.perf_counter() - tick
            ok_indices.extend(indices)
        done += len(indices) + len(batch_failures)
        if progress is not None:
            progress(done, len(paths), time.perf_counter() - started)
    embeddings = (
        l2_normalize(np.concatenate(outputs)) if outputs else np.zeros((0, clip.dim), dtype=np.float32)
    )
    return EmbedResult(
        embeddings=embeddings,
        ok_indices=ok_indices,
        failures=failures,
        seconds=time.perf_counter() - started,
        model_seconds=model_seconds,
    )
