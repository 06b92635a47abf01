"""Where a demo face's parts sit: the canonical (un-rotated) layout, the head outline, eye centres,
exact-centre ellipses, the affine map from the 2x drawing canvas to the output image, and the
68-landmark truth mapped like the eyes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from facestats_demo.colours import RGB
from facestats_demo.landmarks import Point, canonical_landmarks68
from facestats_demo.traits import FaceTraits

EyePair = tuple[Point, Point]


@dataclass(frozen=True)
class Geometry:
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


def face_geometry(traits: FaceTraits, canvas: int) -> Geometry:
    s = float(canvas)
    child = traits.child
    hw = 0.205 * s * (1.0 + 0.06 * child)
    hh = 0.27 * s * (1.0 - 0.1 * child)
    cy = 0.5 * s
    eye_w = hw * 0.19 * traits.eye_scale * traits.eye_width * (1.0 + 0.35 * child)
    return Geometry(
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


def head_outline(g: Geometry, traits: FaceTraits, n: int = 96, grow: float = 0.0) -> list[Point]:
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


def ellipse_box(cx: float, cy: float, rx: float, ry: float) -> tuple[int, int, int, int]:
    """Integer bounding box centred exactly on the rounded centre.

    ImageDraw truncates float coordinates, so centring is exact only with an
    integer centre and integer radii (used for the eyes, whose centres are reported).
    """
    x, y = int(round(cx)), int(round(cy))
    a, b = max(1, int(round(rx))), max(1, int(round(ry)))
    return (x - a, y - b, x + a, y + b)


def ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, fill: RGB) -> None:
    draw.ellipse(ellipse_box(cx, cy, rx, ry), fill=fill)


def eye_centres(g: Geometry, traits: FaceTraits) -> tuple[Point, Point, float, float]:
    """Canonical left/right eye centres and per-eye size factors (asymmetry)."""
    a = traits.asymmetry
    dy = a * 0.016 * g.unit
    left = (float(round(g.cx - g.eye_dx - a * 0.006 * g.unit)), float(round(g.eye_y - dy / 2.0)))
    right = (float(round(g.cx + g.eye_dx)), float(round(g.eye_y + dy / 2.0)))
    return left, right, 1.0 + 0.08 * a, 1.0 - 0.08 * a


def forward_affine(traits: FaceTraits, canvas: int) -> np.ndarray:
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


def to_output(forward: np.ndarray, point: Point) -> Point:
    """A canonical drawing point in the output image (the ``2x`` canvas moved by ``forward``)."""
    # drawing coords have pixel centres at integers -> continuous +0.5; 2x -> 1x; back to index
    q = forward @ np.array([point[0] + 0.5, point[1] + 0.5, 1.0])
    return (float(q[0]) / 2.0 - 0.5, float(q[1]) / 2.0 - 0.5)


def face_landmarks68(traits: FaceTraits, size: int) -> np.ndarray:
    """The 68 iBUG landmarks ``(68, 2)`` of the face ``draw_traits(traits, size, …)`` draws,
    in output pixel-index coordinates (mapped like the eyes; see :mod:`facestats_demo.landmarks`)."""
    canvas = 2 * size
    g = face_geometry(traits, canvas)
    left, right, left_f, right_f = eye_centres(g, traits)
    points = canonical_landmarks68(g, traits, (left, right), (left_f, right_f))
    forward = forward_affine(traits, canvas)
    return np.array([to_output(forward, (float(x), float(y))) for x, y in points])
