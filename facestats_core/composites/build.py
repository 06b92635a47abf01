"""Build one composite: parse its spec, select the faces, average them, write picture + json.

:func:`build_composite` is the whole job for one canonical filter spec (a
partition key of the ``composite`` asset): it checks the key, selects the
usable faces of the master table, averages them by the composite method, measures
sharpness and alignment coverage, and writes ``<slug>.<fmt>`` and ``<slug>.json``
under the composites folder. Anything that stops a composite raises
:class:`CompositeError`, whose message and ``metadata`` say why.

Methods (the spec's ``method`` key, else :attr:`CompositeSettings.method`, else
``none`` when alignment is off):

* ``warp``: faces with 68-point landmarks (``landmarks``: image id -> ``(68, 2)`` in
  raw-image pixels) are warped from their raw image onto the mean shape at
  :attr:`CompositeSettings.size` (:mod:`facestats_core.composites.warped`); selected
  faces without them but with an aligned crop are eye-aligned from that crop
  (``eyes_fallback`` in the sidecar). With no landmarks at all it falls back to ``eyes``.
* ``eyes``: the aligned crops (eyes on fixed points), averaged at the alignment size.
* ``none``: the preprocessed squares.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from PIL import Image

from facestats_core.composites.average import (
    average_images,
    composite_meta,
    composite_sharpness,
    to_uint8,
    write_composite,
)
from facestats_core.composites.filter_spec import FilterSpec, FilterSpecError, parse_spec
from facestats_core.composites.select import Selection, TooFewFacesError, select_usable
from facestats_core.composites.warped import Member, MemberComposite, WarpSettings, composite_from_members
from facestats_core.faces.alignment import AlignmentConfig, eye_target_pixels
from facestats_core.images.preprocess import laplacian_variance
from facestats_core.io.layout import Layout

NO_LANDMARKS_REASON = "without eye landmarks / alignment"
NO_WARP_LANDMARKS_REASON = "without 68-point landmarks or an aligned crop"
NO_LANDMARKS_HINT = (
    " No matching face has eye landmarks: configure FACESTATS_LANDMARKS, install "
    "dlib-bin + face-recognition-models, or set FACESTATS_ALIGN=0."
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
    (``align = False`` makes that ``none``), aligned crops of geometry ``alignment``,
    warped composites of side ``size`` with ``background`` ``average`` or ``transparent``
    (outside the face hull), written as ``image_format`` (``png`` or ``jpg``)."""

    min_faces: int = 10
    relax: bool = False
    align: bool = True
    image_format: str = "png"
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    method: str = "warp"
    size: int = 512
    background: str = "average"


@dataclass(frozen=True)
class BuiltComposite:
    """A written composite: ``meta`` is its json sidecar (without ``image_file``), ``image_path``
    and ``json_path`` the files written, ``seconds`` the time from selection to writing."""

    meta: dict[str, Any]
    image_path: Any
    json_path: Any
    seconds: float


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


def _select(
    key: str, spec: FilterSpec, faces: pl.DataFrame, settings: CompositeSettings, method: str,
    landmark_ids: list[str],
) -> tuple[Selection, int]:
    """Select the usable faces (aligned ones for ``eyes``, aligned or with 68 landmarks for
    ``warp``); too few raise :class:`CompositeError`."""
    try:
        if method == "warp":
            return select_usable(
                faces, spec, settings.min_faces, settings.relax,
                usable=pl.col("aligned_ok").fill_null(False) | pl.col("image_id").is_in(landmark_ids),
                excluded_reason=NO_WARP_LANDMARKS_REASON,
            )
        if method == "eyes":
            return select_usable(
                faces, spec, settings.min_faces, settings.relax, usable=pl.col("aligned_ok"),
                excluded_reason=NO_LANDMARKS_REASON,
            )
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


def _source_files(rows: pl.DataFrame, layout: Layout, align: bool) -> list[Any]:
    """The image files to average: aligned crops, or preprocessed squares when not aligning."""
    if align:
        return [layout.aligned_dir / p for p in rows["aligned_path"].to_list()]
    return [layout.preproc_dir / p for p in rows["preproc_path"].to_list()]


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
    not_aligned = matched_rows.filter(~pl.col("aligned_ok"))
    return {
        "aligned": align,
        "source_images": "aligned" if align else "preprocessed (alignment disabled)",
        "alignment_version": config.version if align else None,
        "output_size": config.output_size,
        "eye_targets": [list(p) for p in config.eye_targets],
        "excluded_no_landmarks": excluded,
        "excluded_by_reason": _value_counts(not_aligned["alignment_error"].to_list()) if align else {},
        "eyes_source": _value_counts(used_rows["eyes_source"].to_list()) if align else {},
    }


