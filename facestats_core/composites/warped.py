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

One image is in memory at a time per worker thread; members are visited in the order given (sort
them for reproducible bytes). :func:`composites_from_members` builds several composites in one
pass: a member in several of them is decoded once and sampled into each, every composite keeping
its own mean shape. ``background="transparent"`` makes everything outside the
mean shape's face hull transparent (RGBA output).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from facestats_core.composites.average import WeightedMeanAccumulator, to_uint8
from facestats_core.composites.filter_spec import COMPOSITE_METHODS
from facestats_core.composites.mean_shape import ShapeMean, frame_shape
from facestats_core.composites.mesh import WarpMesh, build_mesh, pixel_centres
from facestats_core.composites.warp import (
    SourcePixels,
    bilinear_sample,
    check_landmarks,
    eye_align,
    eye_centres,
    frame_transform,
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


def _warp_one(source: SourcePixels, member: Member, mesh: WarpMesh, settings: WarpSettings
              ) -> tuple[np.ndarray, np.ndarray]:
    points = check_landmarks(member.landmarks)  # type: ignore[arg-type]
    factor = reduction_factor(scale_of(frame_transform(eye_centres(points), settings.size, settings.eye_targets)))
    return warp_face(source.packed(factor), to_reduced(points, factor), mesh, settings.eye_targets)


def _eyes_one(source: SourcePixels, eyes: np.ndarray, settings: WarpSettings) -> tuple[np.ndarray, np.ndarray]:
    factor = reduction_factor(scale_of(frame_transform(eyes, settings.size, settings.eye_targets)))
    return eye_align(source.packed(factor), to_reduced(eyes, factor), settings.size, settings.eye_targets)


def _plain_one(source: SourcePixels, settings: WarpSettings) -> tuple[np.ndarray, np.ndarray]:
    """The centred square of the image, scaled to ``size`` (what an unaligned average uses)."""
    width, height = source.stored_size
    factor = reduction_factor(settings.size / min(width, height))
    pixels = source.pixels(factor)
    h, w = pixels.shape[:2]
    scale = min(w, h) / settings.size
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    src = (pixel_centres(settings.size) - (settings.size - 1) / 2.0) * scale + centre
    return bilinear_sample(pixels, src[:, 0].astype(np.float32), src[:, 1].astype(np.float32))


def _check_reiterable(members: Iterable[Member]) -> None:
    if isinstance(members, Iterator):
        raise TypeError("members are read twice: pass a list or another re-iterable, not an iterator")


@dataclass
class _Job:
    """One composite being accumulated: its method, mesh (warp), the reasons some landmarks are
    unusable, the running sums and the member ids by how they were used."""

    method: str
    settings: WarpSettings
    mesh: WarpMesh | None
    mean_shape: np.ndarray | None
    bad: dict[str, str]
    acc: WeightedMeanAccumulator
    result: dict[str, list[Any]] = field(default_factory=lambda: {
        k: [] for k in ("warped", "eyes_aligned", "plain", "eyes_fallback", "skipped")})

    def finish(self) -> MemberComposite:
        mean, covered = self.acc.mean()
        face_mask = self.mesh.face_mask if self.mesh is not None else np.ones_like(covered)
        return MemberComposite(
            image=_to_image(mean, covered & face_mask if self.settings.background == "transparent" else None),
            method=self.method, mean_shape=self.mean_shape, face_mask=face_mask, **self.result,
        )


def _job(members: Iterable[Member], method: str, settings: WarpSettings) -> _Job:
    """Pass 1 of one composite: check the method; for ``warp`` the mean shape and its mesh."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    mesh: WarpMesh | None = None
    mean_shape: np.ndarray | None = None
    bad: dict[str, str] = {}
    if method == "warp":
        mean_shape, bad = _mean_shape(members, settings)
        if mean_shape is None:
            raise ValueError("no member has usable 68-point landmarks: a warped composite needs some")
        mesh = build_mesh(mean_shape, settings.size)
    return _Job(method, settings, mesh, mean_shape, bad, WeightedMeanAccumulator(settings.size))


_Outcome = tuple[str, Any, Any]
"""How one member went into one composite: ``(kind, values, inside)``, or ``("skipped", reason, None)``."""


def _member_outcomes(member: Member, jobs: list[_Job]) -> list[_Outcome]:
    """``member`` sampled into each of ``jobs``, its image decoded at most once for all of them."""
    source = SourcePixels(member.image_path)
    outcomes: list[_Outcome] = []
    for job in jobs:
        key, settings = member.member_id, job.settings
        try:
            if job.method == "none":
                outcomes.append(("plain", *_plain_one(source, settings)))
            elif job.mesh is not None and member.landmarks is not None and key not in job.bad:
                outcomes.append(("warped", *_warp_one(source, member, job.mesh, settings)))
            else:
                eyes = _member_eyes(member)
                if eyes is None:
                    outcomes.append(("skipped", job.bad.get(key, "no_landmarks"), None))
                    continue
                outcomes.append(("eyes_aligned", *_eyes_one(source, eyes, settings)))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            outcomes.append(("skipped", f"read_error: {type(exc).__name__}: {exc}", None))
    return outcomes


def _add(job: _Job, member: Member, outcome: _Outcome) -> None:
    kind, values, inside = outcome
    key = member.member_id
    if kind == "skipped":
        job.result["skipped"].append((key, values))
        return
    if kind == "eyes_aligned" and job.method == "warp":
        job.result["eyes_fallback"].append((key, job.bad.get(key, "no 68-point landmarks")))
    job.result[kind].append(key)
    job.acc.add(values, inside)


def _run(work: Iterable[tuple[Member, list[int]]], jobs: list[_Job], workers: int) -> None:
    """Sample each ``(member, job indices)`` into its jobs, ``workers`` members at a time in threads
    (decoding and numpy release the GIL), and add the results in the order given, so the float sums
    are the same whatever ``workers`` is. A sliding window: the next member starts as soon as a thread
    is free, and at most ``2 × workers`` members' samples are held at once."""
    def outcomes(item: tuple[Member, list[int]]) -> list[_Outcome]:
        return _member_outcomes(item[0], [jobs[i] for i in item[1]])

    def add(item: tuple[Member, list[int]], results: list[_Outcome]) -> None:
        for index, outcome in zip(item[1], results, strict=True):
            _add(jobs[index], item[0], outcome)

    if workers <= 1:
        for item in work:
            add(item, outcomes(item))
        return
    pending: deque[tuple[tuple[Member, list[int]], Future[list[_Outcome]]]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for item in work:
            pending.append((item, pool.submit(outcomes, item)))
            if len(pending) >= 2 * workers:
                done, future = pending.popleft()
                add(done, future.result())
        while pending:
            done, future = pending.popleft()
            add(done, future.result())


def composite_from_members(
    members: Iterable[Member], method: str = "warp", settings: WarpSettings = WarpSettings(), workers: int = 1,
) -> MemberComposite:
    """Average ``members`` by ``method`` (``warp``, ``eyes`` or ``none``); see the module docstring.

    Members that cannot be used are listed in ``skipped`` with a reason (``no_landmarks``,
    ``bad_landmarks: …``, ``read_error: …``); a warp that finds no member with usable 68
    landmarks raises ``ValueError`` (the caller picks another method). ``workers`` threads
    sample members in parallel; the result does not depend on it.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_reiterable(members)
    job = _job(members, method, settings)
    _run(((member, [0]) for member in members), [job], workers)
    return job.finish()


def composites_from_members(
    groups: Sequence[tuple[Sequence[Member], str, WarpSettings]], workers: int = 1,
) -> list[MemberComposite | ValueError]:
    """Several composites in one pass over their members: ``groups`` are ``(members, method, settings)``;
    each result is what :func:`composite_from_members` gives for that group (or the
    ``ValueError`` it raises), byte for byte when each group's members are sorted by id.

    Every composite keeps its own mean shape and mesh; a member in several groups is read and
    decoded once (each box-reduced copy made once) and sampled into each of its composites.
    Members are visited in id order; memory is one running sum per composite plus the samples
    of at most ``2 × workers`` members, whatever the number of faces.
    """
    jobs: list[_Job | ValueError] = []
    for members, method, settings in groups:
        try:
            jobs.append(_job(members, method, settings))
        except ValueError as exc:
            jobs.append(exc)
    index: dict[str, tuple[Member, list[int]]] = {}
    live: list[_Job] = []
    positions: dict[int, int] = {}
    for position, ((members, _, _), job) in enumerate(zip(groups, jobs, strict=True)):
        if isinstance(job, ValueError):
            continue
        positions[position] = len(live)
        live.append(job)
        for member in members:
            index.setdefault(member.member_id, (member, []))[1].append(positions[position])
    _run((index[key] for key in sorted(index)), live, workers)
    return [job if isinstance(job, ValueError) else job.finish() for job in jobs]


def _to_image(mean: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    rgb = to_uint8(mean)
    if alpha is None:
        return Image.fromarray(rgb, "RGB")
    return Image.fromarray(np.dstack([rgb, np.where(alpha, 255, 0).astype(np.uint8)]), "RGBA")
