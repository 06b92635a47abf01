"""A test double of the image-tower interface: wraps a real tower, records each batch it embeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from facestats_core.embedding.tower import ImageTower, LoadedClip


class RecordingTower:
    """Delegates to ``inner``; appends the size of each embedded batch to :attr:`calls` and calls
    ``after(features)`` when given."""

    def __init__(self, inner: ImageTower, after: Callable[[np.ndarray], None] | None = None) -> None:
        self.inner = inner
        self.after = after
        self.calls: list[int] = []

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def precision(self) -> str:
        return self.inner.precision

    @property
    def label(self) -> str:
        return self.inner.label

    def prepare(self, n_images: int, batch_size: int) -> None:
        self.inner.prepare(n_images, batch_size)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        self.calls.append(len(pixels))
        features = self.inner.embed(pixels)
        if self.after is not None:
            self.after(features)
        return features


def recording(clip: LoadedClip, after: Callable[[np.ndarray], None] | None = None) -> tuple[LoadedClip, list[int]]:
    """``clip`` on a :class:`RecordingTower` around its own tower, and the list of batch sizes it embeds."""
    tower = RecordingTower(clip.tower, after)
    return dataclasses.replace(clip, tower=tower), tower.calls
