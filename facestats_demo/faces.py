"""Deterministic synthetic face set for demos and tests.

Real face data sets cannot ship with the repository, so ``make demo`` draws
cartoon faces whose *visible* traits follow their labels, writes them as JPEGs
and adds FairFace-format attribute labels and SCUT-FBP5500-format ratings:

* skin tone, hair colour, eye shape and nose/lip width depend on ethnicity
  (distinct but overlapping palettes, jittered per image);
* jaw shape, brows, hair length, lipstick, beards and a baby girl's hair bow depend on
  gender, so that gender is visible on every face (no short-haired women or long-haired men);
* child proportions (big eyes, round face), wrinkles and grey hair depend on age;
* the attractiveness score is a deterministic function of drawn traits
  (symmetry, skin smoothness, eye size, age band) plus a little noise.

Every face is rotated (up to ±12°), shifted and scaled so that face alignment
matters downstream; the true eye centres are written to ``demo_truth.csv``.

Layout written under ``root``::

    raw/demo/face_00000.jpg …            size×size RGB JPEGs (quality 90)
    labels/fairface_labels.csv           file,age,gender,race,service_test (FairFace vocabularies)
    labels/scut_ratings.csv              filename,score (mean rating in [1, 5])
    labels/demo_truth.csv                file,gender,age,ethnicity,score,left_eye_x,left_eye_y,
                                         right_eye_x,right_eye_y,lm0_x,lm0_y,…,lm67_x,lm67_y
                                         (canonical labels; eyes and 68 iBUG landmarks in pixel coordinates)

File paths in the CSVs are relative to ``root/raw``. Eye coordinates are in
pixel-index units of the saved image ((0, 0) is the centre of the top-left
pixel); the "left eye" is the one on the image's left.

Determinism: image ``i`` is drawn from its own child seed
``SeedSequence(seed, spawn_key=(0, i))`` and its labels from fixed-size
shuffled "decks" (seeded per deck), so the same seed gives byte-identical
files and image ``i`` does not depend on ``n_images``. The decks follow the
spec's ``mix``: ``balanced`` (the reference sets) or ``shifted`` (``facestats
demo``'s analysed folder: 60 % male, 60 % white, weighted to young adults).
"""

from __future__ import annotations

import colorsys
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, ImageDraw

from facestats_core.faces.landmarks68 import LANDMARK68_COLUMNS, landmarks68_cells
from facestats_core.io.atomic import atomic_write_bytes
from facestats_core.labels.vocab import (
    AGE_BINS,
    ETHNICITIES,
    FAIRFACE_AGE,
    FAIRFACE_GENDER,
    FAIRFACE_RACE,
    GENDERS,
)
from facestats_demo.landmarks import canonical_landmarks68

RGB = tuple[int, int, int]
Point = tuple[float, float]
EyePair = tuple[Point, Point]

DEMO_SUBDIR = "demo"
JPEG_QUALITY = 90

FAIRFACE_HEADER: tuple[str, ...] = ("file", "age", "gender", "race", "service_test")
SCUT_HEADER: tuple[str, ...] = ("filename", "score")
TRUTH_HEADER: tuple[str, ...] = (
    "file",
    "gender",
    "age",
    "ethnicity",
    "score",
    "left_eye_x",
    "left_eye_y",
    "right_eye_x",
    "right_eye_y",
    *LANDMARK68_COLUMNS,
)

# Label "decks": each consecutive block of images gets one shuffled deck, so
# every block of DECK length holds every value (age bins weighted to adults).
_AGE_DECK_COUNTS: dict[str, int] = {
    "0-2": 2,
    "3-9": 3,
    "10-19": 4,
    "20-29": 7,
    "30-39": 6,
    "40-49": 5,
    "50-59": 4,
    "60-69": 3,
    "70+": 2,
}
# The "shifted" mix (``facestats demo``'s analysed folder): a folder whose class mix differs from the
# balanced reference set, as real folders' do: 60 % male, 60 % white, weighted to young adults.
_SHIFTED_GENDER_DECK: tuple[str, ...] = ("female", "female", "male", "male", "male")
_SHIFTED_ETHNICITY_COUNTS: dict[str, int] = {
    "white": 18, "black": 2, "latino_hispanic": 2, "east_asian": 2, "southeast_asian": 2, "indian": 2,
    "middle_eastern": 2,
}
_SHIFTED_AGE_COUNTS: dict[str, int] = {
    "0-2": 1,
    "3-9": 2,
    "10-19": 3,
    "20-29": 12,
    "30-39": 8,
    "40-49": 4,
    "50-59": 3,
    "60-69": 2,
    "70+": 1,
}
MIXES: tuple[str, ...] = ("balanced", "shifted")
"""Class mixes of a demo set: ``balanced`` (the reference set's) and ``shifted`` (see ``demo_labels``)."""
_IMAGE_STREAM = 0
_DECK_STREAM = 1

