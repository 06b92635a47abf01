"""Quality members only: by default a composite averages the faces judged ``good`` (near-frontal, sharp,
large enough, confidently detected; :mod:`facestats_core.faces.quality`), and records the ones it
left out with their reasons.

The spec's ``quality`` key overrides it: ``quality=any`` takes every face, ``quality=poor`` only the
poor ones. A face without a verdict (``quality`` null) counts as good: nothing was found wrong with it.
A master table without a ``quality`` column (built before faces were judged) is kept whole, and the
sidecar says so. Statistics never use this filter: they count every face and can be sliced by quality.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from facestats_core.composites.filter_spec import FilterSpec
from facestats_core.faces.quality import POOR

NO_QUALITY_NOTE = "the master table has no quality column: no face was left out for its quality"


def quality_members(spec: FilterSpec) -> pl.Expr | None:
    """Master-table predicate of the spec's quality (``good``: not judged poor; ``poor``: judged poor),
    or None for ``quality=any``."""
    poor = pl.col("quality") == POOR
    if spec.quality_filter == "any":
        return None
    keep = poor if spec.quality_filter == POOR else ~poor
    return keep.fill_null(spec.quality_filter != POOR)


def quality_faces(faces: pl.DataFrame, spec: FilterSpec) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``faces`` without those the spec's quality leaves out, and the sidecar record of them:
    ``quality`` (the filter), ``excluded_quality`` (how many faces matching the spec's terms were left
    out), ``excluded_quality_by_reason`` (``{reason: faces}``) and ``excluded_quality_faces``
    (``[[face_id, [reasons]], …]`` sorted by id); ``quality_note`` says why nothing could be judged
    (else None)."""
    record: dict[str, Any] = {"quality": spec.quality_filter, "excluded_quality": 0,
                              "excluded_quality_by_reason": {}, "excluded_quality_faces": [], "quality_note": None}
    keep = quality_members(spec)
    if keep is None:
        return faces, record
    if "quality" not in faces.columns:
        return faces, {**record, "quality_note": NO_QUALITY_NOTE}
    try:
        left_out = faces.filter(spec.to_polars_expr() & ~keep)
    except pl.exceptions.PolarsError:  # the spec's own columns are missing: selection says so
        return faces.filter(keep), record
    reasons = (left_out["quality_reasons"].to_list() if "quality_reasons" in left_out.columns
               else [None] * left_out.height)
    pairs = sorted(zip(left_out["face_id"].to_list(), reasons, strict=True), key=lambda item: str(item[0]))
    by_reason: Counter[str] = Counter(r for _, rs in pairs for r in (rs or ["good"]))
    record.update(excluded_quality=left_out.height, excluded_quality_by_reason=dict(sorted(by_reason.items())),
                  excluded_quality_faces=[[str(face), list(rs or [])] for face, rs in pairs])
    return faces.filter(keep), record


def quality_hint(record: dict[str, Any]) -> str:
    """The sentence a too-few-faces error adds about faces left out for quality ('' when none were)."""
    count = record.get("excluded_quality", 0)
    if not count:
        return ""
    reasons = ", ".join(f"{k}: {v}" for k, v in record["excluded_quality_by_reason"].items())
    if record["quality"] == POOR:
        return f"; {count} more matching faces were left out as judged good (quality=poor)"
    return (f"; {count} more matching faces were left out for their quality ({reasons}); "
            "add quality=any to the spec to include them")
