"""Colours of the demo faces: RGB tuples, blends and seeded draws (the generator's only colour maths)."""

from __future__ import annotations

import colorsys

import numpy as np

RGB = tuple[int, int, int]


def choice(rng: np.random.Generator, palette: tuple[tuple[RGB, float], ...]) -> RGB:
    """Pick a colour from a weighted palette."""
    weights = np.array([w for _, w in palette], dtype=float)
    index = int(rng.choice(len(palette), p=weights / weights.sum()))
    return palette[index][0]


def clip_rgb(values: np.ndarray) -> RGB:
    clipped = np.clip(np.rint(values), 0, 255).astype(int)
    return (int(clipped[0]), int(clipped[1]), int(clipped[2]))


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend ``a*(1-t) + b*t``."""
    return clip_rgb(np.array(a, dtype=float) * (1.0 - t) + np.array(b, dtype=float) * t)


def shade(colour: RGB, factor: float) -> RGB:
    return clip_rgb(np.array(colour, dtype=float) * factor)


def jitter(colour: RGB, rng: np.random.Generator, brightness_sd: float, channel_sd: float) -> RGB:
    base = np.array(colour, dtype=float) * rng.normal(1.0, brightness_sd)
    return clip_rgb(base + rng.normal(0.0, channel_sd, size=3))


def hsv_colour(
    rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float], hue: tuple[float, float] = (0.0, 1.0)
) -> RGB:
    """A colour drawn uniformly in HSV (hue, then saturation, then value, from ``rng``)."""
    r, g, b = colorsys.hsv_to_rgb(float(rng.uniform(*hue)), float(rng.uniform(*sat)), float(rng.uniform(*val)))
    return clip_rgb(np.array([r, g, b]) * 255.0)
