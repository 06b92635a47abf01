"""The traits of a demo face drawn from its labels, and the attractiveness rating they decide.

:func:`sample_traits` turns ``(gender, age, ethnicity)`` and a seeded generator into a
:class:`FaceTraits` (skin, hair and iris colours from per-ethnicity palettes, eye/nose/lip shape,
age marks, hair style, beard, pose); :func:`attractiveness_score` maps traits to a rating in [1, 5].
The order of the generator's draws is part of the contract: the same seed gives the same face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facestats_core.labels.vocab import AGE_BINS, ETHNICITIES, GENDERS
from facestats_demo.colours import RGB, choice, hsv_colour, jitter, mix, shade
from facestats_demo.decks import AGE_DECK_COUNTS

_SKIN_BASE: dict[str, RGB] = {
    "white": (236, 202, 180),
    "east_asian": (234, 203, 168),
    "middle_eastern": (212, 168, 132),
    "latino_hispanic": (202, 156, 118),
    "southeast_asian": (192, 144, 104),
    "indian": (164, 114, 80),
    "black": (112, 74, 52),
}

_BLACK_HAIR: RGB = (28, 24, 22)
_DARK_BROWN: RGB = (62, 44, 32)
_BROWN: RGB = (112, 78, 48)
_LIGHT_BROWN: RGB = (156, 112, 68)
_BLOND: RGB = (214, 182, 118)
_RED: RGB = (160, 76, 38)

_HAIR_PALETTE: dict[str, tuple[tuple[RGB, float], ...]] = {
    "white": (
        (_BLOND, 0.25),
        (_LIGHT_BROWN, 0.25),
        (_BROWN, 0.25),
        (_DARK_BROWN, 0.13),
        (_RED, 0.07),
        (_BLACK_HAIR, 0.05),
    ),
    "black": ((_BLACK_HAIR, 0.85), (_DARK_BROWN, 0.15)),
    "east_asian": ((_BLACK_HAIR, 0.85), (_DARK_BROWN, 0.15)),
    "southeast_asian": ((_BLACK_HAIR, 0.8), (_DARK_BROWN, 0.2)),
    "indian": ((_BLACK_HAIR, 0.8), (_DARK_BROWN, 0.2)),
    "latino_hispanic": ((_BLACK_HAIR, 0.45), (_DARK_BROWN, 0.35), (_BROWN, 0.2)),
    "middle_eastern": ((_BLACK_HAIR, 0.55), (_DARK_BROWN, 0.35), (_BROWN, 0.1)),
}

_BLUE_IRIS: RGB = (74, 122, 178)
_GREEN_IRIS: RGB = (86, 128, 88)
_BROWN_IRIS: RGB = (98, 64, 36)
_DARK_IRIS: RGB = (48, 32, 24)

_IRIS_PALETTE: dict[str, tuple[tuple[RGB, float], ...]] = {
    "white": ((_BLUE_IRIS, 0.35), (_GREEN_IRIS, 0.15), (_BROWN_IRIS, 0.5)),
    "black": ((_DARK_IRIS, 0.8), (_BROWN_IRIS, 0.2)),
    "east_asian": ((_DARK_IRIS, 0.75), (_BROWN_IRIS, 0.25)),
    "southeast_asian": ((_DARK_IRIS, 0.7), (_BROWN_IRIS, 0.3)),
    "indian": ((_DARK_IRIS, 0.6), (_BROWN_IRIS, 0.4)),
    "latino_hispanic": ((_BROWN_IRIS, 0.7), (_DARK_IRIS, 0.2), (_GREEN_IRIS, 0.1)),
    "middle_eastern": ((_BROWN_IRIS, 0.65), (_DARK_IRIS, 0.25), (_GREEN_IRIS, 0.1)),
}

# ethnicity -> (eye height/width ratio, eye width factor, monolid probability,
#               nose width factor, lip thickness factor)
_FEATURES: dict[str, tuple[float, float, float, float, float]] = {
    "white": (0.62, 1.0, 0.0, 0.95, 0.9),
    "black": (0.64, 1.02, 0.0, 1.35, 1.4),
    "latino_hispanic": (0.6, 1.0, 0.05, 1.1, 1.1),
    "east_asian": (0.4, 0.95, 0.8, 1.0, 1.0),
    "southeast_asian": (0.48, 0.97, 0.45, 1.15, 1.15),
    "indian": (0.62, 1.05, 0.0, 1.1, 1.1),
    "middle_eastern": (0.58, 1.03, 0.0, 1.05, 1.0),
}

# age -> (child-ness 0..1, wrinkle level 0..1, mean grey-hair fraction, attractiveness effect)
_AGE_TRAITS: dict[str, tuple[float, float, float, float]] = {
    "0-2": (1.0, 0.0, 0.0, 0.3),
    "3-9": (0.7, 0.0, 0.0, 0.4),
    "10-19": (0.25, 0.0, 0.0, 0.7),
    "20-29": (0.0, 0.03, 0.0, 1.0),
    "30-39": (0.0, 0.18, 0.04, 0.5),
    "40-49": (0.0, 0.38, 0.2, 0.0),
    "50-59": (0.0, 0.58, 0.45, -0.5),
    "60-69": (0.0, 0.78, 0.75, -0.9),
    "70+": (0.0, 0.95, 0.92, -1.2),
}

# Attractiveness model: z = sum(w * standardised trait) + noise, then mapped to
# mean 3, sd 0.6 with the analytic moments of z under the trait distributions
# below and the age-deck weights (`_age_effect_moments`).
# The age effect carries most of the weight because it is what a CLIP sees at the
# demo's resolution: ridge on the demo CLIP's embeddings reads the age effect with
# r 0.91 but skin spots, asymmetry and eye size with |r| <= 0.1 (docs/demo_clip.md).
# With the three few-pixel traits weighted as much as age (0.45 each), no model on
# those embeddings could predict the rating (r ~0.3), so the demo measured nothing.
_W_SYMMETRY = 0.3
_W_SMOOTH = 0.3
_W_EYES = 0.25
_W_AGE = 0.9
_W_NOISE = 0.4
_EYE_SCALE_SD = 0.08
_UNIFORM_SD = math.sqrt(1.0 / 12.0)
_SCORE_MEAN = 3.0
_SCORE_SD = 0.6


def _age_effect_moments() -> tuple[float, float]:
    """Mean and variance of the age effect under the age-deck weights."""
    total = sum(AGE_DECK_COUNTS.values())
    mean = sum(_AGE_TRAITS[a][3] * c for a, c in AGE_DECK_COUNTS.items()) / total
    var = sum((_AGE_TRAITS[a][3] - mean) ** 2 * c for a, c in AGE_DECK_COUNTS.items()) / total
    return mean, var


@dataclass(frozen=True)
class FaceTraits:
    """Everything that decides how one face is drawn (and its attractiveness).

    ``shift`` is a fraction of the image side; colours are RGB tuples.
    """

    gender: str
    age: str
    ethnicity: str
    skin: RGB
    hair: RGB
    grey: float
    hair_style: str  # "long", "short", "bald", "baby"
    iris: RGB
    eye_scale: float
    eye_aspect: float
    eye_width: float
    monolid: bool
    nose_width: float
    lip_thickness: float
    asymmetry: float
    blemish: float
    wrinkles: float
    child: float
    jaw_width: float
    jaw_square: float
    beard: str  # "none", "stubble", "full"
    smile: float
    lip_colour: RGB
    bow: RGB | None  # hair bow of baby girls
    clothing: RGB
    bg_top: RGB
    bg_bottom: RGB
    angle_deg: float
    scale: float
    shift: tuple[float, float]


def _check_labels(gender: str, age: str, ethnicity: str) -> None:
    if gender not in GENDERS:
        raise ValueError(f"unknown gender {gender!r}; expected one of {GENDERS}")
    if age not in AGE_BINS:
        raise ValueError(f"unknown age bin {age!r}; expected one of {AGE_BINS}")
    if ethnicity not in ETHNICITIES:
        raise ValueError(f"unknown ethnicity {ethnicity!r}; expected one of {ETHNICITIES}")


def _hair_style(gender: str, age: str, rng: np.random.Generator) -> str:
    """Long hair for women and girls, short for men and boys; some older men are bald.

    Gender is drawn unambiguously (as the labels of a demo should be): no short-haired
    women or long-haired men, whose gender a model could only guess at the demo's size.
    Babies of both genders have baby hair; girls wear a bow (``_draw_bow``).
    """
    if age == "0-2":
        return "baby"
    u = float(rng.random())
    if gender == "female":
        return "long"
    bald_p = {"50-59": 0.15, "60-69": 0.25, "70+": 0.3}.get(age, 0.0)
    return "bald" if u < bald_p else "short"


def _beard(gender: str, age: str, ethnicity: str, rng: np.random.Generator) -> str:
    """Beards only for adult men (a bit more often in some groups)."""
    u = float(rng.random())
    if gender != "male" or _AGE_TRAITS[age][0] > 0.0:
        return "none"
    full_p = 0.4 if ethnicity in ("middle_eastern", "indian") else 0.22
    if u < full_p:
        return "full"
    return "stubble" if u < full_p + 0.12 else "none"


def sample_traits(gender: str, age: str, ethnicity: str, rng: np.random.Generator) -> FaceTraits:
    """Draw the visible traits of one face from its labels."""
    _check_labels(gender, age, ethnicity)
    child, wrinkle_level, grey_mean, _ = _AGE_TRAITS[age]
    aspect, eye_w, monolid_p, nose_w, lip_t = _FEATURES[ethnicity]
    female = gender == "female"

    skin = jitter(_SKIN_BASE[ethnicity], rng, 0.05, 4.0)
    if child > 0.5:
        skin = mix(skin, (255, 225, 210), 0.08)
    base_hair = choice(rng, _HAIR_PALETTE[ethnicity])
    if child > 0.5 and ethnicity == "white":
        base_hair = mix(base_hair, _BLOND, 0.4)
    base_hair = jitter(base_hair, rng, 0.06, 3.0)
    grey = float(np.clip(grey_mean + rng.normal(0.0, 0.08), 0.0, 1.0)) if grey_mean > 0 else 0.0
    grey_colour = mix((178, 178, 178), (238, 238, 236), float(np.clip((grey - 0.4) / 0.6, 0.0, 1.0)))
    hair = mix(base_hair, grey_colour, grey)

    lipstick = female and child < 0.5
    lips_target: RGB = (188, 40, 66) if lipstick else (168, 82, 84)
    lip_colour = mix(shade(skin, 0.85), lips_target, 0.6 if lipstick else 0.3)
    # a baby girl's bow: pink to magenta (hue 300-350°), saturated and bright, one colour family easy to see
    bow = hsv_colour(rng, (0.55, 0.8), (0.85, 0.97), hue=(0.83, 0.97)) if female and child > 0.9 else None

    return FaceTraits(
        gender=gender,
        age=age,
        ethnicity=ethnicity,
        skin=skin,
        hair=hair,
        grey=grey,
        hair_style=_hair_style(gender, age, rng),
        iris=jitter(choice(rng, _IRIS_PALETTE[ethnicity]), rng, 0.05, 3.0),
        eye_scale=float(np.clip(rng.normal(1.0, _EYE_SCALE_SD), 0.8, 1.2)),
        eye_aspect=aspect * float(rng.uniform(0.92, 1.08)),
        eye_width=eye_w,
        monolid=float(rng.random()) < monolid_p,
        nose_width=nose_w * float(rng.uniform(0.9, 1.1)),
        lip_thickness=lip_t * float(rng.uniform(0.9, 1.1)) * (1.1 if female else 1.0),
        asymmetry=float(rng.random()),
        blemish=float(rng.random()),
        wrinkles=float(np.clip(wrinkle_level + rng.normal(0.0, 0.06), 0.0, 1.0)) if wrinkle_level else 0.0,
        child=child,
        jaw_width=(float(rng.uniform(0.78, 0.86)) if female else float(rng.uniform(0.92, 1.0)))
        * (1.0 + 0.08 * child),
        jaw_square=2.0 if female or child > 0.5 else float(rng.uniform(2.5, 3.2)),
        beard=_beard(gender, age, ethnicity, rng),
        smile=float(rng.uniform(-0.2, 1.0)),
        lip_colour=lip_colour,
        bow=bow,
        clothing=hsv_colour(rng, (0.2, 0.7), (0.25, 0.8)),
        bg_top=hsv_colour(rng, (0.25, 0.55), (0.5, 0.9)),
        bg_bottom=hsv_colour(rng, (0.25, 0.55), (0.35, 0.75)),
        angle_deg=float(rng.uniform(-12.0, 12.0)),
        scale=float(rng.uniform(0.88, 1.12)),
        shift=(float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.05, 0.05))),
    )


def attractiveness_score(traits: FaceTraits, noise: float) -> float:
    """Deterministic attractiveness rating in [1, 5] from drawn traits.

    Symmetric faces, smooth skin, larger eyes and young-adult age score
    higher; ``noise`` (a standard normal draw) adds rater disagreement. The
    result has mean ~3 and sd ~0.6 over the demo's trait distribution.
    """
    age_mean, age_var = _age_effect_moments()
    z = (
        _W_SYMMETRY * -(traits.asymmetry - 0.5) / _UNIFORM_SD
        + _W_SMOOTH * -(traits.blemish - 0.5) / _UNIFORM_SD
        + _W_EYES * (traits.eye_scale - 1.0) / _EYE_SCALE_SD
        + _W_AGE * (_AGE_TRAITS[traits.age][3] - age_mean)
        + _W_NOISE * noise
    )
    z_sd = math.sqrt(_W_SYMMETRY**2 + _W_SMOOTH**2 + _W_EYES**2 + _W_NOISE**2 + _W_AGE**2 * age_var)
    return float(np.clip(_SCORE_MEAN + _SCORE_SD * z / z_sd, 1.0, 5.0))
