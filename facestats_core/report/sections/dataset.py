"""Report section: the data set (images, faces, images without a face, ...) and failures by reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from facestats_core.report.sections.common import OK, Section

KEY = "dataset"
TITLE = "Data set"
FAILURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("error", "decode"),
    ("reason", "no usable face"),
    ("chip_error", "face chip"),
)
"""Master column holding each stage's failure reason → stage name."""
MAX_REASONS = 12
"""Reasons listed per stage; the rarer ones are summed into one row."""
REASON_CHARS = 160
"""Longest reason shown (longer ones are cut with an ellipsis)."""


@dataclass(frozen=True)
class Count:
    label: str
    value: int | None
    share: float | None
    """``value`` over all images (image counts) or all faces (face counts); None for the totals."""


@dataclass(frozen=True)
class Failure:
    stage: str
    reason: str
    images: int


@dataclass(frozen=True)
class DatasetView:
    counts: tuple[Count, ...]
    failures: tuple[Failure, ...]
    failure_columns: tuple[str, ...]
    """The failure columns the master table has (none → the failure table is not shown)."""


def _true_count(master: pl.DataFrame, name: str) -> int | None:
    """How many rows have ``name`` true (nulls count as false); None without the column."""
    return int(master[name].fill_null(False).sum()) if name in master.columns else None


IMAGE_COUNTS: tuple[str, ...] = ("readable", "images with faces", "images without a face")
"""Counts shared over the images; the other counts (but the totals) over the faces."""


def dataset_summary(master: pl.DataFrame) -> dict[str, Any]:
    """The counts of the master table (also the materialization's summary)."""
    has_faces = "face_id" in master.columns
    faces = master.filter(pl.col("face_id").is_not_null()) if has_faces else master
    images = master.unique("image_id") if "image_id" in master.columns else master
    with_faces = faces["image_id"].n_unique() if has_faces and faces.height else 0
    return {
        "images": images.height,
        "readable": _true_count(images, "readable"),
        "images with faces": with_faces,
        "images without a face": images.height - with_faces,
        "faces": faces.height,
        "chipped": _true_count(faces, "chip_ok"),
        "predicted": _true_count(faces, "predicted"),
        "scored": int(faces["attractiveness_raw"].is_not_null().sum()) if "attractiveness_raw" in faces.columns else 0,
        "low_confidence": _true_count(faces, "low_confidence"),
    }


def _short(reason: str) -> str:
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"


def failures(master: pl.DataFrame) -> list[Failure]:
    """Images per stage and failure reason (most frequent first; the rarest summed into one row)."""
    out: list[Failure] = []
    for name, stage in FAILURE_COLUMNS:
        if name not in master.columns:
            continue
        counts = (
            master.select(pl.col(name).cast(pl.String))
            .drop_nulls()
            .filter(pl.col(name) != "")
            .group_by(name)
            .len()
            .sort(["len", name], descending=[True, False])
        )
        rows = counts.rows()
        out += [Failure(stage, _short(reason), int(n)) for reason, n in rows[:MAX_REASONS]]
        if len(rows) > MAX_REASONS:
            rest = rows[MAX_REASONS:]
            out.append(Failure(stage, f"{len(rest)} other reasons", sum(int(n) for _, n in rest)))
    return out


def dataset_section(master: pl.DataFrame) -> tuple[Section, dict[str, Any]]:
    """The counts table and the failures by stage and reason; also returns the counts."""
    summary = dataset_summary(master)

    def share(label: str, value: int | None) -> float | None:
        total = summary["images"] if label in IMAGE_COUNTS else summary["faces"]
        return None if label in ("images", "faces") or value is None or not total else value / total

    counts = tuple(Count(label, value, share(label, value)) for label, value in summary.items())
    view = DatasetView(
        counts=counts,
        failures=tuple(failures(master)),
        failure_columns=tuple(name for name, _ in FAILURE_COLUMNS if name in master.columns),
    )
    return Section(KEY, TITLE, OK, view), summary
