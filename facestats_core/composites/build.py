"""Build one composite: parse its spec, select the faces, average them, write picture + json.

:func:`build_composite` is the whole job for one canonical filter spec (a
partition key of the ``composite`` asset): it checks the key, selects the
usable faces of the master table (faces with a chip), averages their composite chips
by the composite method, measures sharpness and alignment coverage, and writes ``<slug>.<fmt>`` and ``<slug>.json``
under the composites folder. By default only faces judged ``good`` are members; the others are
recorded in the sidecar with their reasons (:mod:`facestats_core.composites.quality`; the spec's
``quality`` key overrides it). Anything that stops a composite raises
:class:`CompositeError`, whose message and ``metadata`` say why.

Methods (the spec's ``method`` key, else :attr:`CompositeSettings.method`, else
``none`` when alignment is off):

Every face contributes its composite chip (cut from the original at full resolution,
see :mod:`facestats_core.faces.chips`) with its landmarks in chip pixels (``chip_landmarks``):

* ``warp``: faces with 68-point landmarks are warped onto the mean shape at
  :attr:`CompositeSettings.size` (:mod:`facestats_core.composites.warped`); selected
  faces with only eye landmarks are eye-aligned (``eyes_fallback`` in the sidecar).
  With no 68-point landmarks at all it falls back to ``eyes``.
* ``eyes``: each chip similarity-aligned so the eyes land on fixed points.
* ``none``: the chips as cut (centred square).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from PIL import Image

from facestats_core.composites.average import (
    composite_meta,
    composite_sharpness,
    write_composite,
)
from facestats_core.composites.confidence import DEFAULT_MIN_CONFIDENCE, confident_members
from facestats_core.composites.confidence import required_columns as confidence_columns
from facestats_core.composites.filter_spec import FilterSpec, FilterSpecError, parse_spec
from facestats_core.composites.quality import quality_faces, quality_hint
from facestats_core.composites.select import Selection, TooFewFacesError, select_usable
from facestats_core.composites.warped import Member, MemberComposite, WarpSettings, composites_from_members
from facestats_core.faces.alignment import AlignmentConfig
from facestats_core.faces.detection import eye_centres
from facestats_core.images.preprocess import laplacian_variance
from facestats_core.io.layout import Layout

NO_LANDMARKS_REASON = "without eye landmarks"
NO_LANDMARKS_HINT = (
    " No matching face has eye landmarks: configure FACESTATS_LANDMARKS, install "
    "dlib-bin + face-recognition-models (the detect extra), or use method=none."
)


class CompositeError(ValueError):
    """A composite cannot be built. ``metadata`` holds the counts behind it, when there are any
    (``matched``, ``usable``, ``excluded_no_landmarks``, ``min_faces`` for too few faces)."""

    def __init__(self, message: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.metadata: dict[str, Any] = dict(metadata or {})


@dataclass(frozen=True)
class CompositeSettings:
    """How composites are built: at least ``min_faces`` usable faces, ``relax`` filters when
    too few match, ``method`` (``warp``, ``eyes`` or ``none``) when the spec names none
    (``align = False`` makes that ``none``), eye targets of ``alignment``, composites of side
    ``size`` with ``background`` ``average`` or ``transparent`` (outside the face hull, warp
    only), written as ``image_format`` (``png`` or ``jpg``)."""

    min_faces: int = 10
    relax: bool = False
    align: bool = True
    image_format: str = "png"
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    method: str = "warp"
    size: int = 512
    background: str = "average"
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    """Predicted gender/ethnicity values count for a spec's terms only at this probability or more
    (:mod:`facestats_core.composites.confidence`; 0 counts every prediction)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"composite min_confidence must be in [0, 1], got {self.min_confidence}")


@dataclass(frozen=True)
class BuiltComposite:
    """A written composite: ``meta`` is its json sidecar (without ``image_file``), ``image_path``
    and ``json_path`` the files written, ``seconds`` the time from selection to writing."""


    meta: dict[str, Any]
    image_path: Any
    json_path: Any
    seconds: float
    """From selection to writing; composites built together share one averaging pass, which each
    one's seconds include."""


def composite_files(composites_dir: Any, spec: FilterSpec, fmt: str = "png") -> tuple[Any, Any]:
    """``(<slug>.<fmt>, <slug>.json)`` under ``composites_dir``; refuses anything outside it."""
    image, sidecar = composites_dir / f"{spec.slug}.{fmt}", composites_dir / f"{spec.slug}.json"
    for path in (image, sidecar):
        if path.parent != composites_dir or "/" in spec.slug or "\\" in spec.slug or ".." in spec.slug:
            raise CompositeError(f"composite path {path} would leave {composites_dir}")
    return image, sidecar


