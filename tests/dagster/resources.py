"""One builder for the resource dict every dagster test passes to ``dagster.materialize``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from facestats_dagster.io_manager import FaceStatsIOManager
from facestats_dagster.resources import (
    AnalysisResource,
    ClipResource,
    CompositesResource,
    LabelsResource,
    PathsResource,
    PreprocessResource,
)


def make_resources(
    data_root: Path | str,
    model_root: Path | str,
    *,
    clip: ClipResource | None = None,
    preprocess: PreprocessResource | None = None,
    labels: LabelsResource | None = None,
    analysis: AnalysisResource | None = None,
    composites: CompositesResource | None = None,
) -> dict[str, Any]:
    """Every resource of the definitions, with test-friendly defaults (64 px images, no CLIP)."""
    paths = PathsResource(data_root=str(data_root), model_root=str(model_root))
    resources: dict[str, dg.ConfigurableResource | Any] = {
        "paths": paths,
        "preprocess": preprocess or PreprocessResource(size=64),
        "clip": clip or ClipResource(model="unused"),
        "labels": labels or LabelsResource(),
        "analysis": analysis or AnalysisResource(),
        "composites": composites or CompositesResource(),
        "io_manager": FaceStatsIOManager(paths=paths),
    }
    return resources
