"""What a finished run found, in a few lines: faces, images without a face by reason, how each attribute
was predicted, which composites were built and which not (with reasons), and what the numbers rest on."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

ATTRIBUTES = ("gender", "age", "ethnicity")


@dataclass(frozen=True)
class RunSummary:
    """Counts of one finished run (`summarize`)."""

    images: int
    images_with_faces: int
    faces: int
    faceless_by_reason: dict[str, int]
    methods: dict[str, dict[str, int]]
    """`{attribute: {probe|zero_shot|label|manual: faces}}`."""
    built: int
    not_built: dict[str, int] = field(default_factory=dict)
    """`{reason: composites}`."""


def _reason_kind(reason: str) -> str:
    """A not-built reason without its numbers, so equal kinds group (`only 3 faces match` → `only N faces match`)."""
    text = re.sub(r"'[^']*'", "'…'", str(reason))
    return " ".join("N" if word.strip(",.();:").isdigit() else word for word in text.split())[:100]


def summarize(master: pl.DataFrame, sidecars: list[dict[str, Any]]) -> RunSummary:
    """The counts of a master table (one row per face, plus one per image without a face with its
    `reason`) and of the composites' sidecars."""
    faces = master.filter(pl.col("face_id").is_not_null())
    faceless = master.filter(pl.col("face_id").is_null())
    reasons = Counter(str(r) for r in faceless["reason"].fill_null("unknown").to_list())
    methods: dict[str, dict[str, int]] = {}
    for attr in ATTRIBUTES:
        source, method = f"{attr}_source", f"{attr}_method"
        if source not in faces.columns:
            continue
        how = []
        for row in faces.select(source, *([method] if method in faces.columns else [])).iter_rows():
            how.append(row[1] if row[0] == "predicted" and len(row) > 1 and row[1] else row[0])
        methods[attr] = dict(Counter(str(h) for h in how))
    built = sum(1 for meta in sidecars if meta.get("status", "built") == "built")
    not_built = Counter(_reason_kind(meta.get("reason", "?")) for meta in sidecars
                        if meta.get("status", "built") != "built")
    return RunSummary(master["image_id"].n_unique(), faces["image_id"].n_unique(), faces.height,
                      dict(reasons.most_common()), methods, built, dict(not_built.most_common()))


def summary_lines(summary: RunSummary, max_reasons: int = 3) -> list[str]:
    """The summary as short lines (no more than `max_reasons` not-built kinds)."""
    lines = [f"faces found       {summary.faces} in {summary.images_with_faces} of {summary.images} images"]
    if summary.faceless_by_reason:
        parts = ", ".join(f"{reason} {n}" for reason, n in summary.faceless_by_reason.items())
        lines.append(f"no face           {sum(summary.faceless_by_reason.values())} images ({parts})")
    if summary.methods:
        parts = "; ".join(f"{attr}: " + ", ".join(f"{how} {n}" for how, n in counts.items())
                          for attr, counts in summary.methods.items())
        lines.append(f"predicted how     {parts}")
    lines.append(f"composites        {summary.built} built, {sum(summary.not_built.values())} not built")
    for reason, n in list(summary.not_built.items())[:max_reasons]:
        lines.append(f"  not built ({n}): {reason}")
    return lines
