"""68-point landmark truth of the demo faces (iBUG 300-W order), from the drawing geometry.

:func:`canonical_landmarks68` places the points on what :mod:`facestats_demo.drawing`
draws — the jaw on the lower head outline, brows on the brow strokes, the nose
bridge and base on the nose, six points on each eye ellipse (their mean is the
reported eye centre), the lip outline and the mouth line — in the canonical
(un-rotated) drawing canvas. ``geometry.face_landmarks68`` maps them to the output
image like the eyes.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

Point = tuple[float, float]


class FaceGeometry(Protocol):
    """The canonical layout fields of ``geometry.Geometry``."""

    cx: float
    cy: float
    hw: float
    hh: float
    eye_y: float
    eye_w: float
    eye_h: float
    unit: float


class FaceShape(Protocol):
    """The ``FaceTraits`` fields the landmarks depend on."""

    child: float
    asymmetry: float
    nose_width: float
    lip_thickness: float
    smile: float
    jaw_width: float
    jaw_square: float


def jaw_points(g: FaceGeometry, shape: FaceShape) -> np.ndarray:
    """Points 0-16 on the lower head outline (same curve as ``geometry.head_outline``)."""
    out = []
    for t in np.linspace(math.pi, 0.0, 17):
        c, s = math.cos(t), max(0.0, math.sin(t))
        e = 2.0 / shape.jaw_square
        taper = 1.0 - (1.0 - shape.jaw_width) * s
        out.append((g.cx + g.hw * taper * math.copysign(abs(c) ** e, c), g.cy + g.hh * s**e))
    return np.array(out)


def brow_points(g: FaceGeometry, eyes: tuple[Point, Point]) -> np.ndarray:
    """Points 17-26: five per brow, image-left to image-right (as ``features.draw_brows`` strokes)."""
    out: list[Point] = []
    for (x, y), side in zip(eyes, (-1.0, 1.0), strict=True):
        top = y - g.eye_h - g.eye_w * 0.55
        inner = np.array((x - side * g.eye_w * 1.0, top + g.eye_w * 0.18))
        middle = np.array((x, top - g.eye_w * 0.05))
        outer = np.array((x + side * g.eye_w * 1.15, top + g.eye_w * 0.15))
        stroke = [outer, (outer + middle) / 2, middle, (middle + inner) / 2, inner]
        out.extend(tuple(p) for p in (stroke if side < 0 else stroke[::-1]))
    return np.array(out)


def nose_points(g: FaceGeometry, shape: FaceShape) -> np.ndarray:
    """Points 27-35: bridge from between the eyes to the tip, then the base left to right."""
    nose_y = g.cy + g.hh * (0.3 - 0.12 * shape.child)
    nw = g.hw * 0.17 * shape.nose_width * (1.0 - 0.35 * shape.child)
    nx = g.cx + shape.asymmetry * 0.006 * g.unit
    bridge = [(nx, g.eye_y + (nose_y - g.eye_y) * k / 3.0) for k in range(4)]
    base = [(nx + dx * nw, nose_y + dy * nw) for dx, dy in ((-0.75, 0.2), (-0.45, 0.35), (0.0, 0.45),
                                                             (0.45, 0.35), (0.75, 0.2))]
    return np.array(bridge + base)


def eye_points(centre: Point, half_width: float, half_height: float) -> np.ndarray:
    """Six points on an eye ellipse, clockwise on screen from its leftmost point; their mean is ``centre``."""
    x, y = centre
    a, b = max(1, round(half_width)), max(1, round(half_height))
    angles = np.radians([180.0, 120.0, 60.0, 0.0, -60.0, -120.0])
    return np.column_stack([x + a * np.cos(angles), y - b * np.sin(angles)])


def mouth_points(g: FaceGeometry, shape: FaceShape) -> np.ndarray:
    """Points 48-67: lip outline (48-59) and inner lip line (60-67), as ``features.draw_nose_mouth`` draws them."""
    child, a = shape.child, shape.asymmetry
    mouth_y = g.cy + g.hh * (0.56 - 0.08 * child)
    mw = g.hw * 0.36 * (1.0 - 0.25 * child) * (1.0 + 0.08 * shape.lip_thickness)
    lt = g.hh * 0.045 * shape.lip_thickness
    tilt = (a - 0.5) * 0.01 * g.unit
    smile = shape.smile * lt * 1.2

    def upper(u: float) -> float:
        corner = mouth_y - tilt if u < 0 else mouth_y + tilt
        return (1.0 - abs(u)) * (mouth_y - lt * 1.1) + abs(u) * corner

    def lower(u: float) -> float:
        return mouth_y + 0.1 * lt + 1.3 * lt * math.sqrt(max(0.0, 1.0 - (u / 0.8) ** 2))

    def line(u: float) -> float:
        end = mouth_y - tilt - smile if u < 0 else mouth_y + tilt - smile
        return (1.0 - abs(u)) * (mouth_y + smile * 0.3) + abs(u) * end

    outer = [(g.cx - mw, mouth_y - tilt)]
    outer += [(g.cx + u * mw, upper(u)) for u in (-2 / 3, -1 / 3, 0.0, 1 / 3, 2 / 3)]
    outer += [(g.cx + mw, mouth_y + tilt)]
    outer += [(g.cx + u * mw, lower(u)) for u in (2 / 3, 1 / 3, 0.0, -1 / 3, -2 / 3)]
    inner = [(g.cx - 0.9 * mw, line(-0.9))]
    inner += [(g.cx + u * mw, line(u) - 0.15 * lt) for u in (-1 / 3, 0.0, 1 / 3)]
    inner += [(g.cx + 0.9 * mw, line(0.9))]
    inner += [(g.cx + u * mw, line(u) + 0.15 * lt) for u in (1 / 3, 0.0, -1 / 3)]
    return np.array(outer + inner)


def canonical_landmarks68(
    g: FaceGeometry, shape: FaceShape, eyes: tuple[Point, Point], eye_factors: tuple[float, float]
) -> np.ndarray:
    """The 68 points ``(68, 2)`` in canonical drawing coordinates; ``eyes`` and ``eye_factors``
    as returned by ``geometry.eye_centres``."""
    eye_rings = [eye_points(c, g.eye_w * f, g.eye_h * f) for c, f in zip(eyes, eye_factors, strict=True)]
    return np.vstack(
        [jaw_points(g, shape), brow_points(g, eyes), nose_points(g, shape), *eye_rings, mouth_points(g, shape)]
    )
