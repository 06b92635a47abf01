"""The features of a demo face drawn on its canonical layout: eyes (with their lids), brows, nose and
mouth, and the beard; each reads only the face's traits and geometry."""

from __future__ import annotations

import numpy as np
from PIL import ImageDraw

from facestats_demo.colours import mix, shade
from facestats_demo.geometry import Geometry, Point, ellipse, ellipse_box, head_outline
from facestats_demo.traits import FaceTraits

def draw_eye(
    draw: ImageDraw.ImageDraw,
    centre: Point,
    g: Geometry,
    traits: FaceTraits,
    size_factor: float,
    side: float,
) -> None:
    x, y = centre
    ew, eh = g.eye_w * size_factor, g.eye_h * size_factor
    box = ellipse_box(x, y, ew, eh)
    draw.ellipse(box, fill=(246, 244, 240))
    iris_r = min(eh * 0.92, ew * 0.55)
    ellipse(draw, x, y, iris_r, iris_r, traits.iris)
    ellipse(draw, x, y, iris_r * 0.45, iris_r * 0.45, (12, 10, 10))
    ellipse(draw, x + iris_r * 0.3, y - iris_r * 0.3, iris_r * 0.18, iris_r * 0.18, (255, 255, 255))
    # eyelids: thin outline, thicker upper lid (monolid: heavy, flat)
    lid = (46, 34, 30)
    lid_w = max(1, int(round(g.unit * (0.006 if traits.monolid else 0.004))))
    draw.arc(box, 180, 360, fill=lid, width=lid_w)
    draw.arc(box, 0, 180, fill=shade(traits.skin, 0.7), width=1)
    if not traits.monolid:
        draw.arc(
            (x - ew * 1.05, y - eh * 1.6, x + ew * 1.05, y + eh * 0.6),
            200,
            340,
            fill=shade(traits.skin, 0.78),
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


def draw_brows(
    draw: ImageDraw.ImageDraw, eyes: tuple[Point, Point], g: Geometry, traits: FaceTraits
) -> None:
    colour = mix(traits.hair, (40, 32, 28), 0.25 * (1.0 - traits.grey))
    if traits.child > 0.9:
        colour = mix(colour, traits.skin, 0.6)
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


def draw_nose_mouth(draw: ImageDraw.ImageDraw, g: Geometry, traits: FaceTraits) -> None:
    child = traits.child
    a = traits.asymmetry
    nose_y = g.cy + g.hh * (0.3 - 0.12 * child)
    nw = g.hw * 0.17 * traits.nose_width * (1.0 - 0.35 * child)
    nx = g.cx + a * 0.006 * g.unit
    shadow = shade(traits.skin, 0.8)
    width = max(1, int(round(g.unit * 0.004)))
    draw.line(
        [(nx - nw * 0.2, g.eye_y + g.eye_h), (nx - nw * 0.35, nose_y - g.hh * 0.05)], fill=shadow, width=width
    )
    draw.arc((nx - nw, nose_y - nw * 0.6, nx + nw, nose_y + nw * 0.5), 20, 160, fill=shadow, width=width)
    for side in (-1.0, 1.0):
        ellipse(
            draw, nx + side * nw * 0.45, nose_y + nw * 0.05, nw * 0.16, nw * 0.1, shade(traits.skin, 0.55)
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
        fill=shade(lips, 0.55),
        width=width,
        joint="curve",
    )


def draw_beard(draw: ImageDraw.ImageDraw, g: Geometry, traits: FaceTraits) -> None:
    if traits.beard == "none":
        return
    colour = traits.hair if traits.beard == "full" else mix(traits.hair, traits.skin, 0.55)
    outline = head_outline(g, traits, n=120, grow=0.01)
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
        fill=mix(colour, traits.skin, 0.4),
    )