def parse_partition_key(key: str) -> FilterSpec:
    """The spec of a partition key, which must be a valid filter spec in canonical form."""
    try:
        spec = parse_spec(key)
    except FilterSpecError as exc:
        raise CompositeError(f"partition {key!r} is not a valid filter spec: {exc}") from exc
    if spec.canonical != key:
        raise CompositeError(
            f"partition {key!r} is not in canonical form (it should be {spec.canonical!r}); "
            "add specs with `facestats composites add` or the YAML sensor, which canonicalise them"
        )
    return spec


def _has_scores(faces: pl.DataFrame) -> bool:
    """Whether any face has an attractiveness score (none when attractiveness was skipped)."""
    return "attractiveness_raw" in faces.columns and faces["attractiveness_raw"].is_not_null().any()


def has_eyes() -> pl.Expr:
    """Master rows whose composite chip has landmarks to align on (2, 5 or 68 points)."""
    return pl.col("landmark_points").fill_null(0) > 0


def has_68() -> pl.Expr:
    """Master rows whose composite chip has 68 landmarks (what a warp needs)."""
    return pl.col("landmark_points").fill_null(0) == 68


def _select(key: str, spec: FilterSpec, faces: pl.DataFrame, settings: CompositeSettings, method: str
            ) -> tuple[Selection, int]:
    """Select the usable faces (with eye landmarks for ``eyes`` and ``warp``); too few raise
    :class:`CompositeError`."""
    try:
        if method in ("warp", "eyes"):
            return select_usable(faces, spec, settings.min_faces, settings.relax, usable=has_eyes(),
                                 excluded_reason=NO_LANDMARKS_REASON)
        return select_usable(faces, spec, settings.min_faces, settings.relax)
    except TooFewFacesError as exc:
        hint = NO_LANDMARKS_HINT if method != "none" and exc.excluded and exc.matched == 0 else ""
        raise CompositeError(
            str(exc) + hint,
            metadata={"matched": exc.matched + exc.excluded, "usable": exc.matched,
                      "excluded_no_landmarks": exc.excluded, "min_faces": exc.min_faces},
        ) from exc
    except ValueError as exc:
        raise CompositeError(f"cannot select faces for {key!r}: {exc}") from exc


def _select_or_fall_back(key: str, spec: FilterSpec, faces: pl.DataFrame, settings: CompositeSettings, method: str,
                         note: str) -> tuple[Selection, int, str, str]:
    """:func:`_select` by ``method``; when too few matching faces have eye landmarks for an aligned
    method the spec did not ask for by name, the chips as cut (``none``) with a note saying so."""
    try:
        selection, excluded = _select(key, spec, faces, settings, method)
        return selection, excluded, method, note
    except CompositeError as exc:
        matched = int(exc.metadata.get("matched", 0))
        if spec.method is not None or method == "none" or matched < settings.min_faces:
            raise
        note = "; ".join(filter(None, [note, f"only {exc.metadata.get('usable')} of {matched} matching faces "
                                            "have eye landmarks: the chips are averaged as cut"]))
        selection, excluded = _select(key, spec, faces, settings, "none")
        return selection, excluded, "none", note


def _confident_faces(faces: pl.DataFrame, spec: FilterSpec, min_confidence: float) -> tuple[pl.DataFrame, int]:
    """``faces`` without those whose predicted gender/ethnicity is too uncertain for ``spec``'s terms
    (:func:`~facestats_core.composites.confidence.confident_members`), and how many faces matching
    ``spec`` that leaves out. A master without prediction columns (labels only) is kept whole."""
    keep = confident_members(spec, min_confidence)
    if keep is None or not set(confidence_columns(spec)) <= set(faces.columns):
        return faces, 0
    try:
        left_out = faces.filter(spec.to_polars_expr() & ~keep).height
    except pl.exceptions.PolarsError:  # the spec's own columns are missing: _select says so
        return faces, 0
    return faces.filter(keep), left_out


def _value_counts(values: list[Any]) -> dict[str, int]:
    return dict(Counter(str(v) for v in values))


def alignment_stats(
    matched_rows: pl.DataFrame, used_rows: pl.DataFrame, excluded: int, settings: CompositeSettings,
    align: bool | None = None,
) -> dict[str, Any]:
    """The ``alignment`` block of the json sidecar: how faces were aligned and why some were left out.

    ``matched_rows`` are all faces matching the effective spec, ``used_rows`` the selected ones;
    ``align`` overrides ``settings.align`` (whether eye alignment was used).
    """
    config = settings.alignment
    align = settings.align if align is None else align
    not_aligned = matched_rows.filter(~has_eyes())
    return {
        "aligned": align,
        "source_images": "composite chips",
        "alignment_version": config.version if align else None,
        "output_size": settings.size,
        "eye_targets": [list(p) for p in config.eye_targets],
        "excluded_no_landmarks": excluded,
        "excluded_by_reason": {"no_landmarks": not_aligned.height} if align and not_aligned.height else {},
        "landmarks_source": _value_counts(used_rows["face_source"].to_list()),
    }


