"""Randomly initialised CLIP models built from a ``CLIPConfig``, saved like real ones.

Used where real weights cannot be downloaded: tests (``tiny``), the
pipeline benchmark (``small``) and the embedding benchmark (``vit-b-32``, the
real architecture with random weights, hence the real FLOPs). The ``demo``
preset is the architecture of the *trained* demo CLIP (``train_clip.py``). Each is written with
``save_pretrained`` and loaded back through ``CLIPModel.from_pretrained``,
the same code path as a real model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facestats_core.models.caveats import RANDOM_CLIP_RECORD
from facestats_demo.tokenizer import build_clip_tokenizer

CAPTION_WORDS: tuple[str, ...] = (
    "a photo of the face of a person man woman male female boy girl child baby teenager adult old young",
    "aged years year old in their twenties thirties forties fifties sixties seventies",
    "0-2 3-9 10-19 20-29 30-39 40-49 50-59 60-69 70+ more than",
    "white black latino hispanic east southeast asian indian middle eastern caucasian african",
    "smiling with without eyeglasses glasses beard hat headwear wearing moustache long short hair bald bow",
    "portrait picture close-up cropped an this is and or who looks",
    "no not stubble clear some spots spotty skin symmetric slightly lopsided face big medium small eyes ,",
)
"""Words the demo/test tokenizers hold as whole tokens (prompts and captions); other text is spelt byte by byte."""


@dataclass(frozen=True)
class ClipPreset:
    image_size: int
    patch_size: int
    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    projection_dim: int
    text_hidden_size: int
    text_layers: int
    weight_scale: float = 1.0
    position_scale: float = 1.0


PRESETS: dict[str, ClipPreset] = {
    "tiny": ClipPreset(32, 8, 32, 2, 2, 64, 16, 32, 1),
    # The demo's offline fallback. With the default init (std 0.02) a random ViT's
    # attention is uniform, so its class token is little more than the mean patch and
    # loses where things are. Scaling the linear weights (x3) and the position
    # embeddings (x200) makes attention position-dependent; measured on the 600 demo
    # faces, a linear probe then beats the majority class for every attribute
    # (gender .64 vs .50, age .32 vs .19, ethnicity .52 vs .14; default init: .62/.18/.26).
    "small": ClipPreset(224, 32, 192, 4, 4, 768, 256, 64, 1, weight_scale=3.0, position_scale=200.0),
    # The trained demo CLIP (facestats_demo/train_clip.py): 160 px, 32 px patches (5 x 5 grid), 4 layers
    # of width 128, sized to train in minutes on one CPU core. With 16 px patches the same training
    # learnt colours (ethnicity) but not shapes (gender 0.59, hair style 0.59 on its own training faces);
    # 160 px read gender and ethnicity better than 128 px in a short pilot (docs/demo_clip.md).
    "demo": ClipPreset(160, 32, 128, 4, 2, 512, 128, 128, 2),
    "vit-b-32": ClipPreset(224, 32, 768, 12, 12, 3072, 512, 512, 12),
    # ViT-B/32's image tower and projection with a one-layer text tower: the image path at the real
    # architecture's size (the bf16 accuracy test), a third of the weights to initialise and write.
    "vit-b-32-image": ClipPreset(224, 32, 768, 12, 12, 3072, 512, 64, 1),
}


def clip_config(preset: str, tokenizer: Any) -> Any:
    """The ``CLIPConfig`` of ``preset`` with a text tower sized to ``tokenizer``'s vocabulary."""
    from transformers import CLIPConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    spec = PRESETS[preset]
    return CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "hidden_size": spec.text_hidden_size,
            "num_hidden_layers": spec.text_layers,
            "num_attention_heads": max(1, spec.text_hidden_size // 64),
            "intermediate_size": spec.text_hidden_size * 4,
            "max_position_embeddings": 77,
        },
        vision_config={
            "image_size": spec.image_size,
            "patch_size": spec.patch_size,
            "hidden_size": spec.hidden_size,
            "num_hidden_layers": spec.layers,
            "num_attention_heads": spec.heads,
            "intermediate_size": spec.intermediate_size,
        },
        projection_dim=spec.projection_dim,
    )


def save_clip_folder(model: Any, tokenizer: Any, output_dir: Path) -> Path:
    """``save_pretrained`` model, image processor (its own image size, OpenAI's normalisation) and tokenizer."""
    try:  # transformers >= 5 without torchvision
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor

    image_size = int(model.config.vision_config.image_size)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    ).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def build_random_clip(output_dir: Path, preset: str = "tiny", seed: int = 0) -> Path:
    """Build a seeded random CLIP of ``preset``, save model + image processor + tokenizer to ``output_dir``.

    The tokenizer is the offline one of :mod:`facestats_demo.tokenizer` over
    :data:`CAPTION_WORDS`; the text tower's vocabulary is sized to it.
    """
    import torch
    from transformers import CLIPModel

    tokenizer = build_clip_tokenizer(CAPTION_WORDS)
    config = clip_config(preset, tokenizer)
    spec = PRESETS[preset]
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    if spec.weight_scale != 1.0 or spec.position_scale != 1.0:
        with torch.no_grad():
            for module in model.vision_model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.weight.mul_(spec.weight_scale)
            model.vision_model.embeddings.position_embedding.weight.mul_(spec.position_scale)
    save_clip_folder(model, tokenizer, output_dir)
    # marks the folder as random weights, so every summary and report says so (facestats_core.models.caveats)
    (output_dir / RANDOM_CLIP_RECORD).write_text(json.dumps({"preset": preset, "seed": seed}) + "\n")
    return output_dir


def vit_b32_flops_per_image() -> float:
    """Forward FLOPs (2 × multiply-adds) of the ViT-B/32 image tower + projection: ≈ 8.82 GFLOP."""
    tokens, width, layers, mlp = 50, 768, 12, 3072
    patch_embed = 49 * (3 * 32 * 32) * width
    per_layer = tokens * width * 3 * width + 2 * tokens * tokens * width + tokens * width * width
    per_layer += 2 * tokens * width * mlp
    projection = width * 512
    return 2.0 * (patch_embed + layers * per_layer + projection)