def composite_method(spec: FilterSpec, settings: CompositeSettings, has_landmarks: bool) -> tuple[str, str, str]:
    """``(requested, used, note)``: the spec's method, else the settings' (``none`` with alignment
    off); ``warp`` without any 68-point landmarks becomes ``eyes`` (``note`` says so)."""
    requested = spec.method or (settings.method if settings.align else "none")
    if requested == "warp" and not has_landmarks:
        return requested, "eyes", "no 68-point landmarks for any face: eye alignment instead"
    return requested, requested, ""


def _warp_members(
    rows: pl.DataFrame, layout: Layout, settings: CompositeSettings, landmarks: Mapping[str, np.ndarray]
) -> list[Member]:
    """Members sorted by image id: raw image + 68 landmarks, else the aligned crop + its eye targets."""
    crop_eyes = eye_target_pixels(settings.alignment.output_size, settings.alignment.eye_targets)
    members = []
    for row in rows.sort("image_id").iter_rows(named=True):
        image_id = row["image_id"]
        if image_id in landmarks:
            members.append(Member(image_id, layout.raw_dir / row["path"], landmarks=landmarks[image_id]))
        elif row.get("aligned_ok") and row.get("aligned_path"):
            members.append(Member(image_id, layout.aligned_dir / row["aligned_path"], eyes=crop_eyes))
        else:
            members.append(Member(image_id, layout.raw_dir / row["path"]))
    return members


def warp_meta(result: MemberComposite, settings: CompositeSettings) -> dict[str, Any]:
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


def _average(
    method: str, rows: pl.DataFrame, layout: Layout, settings: CompositeSettings,
    landmarks: Mapping[str, np.ndarray],
) -> tuple[Image.Image, int, list[tuple[str, str]], dict[str, Any]]:
    """``(picture, used, failures, extra sidecar fields)`` of the selected ``rows`` by ``method``."""
    if method == "warp":
        warp_settings = WarpSettings(settings.size, settings.alignment.eye_targets, settings.background)
        result = composite_from_members(_warp_members(rows, layout, settings, landmarks), "warp", warp_settings)
        return result.image, len(result.used), result.skipped, warp_meta(result, settings)
    files = _source_files(rows, layout, method == "eyes")
    mean, used, failures = average_images(files, settings.alignment.output_size)
    failed = {path for path, _ in failures}
    members = [i for i, f in zip(rows["image_id"].to_list(), files, strict=True) if str(f) not in failed]
    extra = {
        "members": members, "warped": 0, "eyes_fallback": [], "skipped": [list(f) for f in failures],
        "mean_shape": None, "composite_size": settings.alignment.output_size, "background": "average",
        "sharpness_face": None,
    }
    return Image.fromarray(to_uint8(mean), "RGB"), used, failures, extra


def build_composite(
    key: str,
    master: pl.DataFrame,
    layout: Layout,
    settings: CompositeSettings,
    landmarks: Mapping[str, np.ndarray] | None = None,
) -> BuiltComposite:
    """Make and write the composite of partition ``key`` (a canonical filter spec) from the faces
    of ``master`` (``landmarks``: image id -> 68 raw-image landmarks, for ``warp``); raises
    :class:`CompositeError`."""
    spec = parse_partition_key(key)
    landmarks = dict(landmarks or {})
    faces = master.filter(pl.col("preproc_ok"))
    started = time.perf_counter()
    requested, method, note = composite_method(spec, settings, bool(landmarks))
    selection, excluded = _select(key, spec, faces, settings, method, sorted(landmarks))
    rows = faces.filter(pl.col("image_id").is_in(selection.image_ids)).sort("image_id")
    image, used, failures, extra = _average(method, rows, layout, settings, landmarks)
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
    meta.update(method=method, method_requested=requested, method_note=note, **extra)
    meta["min_faces"] = settings.min_faces
    image_path, json_path = composite_files(layout.composites_dir, spec, settings.image_format)
    write_composite(layout.composites_dir, spec.slug, image, meta, fmt=settings.image_format)
    return BuiltComposite(meta=meta, image_path=image_path, json_path=json_path,
                          seconds=time.perf_counter() - started)
