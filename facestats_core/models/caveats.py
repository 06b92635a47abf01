"""What a run's numbers rest on, when that is weak: a demo or random CLIP, or zero-shot attributes whose
accuracy nobody measured on this kind of photo. The terminal summary, the report and the UI show these."""

from __future__ import annotations

from pathlib import Path

DEMO_CLIP_RECORD = "facestats_demo_clip.json"
"""The file a trained demo CLIP folder holds (its training record): such a CLIP only knows drawn faces."""
RANDOM_CLIP_RECORD = "facestats_random_clip.json"
"""The file a seeded random CLIP folder holds: its weights are noise."""


def clip_kind(model: str) -> str:
    """`demo`, `random` or `model` (anything else: a Hugging Face id or a real local CLIP)."""
    folder = Path(model)
    if "://" in model or not folder.is_dir():
        return "model"
    if (folder / RANDOM_CLIP_RECORD).exists():
        return "random"
    if (folder / DEMO_CLIP_RECORD).exists():
        return "demo"
    return "model"


def numbers_caveats(clip_model: str, methods: dict[str, dict[str, int]]) -> list[str]:
    """One sentence per weakness: the CLIP (`clip_model`) and the attributes predicted zero-shot
    (`methods`: `{attribute: {how: faces}}`, `how` = `zero_shot` for CLIP prompts)."""
    found = []
    kind = clip_kind(clip_model)
    if kind == "demo":
        found.append("the CLIP is FaceStats' DEMO CLIP, trained on drawn demo faces only: attributes, scores and "
                     "composites of real photos mean nothing; pass --clip-model with a real CLIP.")
    elif kind == "random":
        found.append("the CLIP has RANDOM weights (a test model): every prediction is noise.")
    zero = [attr for attr, counts in methods.items() if counts.get("zero_shot")]
    if zero:
        found.append(f"{', '.join(zero)} come from CLIP zero-shot prompts with no accuracy measured on this kind of "
                     "photo; give labels, a reference set or a bundle to measure it.")
    return found
