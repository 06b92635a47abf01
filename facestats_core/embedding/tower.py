"""What a loaded CLIP is: an :class:`ImageTower` (the interface every backend provides) and
:class:`LoadedClip` (the model's facts, its torch model and the image tower that runs).

The loader (:mod:`facestats_core.embedding.loader`) picks and builds one tower per loaded model
(:mod:`~facestats_core.embedding.torch_tower` or :mod:`~facestats_core.embedding.openvino_tower`);
towers never call the loader back, and never touch each other. A different tower for the same
model (int8 calibrated, a wrapped tower in a test) is a new :class:`LoadedClip` made with
``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class ImageTower(Protocol):
    """The vision transformer and projection of a CLIP on one backend: pixels in, image features out."""

    @property
    def backend(self) -> str:
        """``torch`` or ``openvino``."""
        ...

    @property
    def precision(self) -> str:
        """What runs: ``fp32``, ``bf16`` or (OpenVINO) ``int8``."""
        ...

    @property
    def label(self) -> str:
        """What the embeddings' ``precision`` column records: ``fp32``/``bf16`` on torch,
        ``openvino-fp32``, ``openvino-bf16``, ``openvino-int8:<8 hex of the int8 weights>`` on OpenVINO.
        Embeddings of different labels are never mixed or reused for one another."""
        ...

    def prepare(self, n_images: int, batch_size: int) -> None:
        """Called once before a job of ``n_images`` in batches of ``batch_size`` (e.g. to compile)."""
        ...

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Image features, float32 ``(n, dim)``, not L2-normalised, of one batch of pixels: uint8
        ``(n, 3, H, W)`` as the pixel reader yields them (normalised by the tower), or float32
        pixels already normalised (``pixels.clip_pixels``)."""
        ...


@dataclass(frozen=True)
class LoadedClip:
    """A ready CLIP: what identifies it, the pixel preprocessing it expects, its torch model (the
    text tower; float32) and the image tower that embeds images."""

    model: Any
    """The ``transformers.CLIPModel``. Its text tower is float32 whatever the image tower runs."""
    model_id: str
    revision: str
    """Identifies the weights (``loader.model_revision``): embeddings are reused only for the same one."""
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dim: int
    device: str
    tower: ImageTower
    local_files_only: bool = False

    @property
    def recorded_precision(self) -> str:
        """What the embeddings' ``precision`` column records: the tower's :attr:`ImageTower.label`."""
        return self.tower.label
