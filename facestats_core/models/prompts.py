"""Zero-shot prompt ensembles for the attributes: CLIP-paper-style templates × class phrasings.

Every class of :data:`~facestats_core.labels.vocab.ATTRIBUTES` has a few
phrasings (each with its article: ``a man``, ``an East Asian person``, ``a
person in their twenties``); every phrasing goes into every template
(``a photo of {}.``, ``a close-up photo of the face of {}.`` …). The class's
text embedding is the mean of the L2-normalised embeddings of all its prompts,
normalised again (the ensembling of Radford et al. 2021, section 3.1.4; see
:func:`facestats_core.models.zero_shot.class_text_embeddings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from facestats_core.labels.vocab import ATTRIBUTES

TEMPLATES: tuple[str, ...] = (
    "a photo of {}.",
    "a close-up photo of the face of {}.",
    "a cropped photo of the face of {}.",
    "a portrait photo of {}.",
    "a photo of the face of {}.",
    "a good photo of {}.",
    "a low resolution photo of the face of {}.",
)
"""Templates with one ``{}`` for a class phrasing (which carries its own article)."""

CLASS_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "gender": {
        "male": ("a man", "a male person", "a boy or man"),
        "female": ("a woman", "a female person", "a girl or woman"),
    },
    "age": {
        "0-2": ("a baby", "an infant", "a toddler", "a person aged 0-2"),
        "3-9": ("a child", "a young child", "a kid", "a person aged 3-9"),
        "10-19": ("a teenager", "a person in their teens", "an adolescent", "a person aged 10-19"),
        "20-29": ("a person in their twenties", "a young adult in their twenties", "a person aged 20-29"),
        "30-39": ("a person in their thirties", "an adult in their thirties", "a person aged 30-39"),
        "40-49": ("a person in their forties", "a middle-aged adult in their forties", "a person aged 40-49"),
        "50-59": ("a person in their fifties", "a middle-aged adult in their fifties", "a person aged 50-59"),
        "60-69": ("a person in their sixties", "an older adult in their sixties", "a person aged 60-69"),
        "70+": ("a person in their seventies or older", "an elderly person over seventy", "a person aged 70+"),
    },
    "ethnicity": {
        "white": ("a White person", "a Caucasian person"),
        "black": ("a Black person", "an African person"),
        "latino_hispanic": ("a Latino person", "a Hispanic person"),
        "east_asian": ("an East Asian person", "a Chinese, Japanese or Korean person"),
        "southeast_asian": ("a Southeast Asian person", "a Filipino, Vietnamese or Thai person"),
        "indian": ("an Indian person", "a South Asian person"),
        "middle_eastern": ("a Middle Eastern person", "an Arab person"),
    },
}
"""Attribute → canonical class → phrasings. Keys and class order match :data:`ATTRIBUTES`."""


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one attribute: ``prompts[i]`` are the prompts of ``classes[i]``."""

    attribute: str
    classes: tuple[str, ...]
    prompts: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.prompts):
            raise ValueError(f"{self.attribute}: {len(self.classes)} classes but {len(self.prompts)} prompt lists")
        empty = [c for c, p in zip(self.classes, self.prompts) if not p]
        if empty:
            raise ValueError(f"{self.attribute}: classes without prompts: {empty}")


def expand_prompts(phrases: tuple[str, ...], templates: tuple[str, ...] = TEMPLATES) -> tuple[str, ...]:
    """Every phrasing in every template, phrasing-major (``len(phrases) * len(templates)`` prompts)."""
    return tuple(template.format(phrase) for phrase in phrases for template in templates)


def attribute_prompt_sets(
    phrases: Mapping[str, Mapping[str, tuple[str, ...]]] = CLASS_PHRASES,
    templates: tuple[str, ...] = TEMPLATES,
) -> dict[str, PromptSet]:
    """One :class:`PromptSet` per attribute, classes in the canonical order of :data:`ATTRIBUTES`.

    Raises ``ValueError`` when ``phrases`` misses a canonical class or names one that is not canonical.
    """
    sets: dict[str, PromptSet] = {}
    for attribute, by_class in phrases.items():
        classes = ATTRIBUTES.get(attribute)
        if classes is None:
            raise ValueError(f"unknown attribute {attribute!r}; known: {', '.join(ATTRIBUTES)}")
        if set(by_class) != set(classes):
            raise ValueError(
                f"{attribute}: phrasings must cover exactly {list(classes)}, got {sorted(by_class)}"
            )
        prompts = tuple(expand_prompts(tuple(by_class[c]), templates) for c in classes)
        sets[attribute] = PromptSet(attribute, classes, prompts)
    return sets
