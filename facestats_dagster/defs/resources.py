"""The resources every asset, check and sensor uses, configured by `facestats_dagster.settings`
(flag > environment > project file > default), plus the two IO managers: parquet tables and the model store."""

from __future__ import annotations

from typing import Any

import dagster as dg

from facestats_dagster.io_manager import FaceStatsIOManager, ModelStoreIOManager
from facestats_dagster.resources import (
    AnalysisResource,
    ClipResource,
    CompositesResource,
    FacesResource,
    LabelsResource,
    ModelsResource,
    PathsResource,
)
from facestats_dagster.run_events import facestats_console_logger
from facestats_dagster.settings import Settings, load_settings


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource of the definitions (IO managers included), configured from `settings`: each
    resource gets its section's values (`[clip]` → `ClipResource`), field by field."""
    paths = PathsResource(**settings.section("paths"))
    return {
        "paths": paths,
        "faces": FacesResource(**settings.section("faces")),
        "clip": ClipResource(**settings.section("clip")),
        "labels": LabelsResource(**settings.section("labels")),
        "analysis": AnalysisResource(**settings.section("analysis")),
        "models": ModelsResource(**settings.section("models")),
        "composites": CompositesResource(**settings.section("composites")),
        "io_manager": FaceStatsIOManager(paths=paths),
        "model_store": ModelStoreIOManager(paths=paths),
    }


@dg.definitions
def resources() -> dg.Definitions:
    """The resources every asset, check and sensor of FaceStats uses, and the default executor:
    in process, so a run's steps share one Python (each step in its own process re-imported the
    stack, ~4 s per step and per check; a run's work is one chain of assets, so little runs in parallel
    on a few cores). The `image_shards` scale-out job has its own executor (`FACESTATS_SHARD_EXECUTOR`). The `console` logger is
    Dagster's, unless a `facestats run` in this process takes the records (`run_events`)."""
    return dg.Definitions(resources=build_resources(load_settings()), executor=dg.in_process_executor,
                          loggers={"console": facestats_console_logger})
