"""Report section: the overview counts (images, readable, preprocessed, aligned, ...)."""

from __future__ import annotations

from typing import Any

import polars as pl

from facestats_core.report.html_parts import esc, num, table


def _true_count(master: pl.DataFrame, column: str) -> int | None:
    """How many rows have ``column`` true (nulls count as false); None without the column."""
    return int(master[column].fill_null(False).sum()) if column in master.columns else None


def overview_summary(master: pl.DataFrame) -> dict[str, Any]:
    """The overview counts of the master table."""
    return {
        "images": master.height,
        "readable": _true_count(master, "readable"),
        "preprocessed": _true_count(master, "preproc_ok"),
        "aligned": _true_count(master, "aligned_ok"),
        "predicted": _true_count(master, "predicted"),
        "scored": int(master["attractiveness_raw"].is_not_null().sum())
        if "attractiveness_raw" in master.columns
        else 0,
        "low_confidence": _true_count(master, "low_confidence"),
    }


def overview_section(master: pl.DataFrame) -> tuple[str, dict[str, Any]]:
    """The overview HTML and its counts."""
    summary = overview_summary(master)
    rows = [[esc(k), num(v)] for k, v in summary.items()]
    return "<h2 id=overview>Overview</h2>" + table(["images", "count"], rows), summary
