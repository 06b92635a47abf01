"""One demo face as an image: head, hair, skin marks and features drawn on a 2x transparent canvas,
moved by the face's pose onto a gradient background, downsampled and given a little pixel noise.

:func:`draw_traits` renders a :class:`~facestats_demo.traits.FaceTraits` with the generator that
drew it (the skin marks and the pixel noise come from it, after the traits); :func:`render_face`
draws traits from labels first.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from facestats_demo.colours import mix, shade
from facestats_demo.features import draw_beard, draw_brows, draw_eye, draw_nose_mouth
from facestats_demo.geometry import (
    EyePair,
    Geometry,
    Point,
    ellipse,
    eye_centres,
    face_geometry,
    forward_affine,
    head_outline,
    to_output,
)
from facestats_demo.traits import FaceTraits, sample_traits

def _draw_back(draw: ImageDraw.ImageDraw, g: Geometry, traits: FaceTraits) -> None:
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
        fill=shade(traits.skin, 0.86),
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
        fill=shade(traits.skin, 0.86),
    )
    ear = shade(traits.skin, 0.92)
    for side in (-1.0, 1.0):
        ellipse(draw, g.cx + side * g.hw * 0.98, g.cy + g.hh * 0.02, g.hw * 0.13, g.hh * 0.17, ear)


def _hair_cap(g: Geometry, thickness: float, hairline: float) -> list[Point]:
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


def _draw_hair_front(draw: ImageDraw.ImageDraw, g: Geometry, traits: FaceTraits) -> None:
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


def _draw_bow(draw: ImageDraw.ImageDraw, g: Geometry, traits: FaceTraits) -> None:
    """A baby girl's hair bow: two triangles and a knot on the crown, slightly to one side."""
    if traits.bow is None:
        return
    x, y = g.cx + g.hw * 0.3, g.cy - g.hh * 0.92
    w, h = g.hw * 0.42, g.hh * 0.2
    for side in (-1.0, 1.0):
        draw.polygon([(x, y), (x + side * w, y - h), (x + side * w, y + h)], fill=traits.bow)
    ellipse(draw, x, y, w * 0.3, h * 0.55, shade(traits.bow, 0.8))


def _draw_skin_marks(
    draw: ImageDraw.ImageDraw, g: Geometry, traits: FaceTraits, rng: np.random.Generator
) -> None:
    """Blemishes (skin smoothness) and age wrinkles."""
    spot = mix(shade(traits.skin, 0.78), (150, 60, 60), 0.25)
    for _ in range(int(round(traits.blemish * 16))):
        x = g.cx + rng.uniform(-0.7, 0.7) * g.hw
        y = g.cy + rng.uniform(-0.1, 0.55) * g.hh
        r = rng.uniform(0.005, 0.009) * g.unit
        ellipse(draw, x, y, r, r, spot)
    w = traits.wrinkles
    if w <= 0.0:
        return
    line = shade(traits.skin, 0.74)
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


def _background(traits: FaceTraits, canvas: int) -> Image.Image:
    """Vertical colour gradient with a slight horizontal tilt (built small, then upscaled)."""
    t = np.linspace(0.0, 1.0, 16, dtype=np.float32)
    ramp = np.clip(t[:, None] * 0.85 + t[None, :] * 0.15, 0.0, 1.0)[..., None]
    top = np.array(traits.bg_top, dtype=np.float32)
    bottom = np.array(traits.bg_bottom, dtype=np.float32)
    pixels = np.clip(np.rint(top * (1.0 - ramp) + bottom * ramp), 0, 255).astype(np.uint8)
    small = Image.fromarray(pixels, "RGB")
    return small.resize((canvas, canvas), Image.Resampling.BILINEAR).convert("RGBA")


def _draw_face_layer(
    traits: FaceTraits, canvas: int, rng: np.random.Generator
) -> tuple[Image.Image, EyePair]:
    """Draw the canonical face on a transparent layer; return it and the eye centres."""
    g = face_geometry(traits, canvas)
    layer = Image.new("RGBA", (canvas, int(canvas * 1.4)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    _draw_back(draw, g, traits)
    draw.polygon(head_outline(g, traits), fill=traits.skin)
    _draw_skin_marks(draw, g, traits, rng)
    _draw_hair_front(draw, g, traits)
    left, right, left_f, right_f = eye_centres(g, traits)
    draw_eye(draw, left, g, traits, left_f, -1.0)
    draw_eye(draw, right, g, traits, right_f, 1.0)
    draw_brows(draw, (left, right), g, traits)
    draw_beard(draw, g, traits)
    draw_nose_mouth(draw, g, traits)
    return layer, (left, right)


def draw_traits(traits: FaceTraits, size: int, rng: np.random.Generator) -> tuple[Image.Image, EyePair]:
    """Render ``traits`` at ``size`` px (drawn at 2x, LANCZOS-downsampled)."""
    canvas = 2 * size
    layer, (left, right) = _draw_face_layer(traits, canvas, rng)
    forward = forward_affine(traits, canvas)
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

    return image, (to_output(forward, left), to_output(forward, right))


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
    return draw_traits(traits, size, rng)
