"""Build one composite: parse its spec, select the faces, average them, write picture + json.

:func:`build_composite` is the whole job for one canonical filter spec (a
partition key of the ``composite`` asset): it checks the key, selects the
usable faces of the master table, averages their aligned crops (or, with
alignment off, the preprocessed squares), measures sharpness and alignment
coverage, and writes ``<slug>.<fmt>`` and ``<slug>.json`` under the
composites folder. Anything that stops a composite raises
:class:`CompositeError`, whose message and ``metadata`` say why.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

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
from facestats_core.faces.alignment import AlignmentConfig
from facestats_core.io.layout import Layout

NO_LANDMARKS_REASON = "without eye landmarks / alignment"
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
    too few match, average ``align``-ed crops (else preprocessed squares) of geometry
    ``alignment``, and write the picture as ``image_format`` (``png`` or ``jpg``)."""

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
                faces, spec, settings.min_faces, settings.relax, usable=pl.col("aligned_ok"),
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


def _source_files(rows: pl.DataFrame, layout: Layout, align: bool) -> list[Any]:
    """The image files to average: aligned crops, or preprocessed squares when not aligning."""
    if align:
        return [layout.aligned_dir / p for p in rows["aligned_path"].to_list()]
    return [layout.preproc_dir / p for p in rows["preproc_path"].to_list()]


def _value_counts(values: list[Any]) -> dict[str, int]:
    return dict(Counter(str(v) for v in values))


def alignment_stats(
    matched_rows: pl.DataFrame, used_rows: pl.DataFrame, excluded: int, settings: CompositeSettings
) -> dict[str, Any]:
    """The ``alignment`` block of the json sidecar: how faces were aligned and why some were left out.

    ``matched_rows`` are all faces matching the effective spec, ``used_rows`` the selected ones.
    """
    config, align = settings.alignment, settings.align
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


def build_composite(
    key: str, master: pl.DataFrame, layout: Layout, settings: CompositeSettings
) -> BuiltComposite:
    """Make and write the composite of partition ``key`` (a canonical filter spec) from the
    preprocessed faces of ``master``; raises :class:`CompositeError`."""
    spec = parse_partition_key(key)
    faces = master.filter(pl.col("preproc_ok"))
    started = time.perf_counter()
    selection, excluded = _select(key, spec, faces, settings)
    rows = faces.filter(pl.col("image_id").is_in(selection.image_ids)).sort("image_id")
    files = _source_files(rows, layout, settings.align)
    mean, used, failures = average_images(files, settings.alignment.output_size)
    if used < settings.min_faces:
        raise CompositeError(
            f"filter spec {key!r}: only {used} of {len(files)} selected images could be read "
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
