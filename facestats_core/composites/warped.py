"""Composites straight from the source images: landmark-warped, eye-aligned or plain.

:func:`composite_from_members` averages members given as ``(member id, image path,
68 landmarks and/or eyes in that image's pixel coordinates)`` — wherever the
landmarks came from — into a ``size`` square, resampling each source image once:

* ``warp``: pass 1 reads only landmarks and keeps the running mean of the
  eye-aligned shapes (:mod:`~facestats_core.composites.mean_shape`); the mean shape
  is triangulated once (:func:`~facestats_core.composites.mesh.build_mesh`); pass 2
  warps every face piecewise-affinely onto it and adds it to a float accumulator.
  A member without 68 landmarks but with eyes is eye-aligned instead (recorded in
  ``eyes_fallback``); one with neither is skipped.
* ``eyes``: similarity on the two eye centres only (today's alignment, at ``size``).
* ``none``: the centred square of each image, resized.

One image is in memory at a time; members are visited in the order given (sort them
for reproducible bytes). ``background="transparent"`` makes everything outside the
mean shape's face hull transparent (RGBA output).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from facestats_core.composites.average import WeightedMeanAccumulator, to_uint8
from facestats_core.composites.filter_spec import COMPOSITE_METHODS
from facestats_core.composites.mean_shape import ShapeMean, frame_shape
from facestats_core.composites.mesh import WarpMesh, build_mesh, pixel_centres
from facestats_core.composites.warp import (
    bilinear_sample,
    check_landmarks,
    eye_align,
    eye_centres,
    frame_transform,
    load_pixels,
    reduction_factor,
    scale_of,
    to_reduced,
    warp_face,
)
from facestats_core.faces.alignment import DEFAULT_EYE_TARGETS, Point

METHODS: tuple[str, ...] = COMPOSITE_METHODS
BACKGROUNDS: tuple[str, ...] = ("average", "transparent")


@dataclass(frozen=True)
class Member:
    """One face of a composite: ``image_path`` (Path or UPath), ``landmarks`` ``(68, 2)`` (iBUG
    order) and/or ``eyes`` ``(2, 2)`` (image-left eye first), in that image's pixel coordinates."""

    member_id: str
    image_path: Any
    landmarks: np.ndarray | None = None
    eyes: np.ndarray | None = None


@dataclass(frozen=True)
class WarpSettings:
    """Output side, eye targets (fractions of the side) and background (``average``/``transparent``)."""

    size: int = 512
    eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS
    background: str = "average"

    def __post_init__(self) -> None:
        if not 32 <= self.size <= 4096:
            raise ValueError(f"composite size must be in [32, 4096], got {self.size}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")


@dataclass(frozen=True)
class MemberComposite:
    """The result: ``image`` (RGB, or RGBA for a transparent background), member ids by how
    they were used, ``skipped`` as ``(id, reason)``, the ``mean_shape`` (warp only) and the
    ``face_mask`` (face hull of the mean shape; all true without one)."""

    image: Image.Image
    method: str
    warped: list[str] = field(default_factory=list)
    eyes_aligned: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)
    eyes_fallback: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    mean_shape: np.ndarray | None = None
    face_mask: np.ndarray | None = None

    @property
    def used(self) -> list[str]:
        return sorted(self.warped + self.eyes_aligned + self.plain)


def _mean_shape(members: Iterable[Member], settings: WarpSettings) -> tuple[np.ndarray | None, dict[str, str]]:
    """Pass 1: running mean of the members' frame shapes, and why some landmarks are unusable."""
    means = ShapeMean()
    bad: dict[str, str] = {}
    for member in members:
        if member.landmarks is None:
            continue
        try:
            means.add(frame_shape(member.landmarks, settings.size, settings.eye_targets))
        except ValueError as exc:
            bad[member.member_id] = f"bad_landmarks: {exc}"
    return (means.mean() if means.count else None), bad


def _member_eyes(member: Member) -> np.ndarray | None:
    """Eye centres from the 68 landmarks when usable, else the member's own eyes, else ``None``."""
    if member.landmarks is not None:
        try:
            return eye_centres(check_landmarks(member.landmarks))
        except ValueError:
            pass
    return None if member.eyes is None else np.asarray(member.eyes, dtype=np.float64).reshape(2, 2)


