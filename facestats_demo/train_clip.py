"""Train the demo CLIP: a small ``CLIPModel`` learnt contrastively from demo faces and their trait captions.

Without network the demo cannot load OpenAI's CLIP, and a random one measures
nothing. This trains the ``demo`` preset of :mod:`facestats_demo.random_clip`
(a 4-layer ViT at 160 px and a 2-layer text transformer over the offline
tokenizer of ``CAPTION_WORDS``) on the faces of :mod:`facestats_demo.clip_training_set`,
each paired with a caption of a random subset of its facts
(:mod:`facestats_demo.captions`). The loss is CLIP's symmetric cross-entropy
over a batch's image-caption similarities, with every caption that *fits* an
image (states only facts true of it) counted as a positive, so a batch holding
two women does not push "a photo of a woman" away from either.

Training is seeded and deterministic on CPU for a fixed thread count
(``torch.use_deterministic_algorithms``): the same config on the same machine
writes the same bytes. The result is saved with ``save_pretrained`` (model,
image processor, tokenizer) plus ``facestats_demo_clip.json`` (split and
training config) and loads with ``CLIPModel.from_pretrained`` like any CLIP.
``facestats build-clip --train --out DIR`` runs it; the trained model ships in
``facestats_demo/demo_clip/`` (:data:`DEMO_CLIP_DIR`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facestats_core.attractiveness.training import deterministic_torch
from facestats_core.embedding.pixels import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from facestats_core.io.atomic import atomic_write_text
from facestats_core.models.caveats import DEMO_CLIP_RECORD
from facestats_demo.captions import (
    caption_facts,
    caption_text,
    counterfactual_facts,
    fit_matrix,
    gender_counterfactual,
)
from facestats_demo.clip_training_set import EVALUATION_SEEDS, TrainingSet, TrainingSplit, build_training_set
from facestats_demo.random_clip import CAPTION_WORDS, PRESETS, clip_config, save_clip_folder
from facestats_demo.tokenizer import build_clip_tokenizer

if TYPE_CHECKING:
    import torch

DEMO_CLIP_DIR = Path(__file__).resolve().parent / "demo_clip"
"""The trained demo CLIP shipped with the package (``facestats demo`` uses it offline)."""

RECORD_FILE = DEMO_CLIP_RECORD
"""What the model folder records about its training: the split, the config, the caption words."""

DEFAULT_KEEP: tuple[tuple[str, float], ...] = (
    ("ethnicity", 0.8),
    ("gender", 0.8),
    ("age", 0.8),
    ("hair", 0.3),
    ("beard", 0.3),
    ("smile", 0.3),
    ("skin", 0.4),
    ("symmetry", 0.4),
    ("eyes", 0.4),
)
"""Probability that a caption states each attribute (others: 0)."""


@dataclass(frozen=True)
class DemoClipTraining:
    """Everything that decides the trained weights (with the torch version and the machine)."""

    split: TrainingSplit = field(default_factory=TrainingSplit)
    preset: str = "demo"
    epochs: int = 45
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 40
    keep: tuple[tuple[str, float], ...] = DEFAULT_KEEP
    seed: int = 0
    threads: int = 1
    sincos_positions: bool = True
    hard_negatives: bool = True
    """Add one counterfactual caption per face (one fact made false, ``counterfactual_facts``)."""
    gender_negatives: bool = True
    """Also add, per face whose caption states its gender, that caption with the gender swapped."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        if self.epochs < 1 or self.batch_size < 2 or self.threads < 1:
            raise ValueError("epochs >= 1, batch_size >= 2 and threads >= 1 are required")


def sincos_position_embedding(grid: int, dim: int) -> np.ndarray:
    """2-D sine-cosine position embeddings (MAE's), ``(1 + grid*grid, dim)`` float32, class-token row 0.

    Starting the ViT's learnt position embeddings here instead of at small
    random values lets it tell where a patch is from the first step (long hair
    beside the face, a beard below it), which a 4-layer ViT trained for a few
    hundred steps otherwise hardly learns.
    """
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim // 4))
    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    parts = []
    for coordinate in (rows.ravel(), cols.ravel()):
        angles = np.outer(coordinate, omega)
        parts += [np.sin(angles), np.cos(angles)]
    table = np.concatenate(parts, axis=1)
    return np.concatenate([np.zeros((1, dim)), table]).astype(np.float32)