# --------------------------------------------------------------------------- trait tables

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
# mean 3, sd 0.6. _Z_MEAN/_Z_SD are the analytic moments of z under the
# trait distributions below and the age-deck weights.
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
    total = sum(_AGE_DECK_COUNTS.values())
    mean = sum(_AGE_TRAITS[a][3] * c for a, c in _AGE_DECK_COUNTS.items()) / total
    var = sum((_AGE_TRAITS[a][3] - mean) ** 2 * c for a, c in _AGE_DECK_COUNTS.items()) / total
    return mean, var


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class DemoSpec:
    """What to generate: how many images, their side in pixels, the seed and the class mix (``MIXES``)."""

    n_images: int = 600
    size: int = 256
    seed: int = 0
    mix: str = "balanced"

    def __post_init__(self) -> None:
        if self.mix not in MIXES:
            raise ValueError(f"DemoSpec.mix must be one of {MIXES}, got {self.mix!r}")
        for name in ("n_images", "size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"DemoSpec.{name} must be an int, got {value!r}")
        if self.n_images < 1:
            raise ValueError(f"DemoSpec.n_images must be >= 1, got {self.n_images}")
        if not 64 <= self.size <= 2048:
            raise ValueError(f"DemoSpec.size must be in [64, 2048], got {self.size}")
        if self.seed < 0:
            raise ValueError(f"DemoSpec.seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class DemoDataset:
    """Paths of a generated demo set (see the module docstring for the layout)."""

    images_dir: Path
    fairface_labels: Path
    ratings: Path
    truth: Path
    n_images: int


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
    shift: Point


# --------------------------------------------------------------------------- small helpers


def _choice(rng: np.random.Generator, palette: tuple[tuple[RGB, float], ...]) -> RGB:
    """Pick a colour from a weighted palette."""
    weights = np.array([w for _, w in palette], dtype=float)
    index = int(rng.choice(len(palette), p=weights / weights.sum()))
    return palette[index][0]


def _clip_rgb(values: np.ndarray) -> RGB:
    clipped = np.clip(np.rint(values), 0, 255).astype(int)
    return (int(clipped[0]), int(clipped[1]), int(clipped[2]))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend ``a*(1-t) + b*t``."""
    return _clip_rgb(np.array(a, dtype=float) * (1.0 - t) + np.array(b, dtype=float) * t)


def _shade(colour: RGB, factor: float) -> RGB:
    return _clip_rgb(np.array(colour, dtype=float) * factor)


def _jitter(colour: RGB, rng: np.random.Generator, brightness_sd: float, channel_sd: float) -> RGB:
    base = np.array(colour, dtype=float) * rng.normal(1.0, brightness_sd)
    return _clip_rgb(base + rng.normal(0.0, channel_sd, size=3))


def _hsv_colour(
    rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float], hue: tuple[float, float] = (0.0, 1.0)
) -> RGB:
    """A colour drawn uniformly in HSV (hue, then saturation, then value, from ``rng``)."""
    r, g, b = colorsys.hsv_to_rgb(float(rng.uniform(*hue)), float(rng.uniform(*sat)), float(rng.uniform(*val)))
    return _clip_rgb(np.array([r, g, b]) * 255.0)


# --------------------------------------------------------------------------- trait sampling


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

    skin = _jitter(_SKIN_BASE[ethnicity], rng, 0.05, 4.0)
    if child > 0.5:
        skin = _mix(skin, (255, 225, 210), 0.08)
    base_hair = _choice(rng, _HAIR_PALETTE[ethnicity])
    if child > 0.5 and ethnicity == "white":
        base_hair = _mix(base_hair, _BLOND, 0.4)
    base_hair = _jitter(base_hair, rng, 0.06, 3.0)
    grey = float(np.clip(grey_mean + rng.normal(0.0, 0.08), 0.0, 1.0)) if grey_mean > 0 else 0.0
    grey_colour = _mix((178, 178, 178), (238, 238, 236), float(np.clip((grey - 0.4) / 0.6, 0.0, 1.0)))
    hair = _mix(base_hair, grey_colour, grey)

    lipstick = female and child < 0.5
    lips_target: RGB = (188, 40, 66) if lipstick else (168, 82, 84)
    lip_colour = _mix(_shade(skin, 0.85), lips_target, 0.6 if lipstick else 0.3)
    # a baby girl's bow: pink to magenta (hue 300-350°), saturated and bright, one colour family easy to see
    bow = _hsv_colour(rng, (0.55, 0.8), (0.85, 0.97), hue=(0.83, 0.97)) if female and child > 0.9 else None

    return FaceTraits(
        gender=gender,
        age=age,
        ethnicity=ethnicity,
        skin=skin,
        hair=hair,
        grey=grey,
        hair_style=_hair_style(gender, age, rng),
        iris=_jitter(_choice(rng, _IRIS_PALETTE[ethnicity]), rng, 0.05, 3.0),
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
        clothing=_hsv_colour(rng, (0.2, 0.7), (0.25, 0.8)),
        bg_top=_hsv_colour(rng, (0.25, 0.55), (0.5, 0.9)),
        bg_bottom=_hsv_colour(rng, (0.25, 0.55), (0.35, 0.75)),
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


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class _Geometry:
    """Canonical (un-rotated) face layout in drawing-canvas pixels."""

    cx: float
    cy: float
    hw: float  # head half-width
    hh: float  # head half-height
    eye_dx: float
    eye_y: float
    eye_w: float  # eye half-width
    eye_h: float  # eye half-height
    unit: float  # canvas side


def _geometry(traits: FaceTraits, canvas: int) -> _Geometry:
    s = float(canvas)
    child = traits.child
    hw = 0.205 * s * (1.0 + 0.06 * child)
    hh = 0.27 * s * (1.0 - 0.1 * child)
    cy = 0.5 * s
    eye_w = hw * 0.19 * traits.eye_scale * traits.eye_width * (1.0 + 0.35 * child)
    return _Geometry(
        cx=0.5 * s,
        cy=cy,
        hw=hw,
        hh=hh,
        eye_dx=hw * 0.42,
        eye_y=cy - hh * (0.06 - 0.2 * child),
        eye_w=eye_w,
        eye_h=eye_w * traits.eye_aspect * (1.0 + 0.2 * child),
        unit=s,
    )


def _head_outline(g: _Geometry, traits: FaceTraits, n: int = 96, grow: float = 0.0) -> list[Point]:
    """Head polygon: elliptic crown, superelliptic (square for men) tapering jaw."""
    points: list[Point] = []
    for t in np.linspace(0.0, 2.0 * math.pi, n, endpoint=False):
        c, s = math.cos(t), math.sin(t)
        if s <= 0.0:
            x, y = g.hw * c, g.hh * s
        else:
            e = 2.0 / traits.jaw_square
            taper = 1.0 - (1.0 - traits.jaw_width) * s
            x = g.hw * taper * math.copysign(abs(c) ** e, c)
            y = g.hh * s**e
        points.append((g.cx + x * (1.0 + grow), g.cy + y * (1.0 + grow)))
    return points


def _ellipse_box(cx: float, cy: float, rx: float, ry: float) -> tuple[int, int, int, int]:
    """Integer bounding box centred exactly on the rounded centre.

    ImageDraw truncates float coordinates, so centring is exact only with an
    integer centre and integer radii (used for the eyes, whose centres are reported).
    """
    x, y = int(round(cx)), int(round(cy))
    a, b = max(1, int(round(rx))), max(1, int(round(ry)))
    return (x - a, y - b, x + a, y + b)


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, fill: RGB) -> None:
    draw.ellipse(_ellipse_box(cx, cy, rx, ry), fill=fill)


def _draw_back(draw: ImageDraw.ImageDraw, g: _Geometry, traits: FaceTraits) -> None:
    """Long hair behind the head, shoulders, neck and ears."""
    if traits.hair_style == "long":
        draw.rounded_rectangle(
            (g.cx - g.hw * 1.28, g.cy - g.hh * 1.08, g.cx + g.hw * 1.28, g.cy + g.hh * 1.45),
            radius=g.hw * 0.9,
            fill=traits.hair,
        )
    neck = 0.38 if traits.gender == "female" else 0.46
    draw.rectangle(
        (g.cx - g.hw * neck, g.cy + g.hh * 0.5, g.cx + g.hw * neck, g.cy + g.hh * 1.5),
        fill=_shade(traits.skin, 0.86),
    )
    draw.ellipse(
        (g.cx - g.hw * 2.4, g.cy + g.hh * 1.32, g.cx + g.hw * 2.4, g.cy + g.hh * 3.4), fill=traits.clothing
    )
    draw.polygon(
        [
            (g.cx - g.hw * neck, g.cy + g.hh * 1.3),
            (g.cx + g.hw * neck, g.cy + g.hh * 1.3),
            (g.cx, g.cy + g.hh * 1.75),
        ],
        fill=_shade(traits.skin, 0.86),
    )
    ear = _shade(traits.skin, 0.92)
    for side in (-1.0, 1.0):
        _ellipse(draw, g.cx + side * g.hw * 0.98, g.cy + g.hh * 0.02, g.hw * 0.13, g.hh * 0.17, ear)


def _hair_cap(g: _Geometry, thickness: float, hairline: float) -> list[Point]:
    """Polygon of the hair on top of the head down to the temples."""
    outer: list[Point] = []
    for t in np.linspace(math.pi, 2.0 * math.pi, 40):
        outer.append((g.cx + (g.hw + thickness) * math.cos(t), g.cy + (g.hh + thickness) * math.sin(t)))
    temple_y = g.cy - g.hh * 0.12
    mid_y = g.cy - g.hh * hairline
    inner: list[Point] = []
    for u in np.linspace(1.0, -1.0, 25):
        y = temple_y + (mid_y - temple_y) * (1.0 - abs(u) ** 1.6)
        inner.append((g.cx + u * g.hw * 0.98, y))
    return outer + inner


def _draw_hair_front(draw: ImageDraw.ImageDraw, g: _Geometry, traits: FaceTraits) -> None:
    """Hair cap (or bald sides, or sparse baby hair) and long-hair side curtains."""
    style = traits.hair_style
    if style == "bald":
        for side in (-1.0, 1.0):
            x0 = g.cx + side * g.hw * 1.02
            draw.polygon(
                [
                    (x0, g.cy - g.hh * 0.45),
                    (x0 + side * g.hw * 0.06, g.cy - g.hh * 0.2),
                    (x0 + side * g.hw * 0.02, g.cy + g.hh * 0.1),
                    (x0 - side * g.hw * 0.14, g.cy + g.hh * 0.05),
                    (x0 - side * g.hw * 0.12, g.cy - g.hh * 0.4),
                ],
                fill=traits.hair,
            )
        return
    if style == "baby":
        draw.polygon(_hair_cap(g, g.hw * 0.02, 0.82), fill=traits.hair)
        _draw_bow(draw, g, traits)
        return
    thickness = g.hw * (0.14 if style == "long" else 0.1)
    hairline = 0.55 if traits.child > 0 else 0.66 - 0.1 * traits.wrinkles
    draw.polygon(_hair_cap(g, thickness, hairline), fill=traits.hair)
    if style == "long":
        for side in (-1.0, 1.0):
            draw.polygon(
                [
                    (g.cx + side * g.hw * 1.14, g.cy - g.hh * 0.5),
                    (g.cx + side * g.hw * 0.8, g.cy - g.hh * 0.62),
                    (g.cx + side * g.hw * 0.86, g.cy + g.hh * 0.25),
                    (g.cx + side * g.hw * 1.02, g.cy + g.hh * 1.2),
                    (g.cx + side * g.hw * 1.28, g.cy + g.hh * 1.2),
                ],
                fill=traits.hair,
            )


def _draw_bow(draw: ImageDraw.ImageDraw, g: _Geometry, traits: FaceTraits) -> None:
    """A baby girl's hair bow: two triangles and a knot on the crown, slightly to one side."""
    if traits.bow is None:
        return
    x, y = g.cx + g.hw * 0.3, g.cy - g.hh * 0.92
    w, h = g.hw * 0.42, g.hh * 0.2
    for side in (-1.0, 1.0):
        draw.polygon([(x, y), (x + side * w, y - h), (x + side * w, y + h)], fill=traits.bow)
    _ellipse(draw, x, y, w * 0.3, h * 0.55, _shade(traits.bow, 0.8))


def _draw_skin_marks(
    draw: ImageDraw.ImageDraw, g: _Geometry, traits: FaceTraits, rng: np.random.Generator
) -> None:
    """Blemishes (skin smoothness) and age wrinkles."""
    spot = _mix(_shade(traits.skin, 0.78), (150, 60, 60), 0.25)
    for _ in range(int(round(traits.blemish * 16))):
        x = g.cx + rng.uniform(-0.7, 0.7) * g.hw
        y = g.cy + rng.uniform(-0.1, 0.55) * g.hh
        r = rng.uniform(0.005, 0.009) * g.unit
        _ellipse(draw, x, y, r, r, spot)
    w = traits.wrinkles
    if w <= 0.0:
        return
    line = _shade(traits.skin, 0.74)
    width = max(1, int(round(g.unit * 0.004 * (1.0 + w))))
    for k in range(int(round(w * 4))):  # forehead lines
        y = g.cy - g.hh * (0.36 + 0.06 * k)
        draw.arc(
            (g.cx - g.hw * 0.45, y - g.hh * 0.05, g.cx + g.hw * 0.45, y + g.hh * 0.05),
            200,
            340,
            fill=line,
            width=width,
        )
    for side in (-1.0, 1.0):  # nasolabial folds
        x0 = g.cx + side * g.hw * 0.2
        draw.line(
            [
                (x0, g.cy + g.hh * 0.22),
                (x0 + side * g.hw * 0.1, g.cy + g.hh * 0.42),
                (x0 + side * g.hw * 0.1, g.cy + g.hh * 0.55),
            ],
            fill=line,
            width=width,
            joint="curve",
        )
        if w > 0.3:  # crow's feet
            ex = g.cx + side * (g.eye_dx + g.eye_w * 1.15)
            for dy in (-0.6, 0.0, 0.6):
                draw.line(
                    [
                        (ex, g.eye_y + dy * g.eye_h * 0.8),
                        (ex + side * g.eye_w * 0.45, g.eye_y + dy * g.eye_h * 1.4),
                    ],
                    fill=line,
                    width=width,
                )
        if w > 0.45:  # under-eye bags
            ex = g.cx + side * g.eye_dx
            draw.arc(
                (ex - g.eye_w, g.eye_y, ex + g.eye_w, g.eye_y + g.eye_h * 2.4),
                20,
                160,
                fill=line,
                width=width,
            )


def _eye_centres(g: _Geometry, traits: FaceTraits) -> tuple[Point, Point, float, float]:
    """Canonical left/right eye centres and per-eye size factors (asymmetry)."""
    a = traits.asymmetry
    dy = a * 0.016 * g.unit
    left = (float(round(g.cx - g.eye_dx - a * 0.006 * g.unit)), float(round(g.eye_y - dy / 2.0)))
    right = (float(round(g.cx + g.eye_dx)), float(round(g.eye_y + dy / 2.0)))
    return left, right, 1.0 + 0.08 * a, 1.0 - 0.08 * a


def _draw_eye(
    draw: ImageDraw.ImageDraw,
    centre: Point,
    g: _Geometry,
    traits: FaceTraits,
    size_factor: float,
    side: float,
) -> None:
    x, y = centre
    ew, eh = g.eye_w * size_factor, g.eye_h * size_factor
    box = _ellipse_box(x, y, ew, eh)
    draw.ellipse(box, fill=(246, 244, 240))
    iris_r = min(eh * 0.92, ew * 0.55)
    _ellipse(draw, x, y, iris_r, iris_r, traits.iris)
    _ellipse(draw, x, y, iris_r * 0.45, iris_r * 0.45, (12, 10, 10))
    _ellipse(draw, x + iris_r * 0.3, y - iris_r * 0.3, iris_r * 0.18, iris_r * 0.18, (255, 255, 255))
    # eyelids: thin outline, thicker upper lid (monolid: heavy, flat)
    lid = (46, 34, 30)
    lid_w = max(1, int(round(g.unit * (0.006 if traits.monolid else 0.004))))
    draw.arc(box, 180, 360, fill=lid, width=lid_w)
    draw.arc(box, 0, 180, fill=_shade(traits.skin, 0.7), width=1)
    if not traits.monolid:
        draw.arc(
            (x - ew * 1.05, y - eh * 1.6, x + ew * 1.05, y + eh * 0.6),
            200,
            340,
            fill=_shade(traits.skin, 0.78),
            width=max(1, lid_w // 2),
        )
    if traits.gender == "female" and traits.child < 0.5:
        outer = x + side * ew
        for k in range(3):
            draw.line(
                [
                    (outer - side * ew * 0.25 * k, y - eh * (0.7 + 0.1 * k)),
                    (outer - side * ew * 0.25 * k + side * ew * 0.2, y - eh * (1.15 + 0.1 * k)),
                ],
                fill=lid,
                width=max(1, lid_w // 2),
            )


def _draw_brows(
    draw: ImageDraw.ImageDraw, eyes: tuple[Point, Point], g: _Geometry, traits: FaceTraits
) -> None:
    colour = _mix(traits.hair, (40, 32, 28), 0.25 * (1.0 - traits.grey))
    if traits.child > 0.9:
        colour = _mix(colour, traits.skin, 0.6)
    width = max(
        1, int(round(g.unit * (0.018 if traits.gender == "male" else 0.011) * (1 - 0.3 * traits.child)))
    )
    for (x, y), side in zip(eyes, (-1.0, 1.0), strict=True):
        top = y - g.eye_h - g.eye_w * 0.55
        draw.line(
            [
                (x - side * g.eye_w * 1.0, top + g.eye_w * 0.18),
                (x, top - g.eye_w * 0.05),
                (x + side * g.eye_w * 1.15, top + g.eye_w * 0.15),
            ],
            fill=colour,
            width=width,
            joint="curve",
        )


def _draw_nose_mouth(draw: ImageDraw.ImageDraw, g: _Geometry, traits: FaceTraits) -> None:
    child = traits.child
    a = traits.asymmetry
    nose_y = g.cy + g.hh * (0.3 - 0.12 * child)
    nw = g.hw * 0.17 * traits.nose_width * (1.0 - 0.35 * child)
    nx = g.cx + a * 0.006 * g.unit
    shadow = _shade(traits.skin, 0.8)
    width = max(1, int(round(g.unit * 0.004)))
    draw.line(
        [(nx - nw * 0.2, g.eye_y + g.eye_h), (nx - nw * 0.35, nose_y - g.hh * 0.05)], fill=shadow, width=width
    )
    draw.arc((nx - nw, nose_y - nw * 0.6, nx + nw, nose_y + nw * 0.5), 20, 160, fill=shadow, width=width)
    for side in (-1.0, 1.0):
        _ellipse(
            draw, nx + side * nw * 0.45, nose_y + nw * 0.05, nw * 0.16, nw * 0.1, _shade(traits.skin, 0.55)
        )

    mouth_y = g.cy + g.hh * (0.56 - 0.08 * child)
    mw = g.hw * 0.36 * (1.0 - 0.25 * child) * (1.0 + 0.08 * traits.lip_thickness)
    lt = g.hh * 0.045 * traits.lip_thickness
    tilt = (a - 0.5) * 0.01 * g.unit
    lips = traits.lip_colour
    draw.polygon(
        [
            (g.cx - mw, mouth_y - tilt),
            (g.cx, mouth_y - lt * 1.1),
            (g.cx + mw, mouth_y + tilt),
            (g.cx, mouth_y + lt * 0.2),
        ],
        fill=lips,
    )
    draw.chord((g.cx - mw * 0.8, mouth_y - lt * 1.2, g.cx + mw * 0.8, mouth_y + lt * 1.4), 0, 180, fill=lips)
    smile = traits.smile * lt * 1.2
    draw.line(
        [
            (g.cx - mw, mouth_y - tilt - smile),
            (g.cx, mouth_y + smile * 0.3),
            (g.cx + mw, mouth_y + tilt - smile),
        ],
        fill=_shade(lips, 0.55),
        width=width,
        joint="curve",
    )


def _draw_beard(draw: ImageDraw.ImageDraw, g: _Geometry, traits: FaceTraits) -> None:
    if traits.beard == "none":
        return
    colour = traits.hair if traits.beard == "full" else _mix(traits.hair, traits.skin, 0.55)
    outline = _head_outline(g, traits, n=120, grow=0.01)
    jaw = [p for p in outline if p[1] > g.cy + g.hh * 0.12]
    jaw_lower = sorted(jaw, key=lambda p: -p[0])  # right to left along the chin
    mouth_y = g.cy + g.hh * 0.56
    upper: list[Point] = []
    for u in np.linspace(-1.0, 1.0, 15):
        x = g.cx + u * g.hw * 0.85
        upper.append((x, mouth_y - g.hh * (0.16 - 0.08 * abs(u) ** 2)))
    draw.polygon(upper + jaw_lower, fill=colour)
    # keep the lips visible through the beard
    draw.ellipse(
        (g.cx - g.hw * 0.42, mouth_y - g.hh * 0.06, g.cx + g.hw * 0.42, mouth_y + g.hh * 0.1),
        fill=_mix(colour, traits.skin, 0.4),
    )


def _background(traits: FaceTraits, canvas: int) -> Image.Image:
    """Vertical colour gradient with a slight horizontal tilt (built small, then upscaled)."""
    t = np.linspace(0.0, 1.0, 16, dtype=np.float32)
    ramp = np.clip(t[:, None] * 0.85 + t[None, :] * 0.15, 0.0, 1.0)[..., None]
    top = np.array(traits.bg_top, dtype=np.float32)
    bottom = np.array(traits.bg_bottom, dtype=np.float32)
    pixels = np.clip(np.rint(top * (1.0 - ramp) + bottom * ramp), 0, 255).astype(np.uint8)
    small = Image.fromarray(pixels, "RGB")
    return small.resize((canvas, canvas), Image.Resampling.BILINEAR).convert("RGBA")


def _forward_affine(traits: FaceTraits, canvas: int) -> np.ndarray:
    """3x3 matrix mapping canonical canvas coordinates to output canvas coordinates.

    Rotates by ``angle_deg`` (counter-clockwise on screen) and scales about the
    face centre, then shifts. Coordinates are continuous (pixel i spans [i, i+1)).
    """
    theta = math.radians(traits.angle_deg)
    c, s = math.cos(theta) * traits.scale, math.sin(theta) * traits.scale
    centre = canvas / 2.0
    tx = centre + traits.shift[0] * canvas
    ty = centre + traits.shift[1] * canvas
    # screen y points down, so a counter-clockwise turn uses +sin on x and -sin on y
    return np.array(
        [[c, s, tx - c * centre - s * centre], [-s, c, ty + s * centre - c * centre], [0.0, 0.0, 1.0]]
    )


def _draw_face_layer(
    traits: FaceTraits, canvas: int, rng: np.random.Generator
) -> tuple[Image.Image, EyePair]:
    """Draw the canonical face on a transparent layer; return it and the eye centres."""
    g = _geometry(traits, canvas)
    layer = Image.new("RGBA", (canvas, int(canvas * 1.4)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    _draw_back(draw, g, traits)
    draw.polygon(_head_outline(g, traits), fill=traits.skin)
    _draw_skin_marks(draw, g, traits, rng)
    _draw_hair_front(draw, g, traits)
    left, right, left_f, right_f = _eye_centres(g, traits)
    _draw_eye(draw, left, g, traits, left_f, -1.0)
    _draw_eye(draw, right, g, traits, right_f, 1.0)
    _draw_brows(draw, (left, right), g, traits)
    _draw_beard(draw, g, traits)
    _draw_nose_mouth(draw, g, traits)
    return layer, (left, right)


def _draw_traits(traits: FaceTraits, size: int, rng: np.random.Generator) -> tuple[Image.Image, EyePair]:
    """Render ``traits`` at ``size`` px (drawn at 2x, LANCZOS-downsampled)."""
    canvas = 2 * size
    layer, (left, right) = _draw_face_layer(traits, canvas, rng)
    forward = _forward_affine(traits, canvas)
    inverse = np.linalg.inv(forward)
    coeffs = tuple(float(v) for v in inverse[:2, :].ravel())
    moved = (
        layer.convert("RGBa")
        .transform((canvas, canvas), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
        .convert("RGBA")
    )
    composed = Image.alpha_composite(_background(traits, canvas), moved).convert("RGB")
    small = composed.resize((size, size), Image.Resampling.LANCZOS)
    noise = rng.standard_normal(size=(size, size, 3), dtype=np.float32) * np.float32(2.0)
    pixels = np.asarray(small, dtype=np.float32) + noise
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")

    return image, (_to_output(forward, left), _to_output(forward, right))


def _to_output(forward: np.ndarray, point: Point) -> Point:
    """A canonical drawing point in the output image (the ``2x`` canvas moved by ``forward``)."""
    # drawing coords have pixel centres at integers -> continuous +0.5; 2x -> 1x; back to index
    q = forward @ np.array([point[0] + 0.5, point[1] + 0.5, 1.0])
    return (float(q[0]) / 2.0 - 0.5, float(q[1]) / 2.0 - 0.5)


def face_landmarks68(traits: FaceTraits, size: int) -> np.ndarray:
    """The 68 iBUG landmarks ``(68, 2)`` of the face ``_draw_traits(traits, size, …)`` draws,
    in output pixel-index coordinates (mapped like the eyes; see :mod:`facestats_demo.landmarks`)."""
    canvas = 2 * size
    g = _geometry(traits, canvas)
    left, right, left_f, right_f = _eye_centres(g, traits)
    points = canonical_landmarks68(g, traits, (left, right), (left_f, right_f))
    forward = _forward_affine(traits, canvas)
    return np.array([_to_output(forward, (float(x), float(y))) for x, y in points])


def render_face(
    gender: str, age: str, ethnicity: str, rng: np.random.Generator, size: int
) -> tuple[Image.Image, EyePair]:
    """Draw one ``size``×``size`` RGB face whose traits follow the labels.

    Returns the image and the eye centres ``((left_x, left_y), (right_x, right_y))``
    in pixel-index coordinates, the left eye being the one on the image's left.
    """
    if not 64 <= size <= 2048:
        raise ValueError(f"size must be in [64, 2048], got {size}")
    traits = sample_traits(gender, age, ethnicity, rng)
    return _draw_traits(traits, size, rng)


# --------------------------------------------------------------------------- labels and the dataset


def _deck_value(seed: int, stream: int, deck: tuple[str, ...], index: int) -> str:
    """Value for image ``index`` from its block's shuffled copy of ``deck``."""
    block, offset = divmod(index, len(deck))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DECK_STREAM, stream, block)))
    return deck[int(rng.permutation(len(deck))[offset])]


def _deck(counts: dict[str, int], order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value for value in order for _ in range(counts[value]))


def demo_labels(seed: int, index: int, mix: str = "balanced") -> tuple[str, str, str]:
    """Canonical ``(gender, age, ethnicity)`` of demo image ``index``.

    ``balanced``: gender and ethnicity are exactly balanced within every block
    of 2 / 7 images; every block of 36 images holds every age bin, weighted to
    adults. ``shifted``: every block of 5 images is 3 male / 2 female, every
    block of 30 is 60 % white (18) with 2 of each other ethnicity, and every
    block of 36 is weighted to young adults (20-29: 12, 30-39: 8, the other
    bins 1-4 each).
    """
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    if mix == "shifted":
        genders = _SHIFTED_GENDER_DECK
        age_deck = _deck(_SHIFTED_AGE_COUNTS, AGE_BINS)
        ethnicities = _deck(_SHIFTED_ETHNICITY_COUNTS, ETHNICITIES)
    else:
        genders, age_deck, ethnicities = GENDERS, _deck(_AGE_DECK_COUNTS, AGE_BINS), ETHNICITIES
    return (
        _deck_value(seed, 0, genders, index),
        _deck_value(seed, 1, age_deck, index),
        _deck_value(seed, 2, ethnicities, index),
    )


@dataclass(frozen=True)
class DemoFace:
    """Demo face ``index`` of a seed: its drawn traits, image, eye centres, rating and FairFace split flag."""

    traits: FaceTraits
    image: Image.Image
    eyes: EyePair
    score: float
    service_test: bool


def demo_face(seed: int, index: int, size: int, mix: str = "balanced") -> DemoFace:
    """Draw demo face ``index`` of ``seed`` (labels from ``mix``) exactly as ``generate_demo_dataset`` writes it.

    Everything comes from the image's own child seed, so the face does not
    depend on how many others are drawn.
    """
    gender, age, ethnicity = demo_labels(seed, index, mix)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_IMAGE_STREAM, index)))
    traits = sample_traits(gender, age, ethnicity, rng)
    image, eyes = _draw_traits(traits, size, rng)
    if not _eyes_inside(eyes, size, margin=0.08 * size):
        raise RuntimeError(f"demo image {index}: eyes {eyes} too close to the border")  # by construction never
    score = attractiveness_score(traits, float(rng.normal()))
    service_test = float(rng.random()) < 0.5
    return DemoFace(traits=traits, image=image, eyes=eyes, score=score, service_test=service_test)


def demo_file_name(index: int) -> str:
    """Path of image ``index`` relative to ``root/raw`` (``demo/face_00012.jpg``)."""
    return f"{DEMO_SUBDIR}/face_{index:05d}.jpg"


def jpeg_bytes(image: Image.Image) -> bytes:
    """The demo's JPEG encoding of ``image`` (quality 90, baseline): what ``raw/demo/`` holds."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds exactly ``data``."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    atomic_write_bytes(path, data)


def _csv_bytes(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> bytes:
    """CSV text (LF line ends) from pre-formatted string cells."""
    frame = pl.DataFrame(rows, schema={name: pl.String for name in header}, orient="row")
    return frame.write_csv(line_terminator="\n", quote_style="necessary").encode("utf-8")


def _remove_stale_images(images_dir: Path, n_images: int) -> None:
    """Delete ``face_NNNNN.jpg`` files left by an earlier, larger run."""
    pattern = re.compile(r"face_(\d{5,})\.jpg")
    for path in images_dir.glob("face_*.jpg"):
        match = pattern.fullmatch(path.name)
        if match and int(match.group(1)) >= n_images:
            path.unlink()


def _eyes_inside(eyes: EyePair, size: int, margin: float) -> bool:
    return all(margin <= c <= size - 1 - margin for point in eyes for c in point)


def generate_demo_dataset(root: Path, spec: DemoSpec = DemoSpec()) -> DemoDataset:
    """Write the synthetic demo set under ``root`` and return its paths.

    Re-running with the same spec rewrites nothing that is already identical
    and removes demo images beyond ``spec.n_images`` left by larger runs.
    """
    root = Path(root)
    images_dir = root / "raw" / DEMO_SUBDIR
    labels_dir = root / "labels"
    images_dir.mkdir(parents=True, exist_ok=True)
    fairface_rows: list[tuple[str, ...]] = []
    rating_rows: list[tuple[str, ...]] = []
    truth_rows: list[tuple[str, ...]] = []
    for index in range(spec.n_images):
        face = demo_face(spec.seed, index, spec.size, spec.mix)
        gender, age, ethnicity = face.traits.gender, face.traits.age, face.traits.ethnicity
        score = f"{face.score:.3f}"
        service_test = "True" if face.service_test else "False"
        name = demo_file_name(index)
        _write_if_changed(root / "raw" / name, jpeg_bytes(face.image))
        fairface_rows.append(
            (name, FAIRFACE_AGE[age], FAIRFACE_GENDER[gender], FAIRFACE_RACE[ethnicity], service_test)
        )
        rating_rows.append((name, score))
        (lx, ly), (rx, ry) = face.eyes
        truth_rows.append(
            (name, gender, age, ethnicity, score, f"{lx:.3f}", f"{ly:.3f}", f"{rx:.3f}", f"{ry:.3f}",
             *landmarks68_cells(face_landmarks68(face.traits, spec.size)))
        )
    _remove_stale_images(images_dir, spec.n_images)
    dataset = DemoDataset(
        images_dir=images_dir,
        fairface_labels=labels_dir / "fairface_labels.csv",
        ratings=labels_dir / "scut_ratings.csv",
        truth=labels_dir / "demo_truth.csv",
        n_images=spec.n_images,
    )
    _write_if_changed(dataset.fairface_labels, _csv_bytes(FAIRFACE_HEADER, fairface_rows))
    _write_if_changed(dataset.ratings, _csv_bytes(SCUT_HEADER, rating_rows))
    _write_if_changed(dataset.truth, _csv_bytes(TRUTH_HEADER, truth_rows))
    return dataset
