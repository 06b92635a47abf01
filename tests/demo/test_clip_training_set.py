"""The demo CLIP's training faces: their own seed, never an evaluation seed, drawn as the demo draws them."""

from __future__ import annotations

import numpy as np
import pytest

from facestats_demo.captions import face_facts
from facestats_demo.clip_training_set import (
    EVALUATION_SEEDS,
    TRAINING_SEED,
    TrainingSplit,
    build_training_set,
    clip_input_pixels,
)
from facestats_demo.faces import DemoSpec, demo_face


def test_the_training_seed_is_not_the_demo_seed() -> None:
    assert DemoSpec().seed in EVALUATION_SEEDS
    assert TRAINING_SEED not in EVALUATION_SEEDS
    assert TrainingSplit().seed == TRAINING_SEED
    with pytest.raises(ValueError, match="evaluation seed"):
        TrainingSplit(seed=DemoSpec().seed)
    with pytest.raises(ValueError, match="n_images"):
        TrainingSplit(n_images=1)


def test_training_faces_are_other_images_than_the_demo_faces() -> None:
    demo = {demo_face(DemoSpec().seed, i, 64).image.tobytes() for i in range(8)}
    training = {demo_face(TRAINING_SEED, i, 64).image.tobytes() for i in range(8)}
    assert not demo & training


def test_training_set_holds_clip_sized_pixels_and_the_facts_of_each_face() -> None:
    split = TrainingSplit(n_images=4, size=128)
    data = build_training_set(split, image_size=32)
    assert data.pixels.shape == (4, 3, 32, 32) and data.pixels.dtype == np.uint8
    for index in range(4):
        face = demo_face(split.seed, index, split.size)
        assert data.facts[index] == face_facts(face.traits)
        assert np.array_equal(data.pixels[index], clip_input_pixels(face.image, 32))
    assert len({data.pixels[i].tobytes() for i in range(4)}) == 4
