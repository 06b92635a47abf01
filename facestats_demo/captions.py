"""Captions of demo faces from their drawn traits, for training the demo CLIP contrastively.

A face's *facts* are one value per captioned attribute (``face_facts``): its
labels (gender, age bin, ethnicity) and what else the generator draws and the
attractiveness rating depends on (hair style or a baby girl's bow, beard, smile, skin blemishes,
symmetry, eye size; continuous traits cut into three bins). A caption states
some of the facts (``caption_facts`` drops each with a probability, so short
prompts like "a photo of a woman" are trained too) and ``caption_text`` writes
them with words of :data:`facestats_demo.random_clip.CAPTION_WORDS`, the
tokenizer's word list. A caption *fits* a face when every fact it states is
the face's (``caption_fits``); the training loss counts every fitting caption
in a batch as a positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from facestats_core.labels.vocab import AGE_BINS, ETHNICITIES, GENDERS
from facestats_demo.traits import FaceTraits

Facts = Mapping[str, str]

HEAD_ATTRIBUTES: tuple[str, ...] = ("ethnicity", "gender", "age")
"""Attributes written into the caption's head: "a photo of a <ethnicity> <gender> aged <age>"."""

TAIL_PHRASES: dict[str, dict[str, str]] = {
    "hair": {"long": "long hair", "short": "short hair", "bald": "bald", "baby": "baby hair", "bow": "hair bow"},
    "beard": {"none": "no beard", "stubble": "stubble", "full": "beard"},
    "smile": {"yes": "smiling", "no": "not smiling"},
    "skin": {"clear": "clear skin", "some": "some spots", "spotty": "spotty skin"},
    "symmetry": {"symmetric": "symmetric face", "slight": "slightly lopsided face", "lopsided": "lopsided face"},
    "eyes": {"big": "big eyes", "medium": "medium eyes", "small": "small eyes"},
}
"""Phrases of the other attributes, written after the head in this order, separated by " , "."""

GENDER_NOUNS: dict[str, str] = {"male": "man", "female": "woman"}
ETHNICITY_WORDS: dict[str, str] = {
    "white": "white",
    "black": "black",
    "latino_hispanic": "latino hispanic",
    "east_asian": "east asian",
    "southeast_asian": "southeast asian",
    "indian": "indian",
    "middle_eastern": "middle eastern",
}
ATTRIBUTES: tuple[str, ...] = HEAD_ATTRIBUTES + tuple(TAIL_PHRASES)
VALUES: dict[str, tuple[str, ...]] = {
    "ethnicity": ETHNICITIES,
    "gender": GENDERS,
    "age": AGE_BINS,
    **{name: tuple(phrases) for name, phrases in TAIL_PHRASES.items()},
}
"""Every value a caption can state for each attribute."""


def _tercile(value: float, low: float, high: float, names: tuple[str, str, str]) -> str:
    return names[0] if value < low else names[2] if value > high else names[1]


def face_facts(traits: FaceTraits) -> dict[str, str]:
    """Every captioned fact of a face (see the module docstring)."""
    return {
        "ethnicity": traits.ethnicity,
        "gender": traits.gender,
        "age": traits.age,
        "hair": "bow" if traits.bow is not None else traits.hair_style,
        "beard": traits.beard,
        "smile": "yes" if traits.smile > 0.4 else "no",
        "skin": _tercile(traits.blemish, 1 / 3, 2 / 3, ("clear", "some", "spotty")),
        "symmetry": _tercile(traits.asymmetry, 1 / 3, 2 / 3, ("symmetric", "slight", "lopsided")),
        "eyes": _tercile(traits.eye_scale, 0.96, 1.04, ("small", "medium", "big")),
    }


def caption_text(facts: Facts) -> str:
    """The caption stating exactly ``facts`` (any subset of ``ATTRIBUTES``)."""
    unknown = set(facts) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"unknown caption attributes {sorted(unknown)}; expected some of {ATTRIBUTES}")
    head = ["a photo of a"]
    if "ethnicity" in facts:
        head.append(ETHNICITY_WORDS[facts["ethnicity"]])
    head.append(GENDER_NOUNS[facts["gender"]] if "gender" in facts else "person")
    if "age" in facts:
        head.append(f"aged {facts['age']}")
    tail = [TAIL_PHRASES[name][facts[name]] for name in TAIL_PHRASES if name in facts]
    return " , ".join([" ".join(head), *tail])  # " , ": "70+," would be one byte-spelt piece


def caption_facts(facts: Facts, keep: Mapping[str, float], rng: np.random.Generator) -> dict[str, str]:
    """A random subset of ``facts``: attribute ``a`` is kept with probability ``keep[a]`` (0 when absent)."""
    draws = rng.random(len(ATTRIBUTES))
    return {a: facts[a] for a, u in zip(ATTRIBUTES, draws, strict=True) if a in facts and u < keep.get(a, 0.0)}


def counterfactual_facts(caption: Facts, face: Facts, rng: np.random.Generator) -> dict[str, str]:
    """``caption`` with one fact made false of ``face``: a hard negative for the contrastive loss.

    One stated attribute (or, for an empty caption, any attribute) gets another value
    than the face's, so "a photo of a woman , smiling" is trained against "a photo of
    a man , smiling" on the same image: the model has to see gender itself, not what
    usually comes with it.
    """
    stated = [name for name in ATTRIBUTES if name in caption] or list(ATTRIBUTES)
    name = stated[int(rng.integers(len(stated)))]
    others = [value for value in VALUES[name] if value != face[name]]
    return {**caption, name: others[int(rng.integers(len(others)))]}


def gender_counterfactual(caption: Facts) -> dict[str, str] | None:
    """``caption`` with its gender swapped ("a photo of a woman aged 60-69" beside "a photo of a man
    aged 60-69"); None when it states no gender. A second hard negative per face that always
    targets gender, which one bit among nine attributes otherwise rarely gets."""
    if "gender" not in caption:
        return None
    return {**caption, "gender": "female" if caption["gender"] == "male" else "male"}


def caption_fits(caption: Facts, face: Facts) -> bool:
    """Whether every fact ``caption`` states is true of ``face``."""
    return all(face.get(name) == value for name, value in caption.items())


def fit_matrix(captions: Sequence[Facts], faces: Sequence[Facts]) -> np.ndarray:
    """``(len(captions), len(faces))`` booleans: caption ``i`` fits face ``j``."""
    return np.array([[caption_fits(c, f) for f in faces] for c in captions], dtype=bool).reshape(
        len(captions), len(faces)
    )