def composite_method(spec: FilterSpec, settings: CompositeSettings, has_landmarks: bool,
                     has_eyes: bool = True) -> tuple[str, str, str]:
    """``(requested, used, note)``: the spec's method, else the settings' (``none`` with alignment
    off); ``warp`` without any 68-point landmarks becomes ``eyes``, and ``eyes`` without any eye
    landmarks becomes ``none`` (``note`` says so)."""
    requested = spec.method or (settings.method if settings.align else "none")
    used, notes = requested, []
    if used == "warp" and not has_landmarks:
        used = "eyes"
        notes.append("no 68-point landmarks for any face: eye alignment instead")
    if used == "eyes" and not has_eyes:
        used = "none"
        notes.append("no eye landmarks for any face: the chips are averaged as cut")
    return requested, used, "; ".join(notes)


def chip_members(rows: pl.DataFrame, layout: Layout) -> list[Member]:
    """Members sorted by face id: the composite chip with its 68 landmarks (or eyes) in chip pixels."""
    members = []
    for row in rows.sort("face_id").iter_rows(named=True):
        points = row["chip_landmarks"]
        array = None if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        eyes = eye_centres(array)
        members.append(Member(
            row["face_id"], layout.chips_dir / row["composite_path"],
            landmarks=array if array is not None and len(array) == 68 else None,
            eyes=None if eyes is None else np.asarray(eyes, dtype=np.float64),
        ))
    return members


def warp_meta(result: MemberComposite, settings: WarpSettings) -> dict[str, Any]:
    """The sidecar fields of a warped composite: members by how they were used, why faces were
    skipped or eye-aligned, the mean shape (output pixels) and the output geometry."""
    return {
        "members": result.used,
        "warped": len(result.warped),
        "eyes_fallback": [list(item) for item in result.eyes_fallback],
        "skipped": [list(item) for item in result.skipped],
        "mean_shape": None if result.mean_shape is None else np.round(result.mean_shape, 2).tolist(),
        "composite_size": settings.size,
        "background": settings.background,
        "sharpness_face": round(laplacian_variance(result.image, mask=result.face_mask), 3),
    }


def _warp_settings(method: str, settings: CompositeSettings) -> WarpSettings:
    background = settings.background if method == "warp" else "average"
    return WarpSettings(settings.size, settings.alignment.eye_targets, background)


@dataclass(frozen=True)
class _Plan:
    """A composite chosen but not averaged yet: its spec, method and selected rows."""

    key: str
    spec: FilterSpec
    faces: pl.DataFrame
    unconfident: int
    requested: str
    method: str
    note: str
    selection: Selection
    excluded: int
    rows: pl.DataFrame
    started: float
    quality: dict[str, Any]


def _plan(key: str, usable: pl.DataFrame, settings: CompositeSettings) -> _Plan:
    """Parse ``key`` and select its faces among ``usable`` (master rows with a chip); raises
    :class:`CompositeError`."""
    spec = parse_partition_key(key)
    if spec.attractiveness is not None and not _has_scores(usable):
        raise CompositeError(
            f"filter spec {key!r} needs attractiveness scores and there are none: no ratings were configured "
            "(FACESTATS_RATINGS, a reference set with ratings, or a bundle with a regressor)",
            metadata={"matched": 0, "min_faces": settings.min_faces},
        )
    started = time.perf_counter()
    faces, quality = quality_faces(usable, spec)
    faces, unconfident = _confident_faces(faces, spec, settings.min_confidence)
    requested, method, note = composite_method(spec, settings, bool(faces.filter(has_68()).height),
                                               bool(faces.filter(has_eyes()).height))
    try:
        selection, excluded, method, note = _select_or_fall_back(key, spec, faces, settings, method, note)
    except CompositeError as exc:
        if not unconfident and not quality["excluded_quality"]:
            raise
        confidence = (f"; {unconfident} more matching faces were left out as predicted with probability below "
                      f"{settings.min_confidence:g} (FACESTATS_COMPOSITE_MIN_CONFIDENCE)") if unconfident else ""
        raise CompositeError(
            f"{exc}{confidence}{quality_hint(quality)}",
            metadata={**exc.metadata, "excluded_low_confidence": unconfident,
                      "excluded_quality": quality["excluded_quality"],
                      "excluded_quality_by_reason": quality["excluded_quality_by_reason"]},
        ) from exc
    rows = faces.filter(pl.col("face_id").is_in(selection.face_ids)).sort("face_id")
    return _Plan(key, spec, faces, unconfident, requested, method, note, selection, excluded, rows, started,
                 quality)


