"""Report section: what produced the numbers (CLIP model and revision, model hashes, thresholds,
settings, package versions, run id), as one key/value table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facestats_core.report.sections.common import OK, Section

KEY = "reproducibility"
TITLE = "Reproducibility"
NO_RECORD = "no reproducibility record"
NO_RECORD_NOTE = "No reproducibility record was passed to the report (models, settings and versions unknown)."


@dataclass(frozen=True)
class ReproducibilityView:
    note: str | None
    rows: tuple[tuple[str, str], ...]


def reproducibility_section(record: Mapping[str, Any] | None) -> Section:
    """The record's entries in its own order (values shown as text; None as a dash)."""
    if not record:
        return Section(KEY, TITLE, NO_RECORD, ReproducibilityView(NO_RECORD_NOTE, ()))
    rows = tuple((str(k), "–" if v is None else str(v)) for k, v in record.items())
    return Section(KEY, TITLE, OK, ReproducibilityView(None, rows))
