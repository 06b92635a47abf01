"""Stable face ids: the image's content id plus where the face sits in it."""

from __future__ import annotations

import re

_FACE_ID = re.compile(r"^[0-9a-f]+_\d{3}_\d{3}$")


def make_face_id(image_id: str, box: tuple[float, float, float, float], width: int, height: int) -> str:
    """``<image_id>_<x>_<y>``: the box centre in thousandths of the image's width and height.

    Stable across runs (same image bytes, same detector → same id) and readable; two faces
    of one image share an id only if their centres are within 0.1 % of the image of each other.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    cx = (box[0] + box[2]) / 2.0 / width
    cy = (box[1] + box[3]) / 2.0 / height
    x = min(max(int(cx * 1000), 0), 999)
    y = min(max(int(cy * 1000), 0), 999)
    return f"{image_id}_{x:03d}_{y:03d}"


def is_face_id(value: str) -> bool:
    """Whether ``value`` looks like a face id made by :func:`make_face_id` (hex image id)."""
    return bool(_FACE_ID.match(value))