@dataclass(frozen=True)
class CompositeRun:
    """What :func:`build_composites` did: per key a :class:`BuiltComposite` or the
    :class:`CompositeError` that stopped it, and seconds spent ``select`` (parsing and
    selecting), ``average`` (the one pass: decode, warp, sum) and ``write`` (finishing and
    writing the files)."""

    results: dict[str, BuiltComposite | CompositeError]
    profile: dict[str, float]


def build_composites(keys: Sequence[str], master: pl.DataFrame, layout: Layout, settings: CompositeSettings,
                     workers: int = 1) -> CompositeRun:
    """Make and write the composites of partitions ``keys`` (canonical filter specs) from the face
    chips of ``master``, in one pass over their faces: each member chip is decoded once however
    many of the composites it is in, and sampled into each with that composite's own mean shape
    (:func:`~facestats_core.composites.warped.composites_from_members`, ``workers`` threads).
    Every picture is byte for byte what :func:`build_composite` makes of its key alone."""
    usable = master.filter(pl.col("chip_ok").fill_null(False))
    results: dict[str, BuiltComposite | CompositeError] = {}
    plans: list[_Plan] = []
    clock = time.perf_counter()
    for key in keys:
        try:
            plans.append(_plan(key, usable, settings))
        except CompositeError as exc:
            results[key] = exc
    profile = {"select": time.perf_counter() - clock}
    clock = time.perf_counter()
    members = {member.member_id: member for member in chip_members(
        pl.concat([plan.rows.select("face_id", "composite_path", "chip_landmarks") for plan in plans])
        .unique("face_id"), layout)} if plans else {}
    averaged = composites_from_members(
        [([members[face_id] for face_id in plan.rows["face_id"]], plan.method, _warp_settings(plan.method, settings))
         for plan in plans],
        workers=workers,
    )
    profile["average"] = time.perf_counter() - clock
    clock = time.perf_counter()
    for plan, result in zip(plans, averaged, strict=True):
        try:
            if isinstance(result, ValueError):
                raise CompositeError(f"filter spec {plan.key!r}: {result}") from result
            results[plan.key] = _finish(plan, result, layout, settings)
        except CompositeError as exc:
            results[plan.key] = exc
    profile["write"] = time.perf_counter() - clock
    return CompositeRun({key: results[key] for key in keys}, profile)


def build_composite(key: str, master: pl.DataFrame, layout: Layout, settings: CompositeSettings) -> BuiltComposite:
    """Make and write the composite of partition ``key`` (a canonical filter spec) from the face
    chips of ``master``; raises :class:`CompositeError`."""
    result = build_composites([key], master, layout, settings).results[key]
    if isinstance(result, CompositeError):
        raise result
    return result


def _finish(plan: _Plan, result: MemberComposite, layout: Layout, settings: CompositeSettings) -> BuiltComposite:
    """Check, describe and write one averaged composite; raises :class:`CompositeError`."""
    key, spec, faces, rows, selection = plan.key, plan.spec, plan.faces, plan.rows, plan.selection
    method, excluded, unconfident = plan.method, plan.excluded, plan.unconfident
    image, used, failures = result.image, len(result.used), result.skipped
    extra = warp_meta(result, _warp_settings(method, settings))
    if used < settings.min_faces:
        raise CompositeError(
            f"filter spec {key!r}: only {used} of {rows.height} selected faces could be used "
            f"(first failure: {failures[0] if failures else '-'}); "
            f"a composite needs at least {settings.min_faces}"
        )
    sharpness = composite_sharpness(image.convert("RGB"))
    matched_rows = faces.filter(selection.spec.to_polars_expr())
    alignment = alignment_stats(matched_rows, rows, excluded, settings, align=method != "none")
    meta = composite_meta(spec, selection, used, failures, alignment=alignment, sharpness=round(sharpness, 3))
    meta.update(method=method, method_requested=plan.requested, method_note=plan.note, **extra)
    meta["min_faces"] = settings.min_faces
    meta["min_confidence"] = settings.min_confidence
    meta["excluded_low_confidence"] = unconfident
    meta.update(plan.quality)
    image_path, json_path = composite_files(layout.composites_dir, spec, settings.image_format)
    write_composite(layout.composites_dir, spec.slug, image, meta, fmt=settings.image_format)
    return BuiltComposite(meta=meta, image_path=image_path, json_path=json_path,
                          seconds=time.perf_counter() - plan.started)