def _warp_one(member: Member, mesh: WarpMesh, settings: WarpSettings) -> tuple[np.ndarray, np.ndarray]:
    points = check_landmarks(member.landmarks)  # type: ignore[arg-type]
    factor = reduction_factor(scale_of(frame_transform(eye_centres(points), settings.size, settings.eye_targets)))
    pixels = load_pixels(member.image_path, factor)
    return warp_face(pixels, to_reduced(points, factor), mesh, settings.eye_targets)


def _eyes_one(eyes: np.ndarray, member: Member, settings: WarpSettings) -> tuple[np.ndarray, np.ndarray]:
    factor = reduction_factor(scale_of(frame_transform(eyes, settings.size, settings.eye_targets)))
    pixels = load_pixels(member.image_path, factor)
    return eye_align(pixels, to_reduced(eyes, factor), settings.size, settings.eye_targets)


def _plain_one(member: Member, settings: WarpSettings) -> tuple[np.ndarray, np.ndarray]:
    """The centred square of the image, scaled to ``size`` (what an unaligned average uses)."""
    with member.image_path.open("rb") as fh:
        width, height = Image.open(fh).size
    side = min(width, height)
    factor = reduction_factor(settings.size / side)
    pixels = load_pixels(member.image_path, factor)
    h, w = pixels.shape[:2]
    scale = min(w, h) / settings.size
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    src = (pixel_centres(settings.size) - (settings.size - 1) / 2.0) * scale + centre
    return bilinear_sample(pixels, src[:, 0].astype(np.float32), src[:, 1].astype(np.float32))


def _check_reiterable(members: Iterable[Member]) -> None:
    if isinstance(members, Iterator):
        raise TypeError("members are read twice: pass a list or another re-iterable, not an iterator")


def composite_from_members(
    members: Iterable[Member], method: str = "warp", settings: WarpSettings = WarpSettings()
) -> MemberComposite:
    """Average ``members`` by ``method`` (``warp``, ``eyes`` or ``none``); see the module docstring.

    Members that cannot be used are listed in ``skipped`` with a reason (``no_landmarks``,
    ``bad_landmarks: …``, ``read_error: …``); a warp that finds no member with usable 68
    landmarks raises ``ValueError`` (the caller picks another method).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_reiterable(members)
    mesh: WarpMesh | None = None
    mean_shape: np.ndarray | None = None
    bad: dict[str, str] = {}
    if method == "warp":
        mean_shape, bad = _mean_shape(members, settings)
        if mean_shape is None:
            raise ValueError("no member has usable 68-point landmarks: a warped composite needs some")
        mesh = build_mesh(mean_shape, settings.size)
    acc = WeightedMeanAccumulator(settings.size)
    result: dict[str, list[Any]] = {k: [] for k in ("warped", "eyes_aligned", "plain", "eyes_fallback", "skipped")}
    for member in members:
        key = member.member_id
        try:
            if method == "none":
                values, inside = _plain_one(member, settings)
                result["plain"].append(key)
            elif mesh is not None and member.landmarks is not None and key not in bad:
                values, inside = _warp_one(member, mesh, settings)
                result["warped"].append(key)
            else:
                eyes = _member_eyes(member)
                if eyes is None:
                    result["skipped"].append((key, bad.get(key, "no_landmarks")))
                    continue
                values, inside = _eyes_one(eyes, member, settings)
                if method == "warp":
                    result["eyes_fallback"].append((key, bad.get(key, "no 68-point landmarks")))
                result["eyes_aligned"].append(key)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            result["skipped"].append((key, f"read_error: {type(exc).__name__}: {exc}"))
            continue
        acc.add(values, inside)
    mean, covered = acc.mean()
    face_mask = mesh.face_mask if mesh is not None else np.ones_like(covered)
    return MemberComposite(
        image=_to_image(mean, covered & face_mask if settings.background == "transparent" else None),
        method=method,
        mean_shape=mean_shape,
        face_mask=face_mask,
        **result,
    )


def _to_image(mean: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    rgb = to_uint8(mean)
    if alpha is None:
        return Image.fromarray(rgb, "RGB")
    return Image.fromarray(np.dstack([rgb, np.where(alpha, 255, 0).astype(np.uint8)]), "RGBA")
