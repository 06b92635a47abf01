"""The faces the demo CLIP is trained on: demo faces of their own seed, never the evaluated ones.

``facestats demo`` evaluates on demo seed 0 (``DemoSpec().seed``), the tests
draw their faces with other small seeds; the CLIP trains on faces ``0 …
n_images-1`` of ``TRAINING_SEED``, so no evaluated image is in its training
set. Each face goes through the same JPEG encoding as ``raw/demo/`` and the
same bicubic resize as CLIP preprocessing, and is kept as uint8 pixels with
its caption facts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facestats_demo.captions import face_facts
from facestats_demo.faces import DemoSpec, demo_face, jpeg_bytes

TRAINING_SEED = 13
"""Demo seed of the CLIP's training faces (the demo itself uses seed 0)."""

EVALUATION_SEEDS: tuple[int, ...] = (DemoSpec().seed,)
"""Seeds whose faces measure the CLIP (``facestats demo``, ``benchmarks/bench_demo_clip.py``)."""


@dataclass(frozen=True)
class TrainingSplit:
    """Which demo faces train the CLIP: indices ``0 … n_images-1`` of ``seed``, drawn at ``size`` px."""

    seed: int = TRAINING_SEED
    n_images: int = 3000
    size: int = 256

    def __post_init__(self) -> None:
        if self.seed in EVALUATION_SEEDS:
            raise ValueError(f"seed {self.seed} is an evaluation seed {EVALUATION_SEEDS}; train on another")
        if self.n_images < 2:
            raise ValueError(f"n_images must be >= 2, got {self.n_images}")


@dataclass(frozen=True)
class TrainingSet:
    """``pixels``: uint8 ``(n, 3, s, s)`` at the CLIP's image size; ``facts``: each face's caption facts."""

    pixels: np.ndarray
    facts: list[dict[str, str]]


def clip_input_pixels(image: Image.Image, image_size: int) -> np.ndarray:
    """What the pipeline feeds the CLIP from a demo image, as uint8 ``(3, s, s)``:
    the demo JPEG decoded, resized (bicubic) to ``image_size``."""
    with Image.open(io.BytesIO(jpeg_bytes(image))) as decoded:
        small = decoded.convert("RGB").resize((image_size, image_size), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(small, dtype=np.uint8).transpose(2, 0, 1))


def build_training_set(split: TrainingSplit, image_size: int) -> TrainingSet:
    """Draw the split's faces and keep their CLIP-sized pixels and caption facts."""
    pixels = np.empty((split.n_images, 3, image_size, image_size), dtype=np.uint8)
    facts: list[dict[str, str]] = []
    for index in range(split.n_images):
        face = demo_face(split.seed, index, split.size)
        pixels[index] = clip_input_pixels(face.image, image_size)
        facts.append(face_facts(face.traits))
    return TrainingSet(pixels=pixels, facts=facts)
