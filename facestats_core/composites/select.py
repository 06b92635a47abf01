"""Which faces go into a composite: apply a filter spec to the master table and sample.

* :func:`select_images` applies a :class:`~facestats_core.composites.filter_spec.FilterSpec`
  to the master table and samples ``n`` images deterministically, relaxing
  filters in :data:`RELAX_ORDER` when asked to and too few faces match.
* :func:`select_usable` does the same over the rows that can be used (e.g.
  aligned faces) and counts the matching rows that cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from facestats_core.composites.filter_spec import FilterSpec

RELAX_ORDER: tuple[str, ...] = ("attractiveness", "tag", "age", "cluster", "ethnicity", "gender")
"""Filters dropped, in this order, when ``relax=True`` and too few faces match:
the finest-grained / least identity-defining filters go first."""


class TooFewFacesError(ValueError):
    """Fewer faces match a spec than a composite needs."""

    def __init__(
        self,
        spec: FilterSpec,
        matched: int,
        min_faces: int,
        relaxed: list[str] | None = None,
        excluded: int = 0,
        excluded_reason: str = "without eye landmarks",
    ):
        self.spec = spec
        self.matched = matched
        self.min_faces = min_faces
        self.relaxed = list(relaxed or [])
        self.excluded = excluded
        extra = f" even after relaxing {', '.join(self.relaxed)}" if self.relaxed else ""
        if excluded:
            counted = (
                f"matched {matched + excluded} faces{extra}, {excluded} of them {excluded_reason} "
                f"(excluded), leaving {matched}"
            )
        else:
            counted = f"matched {matched} faces{extra}"
        super().__init__(
            f"filter spec {spec.canonical!r} {counted}; a composite needs at least "
            f"{min_faces} (widen the spec, lower min_faces, or relax)"
        )


@dataclass(frozen=True)
class Selection:
    """Result of :func:`select_images`.

    ``matched``: rows matching the effective spec; ``face_ids``: the sampled
    ids (sorted); ``relaxed``: dropped terms as ``key=value``, in drop order;
    ``spec``: the effective (possibly relaxed) spec.
    """

    matched: int
    face_ids: list[str]
    relaxed: list[str] = field(default_factory=list)
    spec: FilterSpec = field(default_factory=FilterSpec)


def _matching_ids(master: pl.DataFrame, spec: FilterSpec) -> list[str]:
    """Sorted distinct ``face_id`` of the rows ``spec`` selects; ValueError if columns are missing."""
    missing = [c for c in ("face_id", *spec.required_columns()) if c not in master.columns]
    if missing:
        raise ValueError(f"master table lacks columns {missing} needed by spec {spec.canonical!r}")
    ids = master.filter(spec.to_polars_expr()).get_column("face_id").drop_nulls().unique().sort()
    return [str(v) for v in ids.to_list()]


def sample_ids(ids: list[str], n: int | None, seed: int) -> list[str]:
    """Up to ``n`` of ``ids`` chosen with ``numpy.random.default_rng(seed)``, returned sorted.

    The input is sorted first, so the draw depends only on the set of ids.
    """
    ordered = sorted(ids)
    if n is None or n >= len(ordered):
        return ordered
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(ordered), size=n, replace=False))
    return [ordered[int(i)] for i in picked]


def select_images(
    master: pl.DataFrame, spec: FilterSpec, min_faces: int, relax: bool = False
) -> Selection:
    """Filter ``master`` (needs ``face_id`` + the spec's columns) by ``spec`` and sample ``spec.n``.

    When fewer than ``min_faces`` rows match: raise :class:`TooFewFacesError`,
    or with ``relax`` drop the spec's filters in :data:`RELAX_ORDER` one at a
    time until enough match (raising if even the last one is not enough).
    """
    if min_faces < 1:
        raise ValueError(f"min_faces must be >= 1, got {min_faces}")
    current = spec
    relaxed: list[str] = []
    ids = _matching_ids(master, current)
    if len(ids) < min_faces and relax:
        for key in RELAX_ORDER:
            if len(ids) >= min_faces:
                break
            if getattr(current, key) is None:
                continue
            relaxed.append(f"{key}={current.terms()[key]}")
            current = current.without(key)
            ids = _matching_ids(master, current)
    if len(ids) < min_faces:
        raise TooFewFacesError(spec, len(ids), min_faces, relaxed)
    return Selection(
        matched=len(ids), face_ids=sample_ids(ids, current.n, current.seed), relaxed=relaxed, spec=current
    )


def select_usable(
    master: pl.DataFrame,
    spec: FilterSpec,
    min_faces: int,
    relax: bool = False,
    usable: pl.Expr | None = None,
    excluded_reason: str = "without eye landmarks",
) -> tuple[Selection, int]:
    """:func:`select_images` over the rows where ``usable`` holds (e.g. ``aligned_ok``).

    Returns the selection and how many rows match its effective spec but are
    not usable (``excluded``). When too few usable faces match, the
    :class:`TooFewFacesError` counts both the matches and the exclusions.
    """
    if usable is None:
        return select_images(master, spec, min_faces, relax), 0
    eligible = master.filter(usable.fill_null(False))
    try:
        selection = select_images(eligible, spec, min_faces, relax)
    except TooFewFacesError as exc:
        effective = spec.without(*(term.split("=")[0] for term in exc.relaxed)) if exc.relaxed else spec
        everything = len(_matching_ids(master, effective))
        raise TooFewFacesError(
            spec, exc.matched, min_faces, exc.relaxed, excluded=everything - exc.matched,
            excluded_reason=excluded_reason,
        ) from None
    return selection, len(_matching_ids(master, selection.spec)) - selection.matched
