"""Training the demo CLIP: the multi-positive contrastive loss, the schedule, and a deterministic tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facestats_demo.clip_training_set import TrainingSplit
from facestats_demo.train_clip import (
    RECORD_FILE,
    DemoClipTraining,
    learning_rate,
    multi_positive_clip_loss,
    train_demo_clip,
)


def test_with_only_diagonal_positives_the_loss_is_clips() -> None:
    import torch

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 1.5, 0.3], [-0.4, 0.2, 3.0]])
    labels = torch.arange(3)
    clip_loss = (torch.nn.functional.cross_entropy(logits, labels)
                 + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
    assert torch.allclose(multi_positive_clip_loss(logits, torch.eye(3, dtype=torch.bool)), clip_loss)


def test_a_second_positive_is_not_pushed_away() -> None:
    import torch

    logits = torch.tensor([[2.0, 3.0], [-3.0, 3.0]])  # caption 0 is closest to image 1, which it also fits
    fits = torch.tensor([[True, True], [False, True]])
    assert multi_positive_clip_loss(logits, fits) < multi_positive_clip_loss(logits, torch.eye(2, dtype=torch.bool))


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    config = DemoClipTraining(lr=1e-3, warmup_steps=10)
    rates = [learning_rate(step, 100, config) for step in range(101)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[100] == pytest.approx(0.0, abs=1e-12)


def test_training_is_deterministic_and_saves_a_loadable_clip(tmp_path: Path) -> None:
    from transformers import CLIPModel, CLIPTokenizer

    config = DemoClipTraining(
        split=TrainingSplit(n_images=8, size=64), preset="tiny", epochs=2, batch_size=4, warmup_steps=1, threads=1
    )
    first = train_demo_clip(tmp_path / "a", config)
    second = train_demo_clip(tmp_path / "b", config)
    for name in ("model.safetensors", "config.json", RECORD_FILE):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    record = json.loads((first / RECORD_FILE).read_text())
    assert record["training_faces"]["seed"] == config.split.seed
    assert record["training_faces"]["n_images"] == 8
    assert record["training_faces"]["never_seen_seeds"] == [0]
    assert len(record["loss_per_epoch"]) == 2 and all(np.isfinite(record["loss_per_epoch"]))
    model = CLIPModel.from_pretrained(first)
    assert model.config.vision_config.image_size == 32
    assert len(CLIPTokenizer.from_pretrained(first)) == model.config.text_config.vocab_size


def test_sincos_positions_give_every_patch_its_own_row() -> None:
    from facestats_demo.train_clip import sincos_position_embedding

    table = sincos_position_embedding(grid=8, dim=128)
    assert table.shape == (65, 128) and table.dtype == np.float32
    assert not table[0].any()  # the class token has no position
    assert len({row.tobytes() for row in table[1:]}) == 64
    # neighbours are closer than far-apart patches
    assert np.linalg.norm(table[1] - table[2]) < np.linalg.norm(table[1] - table[8])
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_position_embedding(grid=2, dim=6)


def test_captions_that_fit_no_image_only_count_as_negatives() -> None:
    import torch

    logits = torch.tensor([[2.0, 0.5], [0.1, 1.5], [1.0, 1.0]])  # caption 2: a hard negative for both images
    fits = torch.tensor([[True, False], [False, True], [False, False]])
    loss = multi_positive_clip_loss(logits, fits)
    assert torch.isfinite(loss)
    easier = multi_positive_clip_loss(torch.tensor([[2.0, 0.5], [0.1, 1.5], [-5.0, -5.0]]), fits)
    assert easier < loss  # pushing the negative caption away from both images lowers the loss
