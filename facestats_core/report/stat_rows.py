"""The ``face_statistics`` table as the report reads it: typed rows and how to describe a correction.

The table (built by :mod:`facestats_core.statistics`) has one row per estimate:
``statistic`` (``share`` | ``mean_score``), ``attribute`` (the attribute estimated for a share,
the grouping for a mean score), ``slice_key``/``slice_value`` (the subset: ``all``/``all`` or e.g.
``age``/``20-29``), ``value`` (the class or group), ``n``, ``count``, ``estimate`` with its 95 %
interval ``low``/``high``, the misclassification-corrected share ``corrected`` with
``corrected_low``/``corrected_high``, ``correction`` (the method, or ``none: <why>``), ``unstable``,
``note``, and the share in the labelled validation images ``true_share`` (of ``true_n``).
Only the first seven columns are required here; the others read as null when absent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

SHARE = "share"
MEAN_SCORE = "mean_score"
ALL = "all"
"""``slice_key``/``slice_value`` (and mean-score ``attribute``) of the whole data set."""
NO_CORRECTION = "none"
"""Prefix of ``correction`` when no corrected share could be computed (``none: <why>``)."""
CORRECTION_METHODS: dict[str, str] = {
    "emq_bcts": (
        "corrected for classifier errors and for the difference between this folder's class mix and the "
        "reference set's (EM prior adjustment on calibrated class probabilities, stopped after a few steps, "
        "calibrated on out-of-fold predictions of the reference faces reweighted to the folder's estimated "
        "mix of the other attributes); interval: 95 % posterior interval of the population's share, "
        "given the faces and the calibration faces; "
        "slices under 50 faces show the observed share only"
    ),
}
"""How each correction method is described in the report."""

REQUIRED_COLUMNS: tuple[str, ...] = (
    "statistic",
    "attribute",
    "slice_key",
    "slice_value",
    "value",
    "n",
    "estimate",
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "count",
    "low",
    "high",
    "corrected",
    "corrected_low",
    "corrected_high",
    "correction",
    "unstable",
    "note",
    "true_n",
    "true_share",
)


@dataclass(frozen=True)
class StatRow:
    """One row of face_statistics (non-finite floats read as None)."""

    statistic: str
    attribute: str
    slice_key: str
    slice_value: str
    value: str
    n: int | None
    estimate: float | None
    count: int | None = None
    low: float | None = None
    high: float | None = None
    corrected: float | None = None
    corrected_low: float | None = None
    corrected_high: float | None = None
    correction: str | None = None
    unstable: bool = False
    note: str | None = None
    true_n: int | None = None
    true_share: float | None = None


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def read_statistics(frame: pl.DataFrame) -> list[StatRow]:
    """The rows of a face_statistics frame; raises ValueError naming any missing required column."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"face_statistics has no column(s) {', '.join(missing)}")
    empty = [None] * frame.height
    col = {
        c: frame[c].to_list() if c in frame.columns else empty for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    }
    return [
        StatRow(
            statistic=str(col["statistic"][i]),
            attribute=str(col["attribute"][i]),
            slice_key=str(col["slice_key"][i]),
            slice_value=str(col["slice_value"][i]),
            value=str(col["value"][i]),
            n=_int(col["n"][i]),
            estimate=_float(col["estimate"][i]),
            count=_int(col["count"][i]),
            low=_float(col["low"][i]),
            high=_float(col["high"][i]),
            corrected=_float(col["corrected"][i]),
            corrected_low=_float(col["corrected_low"][i]),
            corrected_high=_float(col["corrected_high"][i]),
            correction=_text(col["correction"][i]),
            unstable=bool(col["unstable"][i]),
            note=_text(col["note"][i]),
            true_n=_int(col["true_n"][i]),
            true_share=_float(col["true_share"][i]),
        )
        for i in range(frame.height)
    ]


def select(
    rows: Iterable[StatRow], statistic: str, *, attribute: str | None = None, slice_key: str | None = None
) -> list[StatRow]:
    """The rows of one ``statistic``, optionally of one ``attribute`` and one ``slice_key``."""
    return [
        r
        for r in rows
        if r.statistic == statistic
        and (attribute is None or r.attribute == attribute)
        and (slice_key is None or r.slice_key == slice_key)
    ]


def describe_correction(correction: str | None) -> str:
    """A sentence for a ``correction`` value: the method, or plainly why there is no correction."""
    if not correction:
        return "no correction for classifier errors (the table gives no reason)"
    if correction == NO_CORRECTION or correction.startswith(NO_CORRECTION + ":"):
        why = correction.partition(":")[2].strip()
        return "no correction for classifier errors" + (f": {why}" if why else "")
    return CORRECTION_METHODS.get(correction, f"corrected by {correction}")


def correction_sentences(rows: Sequence[StatRow]) -> list[str]:
    """One sentence per distinct ``correction`` among ``rows`` (first-seen order)."""
    seen: dict[str | None, None] = {}
    for row in rows:
        seen.setdefault(row.correction, None)
    return [describe_correction(c) for c in seen]
