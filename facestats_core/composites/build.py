"""Build one composite: parse its spec, select the faces, average them, write picture + json.

:func:`build_composite` is the whole job for one canonical filter spec (a
partition key of the ``composite`` asset): it checks the key, selects the
usable faces of the master table, averages their composite chips (each
similarity-aligned on its eyes; with alignment off, the chips as cut), measures
sharpness and alignment coverage, and writes ``<slug>.<fmt>`` and ``<slug>.json`` under the
composites folder. Anything that stops a composite raises
:class:`CompositeError`, whose message and ``metadata`` say why.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
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
from facestats_core.faces.alignment import AlignmentConfig, align_face
from facestats_core.faces.detection import eye_centres
from facestats_core.io.layout import Layout

NO_LANDMARKS_REASON = "without eye landmarks"
NO_LANDMARKS_HINT = (
    " No matching face has eye landmarks: configure FACESTATS_LANDMARKS or install "
    "dlib-bin + face-recognition-models (the detect extra)."
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
    too few match, average the composite chips ``align``-ed on their eyes with geometry
    ``alignment`` (else as cut), and write the picture as ``image_format`` (``png`` or ``jpg``)."""

    min_faces: int = 10
    relax: bool = False
    align: bool = True
    image_format: str = "png"
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)


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
    key: str, spec: FilterSpec, faces: pl.DataFrame, settings: CompositeSettings
) -> tuple[Selection, int]:
    """Select the usable faces (aligned ones when aligning); too few raise :class:`CompositeError`."""
    try:
        if settings.align:
            return select_usable(
                faces, spec, settings.min_faces, settings.relax, usable=has_eyes(),
                excluded_reason=NO_LANDMARKS_REASON,
            )
        return select_usable(faces, spec, settings.min_faces, settings.relax)
    except TooFewFacesError as exc:
        hint = NO_LANDMARKS_HINT if settings.align and exc.excluded and exc.matched == 0 else ""
        raise CompositeError(
            str(exc) + hint,
            metadata={"matched": exc.matched + exc.excluded, "usable": exc.matched,
                      "excluded_no_landmarks": exc.excluded, "min_faces": exc.min_faces},
        ) from exc
    except ValueError as exc:
        raise CompositeError(f"cannot select faces for {key!r}: {exc}") from exc


def has_eyes() -> pl.Expr:
    """Master rows whose composite chip has landmarks to align on (2, 5 or 68 points)."""
    return pl.col("landmark_points").fill_null(0) > 0


def _eye_aligner(rows: pl.DataFrame, config: AlignmentConfig) -> Any:
    """``transform(image, path)`` aligning each chip on its eyes (chip coordinates from the master)."""
    eyes: dict[str, Any] = {}
    for composite_path, points in rows.select("composite_path", "chip_landmarks").iter_rows():
        found = eye_centres(None if points is None else np.asarray(points))
        if found is not None:
            eyes[Path(composite_path).name] = found

    def transform(image: Image.Image, path: Any) -> Image.Image:
        left, right = eyes[Path(str(path)).name]
        return align_face(image, left, right, config.output_size, config.eye_targets)

    return transform


def _source_files(rows: pl.DataFrame, layout: Layout) -> list[Any]:
    """The composite chips of the selected faces."""
    return [layout.chips_dir / p for p in rows["composite_path"].to_list()]


def _value_counts(values: list[Any]) -> dict[str, int]:
    return dict(Counter(str(v) for v in values))


def alignment_stats(
    matched_rows: pl.DataFrame, used_rows: pl.DataFrame, excluded: int, settings: CompositeSettings
) -> dict[str, Any]:
    """The ``alignment`` block of the json sidecar: how faces were aligned and why some were left out.

    ``matched_rows`` are all faces matching the effective spec, ``used_rows`` the selected ones.
    """
    config, align = settings.alignment, settings.align
    not_aligned = matched_rows.filter(~has_eyes())
    return {
        "aligned": align,
        "source_images": "composite chips aligned on the eyes" if align else "composite chips as cut",
        "alignment_version": config.version if align else None,
        "output_size": config.output_size,
        "eye_targets": [list(p) for p in config.eye_targets],
        "excluded_no_landmarks": excluded,
        "excluded_by_reason": {"no_landmarks": not_aligned.height} if align and not_aligned.height else {},
        "landmarks_source": _value_counts(used_rows["face_source"].to_list()),
    }


def build_composite(
    key: str, master: pl.DataFrame, layout: Layout, settings: CompositeSettings
) -> BuiltComposite:
    """Make and write the composite of partition ``key`` (a canonical filter spec) from the
    face chips of ``master``; raises :class:`CompositeError`."""
    spec = parse_partition_key(key)
    faces = master.filter(pl.col("chip_ok").fill_null(False))
    started = time.perf_counter()
    selection, excluded = _select(key, spec, faces, settings)
    rows = faces.filter(pl.col("face_id").is_in(selection.face_ids)).sort("face_id")
    files = _source_files(rows, layout)
    transform = _eye_aligner(rows, settings.alignment) if settings.align else None
    mean, used, failures = average_images(files, settings.alignment.output_size, transform=transform)
    if used < settings.min_faces:
        raise CompositeError(
            f"filter spec {key!r}: only {used} of {len(files)} selected face chips could be read "
            f"(first failure: {failures[0] if failures else '-'}); "
            f"a composite needs at least {settings.min_faces}"
        )
    image = Image.fromarray(to_uint8(mean), "RGB")
    sharpness = composite_sharpness(image)
    matched_rows = faces.filter(selection.spec.to_polars_expr())
    alignment = alignment_stats(matched_rows, rows, excluded, settings)
    meta = composite_meta(spec, selection, used, failures, alignment=alignment, sharpness=round(sharpness, 3))
    meta["min_faces"] = settings.min_faces
    image_path, json_path = composite_files(layout.composites_dir, spec, settings.image_format)
    write_composite(layout.composites_dir, spec.slug, image, meta, fmt=settings.image_format)
    return BuiltComposite(meta=meta, image_path=image_path, json_path=json_path,
                          seconds=time.perf_counter() - started)