def multi_positive_clip_loss(logits: torch.Tensor, fits: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss where ``fits[i, j]`` marks caption ``i`` as a positive of image ``j``.

    ``logits[i, j]`` is the scaled similarity of caption ``i`` and image ``j``;
    each direction's target spreads evenly over the positives. Every image has a
    positive caption; a caption that fits no image of the batch (a hard negative)
    only enters the image → text direction.
    """
    import torch

    target = fits.to(logits.dtype)
    has_image = target.sum(1) > 0
    rows = target[has_image]
    text_to_image = -(rows / rows.sum(1, keepdim=True) * torch.log_softmax(logits[has_image], 1)).sum(1).mean()
    image_to_text = -(target / target.sum(0, keepdim=True) * torch.log_softmax(logits, 0)).sum(0).mean()
    return (text_to_image + image_to_text) / 2


def learning_rate(step: int, total_steps: int, config: DemoClipTraining) -> float:
    """Linear warm-up to ``config.lr``, then cosine decay to 0 at ``total_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _normalised_pixels(pixels: np.ndarray) -> torch.Tensor:
    import torch

    mean = torch.tensor(OPENAI_CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (torch.from_numpy(pixels).float() / 255.0 - mean) / std


def _features(output: Any) -> Any:
    """``get_*_features`` return a tensor (transformers 4) or an output with ``pooler_output`` (5)."""
    return getattr(output, "pooler_output", output)


def _train_step(
    model: Any, tokenizer: Any, data: TrainingSet, batch: np.ndarray, rng: np.random.Generator,
    config: DemoClipTraining, optimiser: torch.optim.Optimizer,
) -> float:
    """One optimiser step on the faces ``batch`` (random captions and horizontal flips from ``rng``)."""
    import torch

    keep = dict(config.keep)
    faces = [data.facts[i] for i in batch]
    captions = [caption_facts(facts, keep, rng) for facts in faces]
    if config.hard_negatives:
        counterfactuals = [counterfactual_facts(c, f, rng) for c, f in zip(captions, faces, strict=True)]
        if config.gender_negatives:
            counterfactuals += [swapped for c in captions if (swapped := gender_counterfactual(c)) is not None]
        captions += counterfactuals
    tokens = tokenizer([caption_text(c) for c in captions], padding=True, return_tensors="pt")
    pixels = _normalised_pixels(data.pixels[batch])
    flip = torch.from_numpy(rng.random(len(batch)) < 0.5)
    pixels[flip] = pixels[flip].flip(-1)
    image = torch.nn.functional.normalize(_features(model.get_image_features(pixel_values=pixels)), dim=-1)
    text = torch.nn.functional.normalize(
        _features(model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)),
        dim=-1,
    )
    logits = model.logit_scale.exp().clamp(max=100.0) * text @ image.T
    loss = multi_positive_clip_loss(logits, torch.from_numpy(fit_matrix(captions, faces)))
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def fit_demo_clip(
    data: TrainingSet, config: DemoClipTraining, progress: Callable[[str], None] | None = None
) -> tuple[Any, Any, list[float]]:
    """Train a fresh ``config.preset`` CLIP on ``data``; returns (model, tokenizer, mean loss per epoch)."""
    import torch
    from transformers import CLIPModel

    tokenizer = build_clip_tokenizer(CAPTION_WORDS)
    n = len(data.facts)
    steps_per_epoch = n // config.batch_size
    total = steps_per_epoch * config.epochs
    rng = np.random.default_rng(config.seed)
    losses: list[float] = []
    with deterministic_torch(config.seed, config.threads):
        model = CLIPModel(clip_config(config.preset, tokenizer)).train()
        if config.sincos_positions:
            vision = model.config.vision_config
            table = sincos_position_embedding(vision.image_size // vision.patch_size, vision.hidden_size)
            with torch.no_grad():
                model.vision_model.embeddings.position_embedding.weight.copy_(torch.from_numpy(table))
        optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        step = 0
        for epoch in range(config.epochs):
            order = rng.permutation(n)
            epoch_losses = []
            started = time.perf_counter()
            for b in range(steps_per_epoch):
                for group in optimiser.param_groups:
                    group["lr"] = learning_rate(step, total, config)
                batch = np.sort(order[b * config.batch_size : (b + 1) * config.batch_size])
                epoch_losses.append(_train_step(model, tokenizer, data, batch, rng, config, optimiser))
                step += 1
            losses.append(float(np.mean(epoch_losses)))
            if progress is not None:
                progress(f"epoch {epoch + 1}/{config.epochs}: loss {losses[-1]:.4f} "
                         f"({time.perf_counter() - started:.0f} s)")
    return model.eval(), tokenizer, losses


def training_record(config: DemoClipTraining, losses: list[float]) -> dict[str, Any]:
    """The ``facestats_demo_clip.json`` content: deterministic (no timings), so the folder reproduces byte for byte."""
    import torch
    import transformers

    return {
        "what": "FaceStats demo CLIP: trained on synthetic demo faces only; NOT OpenAI's CLIP",
        "training_faces": {
            "generator": "facestats_demo.faces.demo_face",
            "seed": config.split.seed,
            "indices": [0, config.split.n_images - 1],
            "n_images": config.split.n_images,
            "size": config.split.size,
            "never_seen_seeds": list(EVALUATION_SEEDS),
        },
        "training": {**asdict(config), "split": asdict(config.split), "keep": dict(config.keep)},
        "loss_per_epoch": [round(v, 6) for v in losses],
        "caption_words": list(CAPTION_WORDS),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "reproduce": "facestats build-clip --train --out <folder>",
    }


def train_demo_clip(
    output_dir: Path, config: DemoClipTraining | None = None, progress: Callable[[str], None] | None = None
) -> Path:
    """Build the training set, train, and save the demo CLIP folder at ``output_dir``."""
    config = config or DemoClipTraining()
    image_size = PRESETS[config.preset].image_size
    started = time.perf_counter()
    data = build_training_set(config.split, image_size)
    if progress is not None:
        progress(f"drew {len(data.facts)} training faces (seed {config.split.seed}) "
                 f"in {time.perf_counter() - started:.0f} s")
    model, tokenizer, losses = fit_demo_clip(data, config, progress)
    save_clip_folder(model, tokenizer, Path(output_dir))
    record = json.dumps(training_record(config, losses), indent=2, sort_keys=True) + "\n"
    atomic_write_text(Path(output_dir) / RECORD_FILE, record)
    return Path(output_dir)
