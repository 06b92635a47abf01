"""The resources every asset, check and sensor uses, configured from the environment
(`facestats_dagster.settings`), plus the two IO managers: parquet tables and the model store."""

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
from facestats_dagster.settings import Settings, load_settings


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource of the definitions (IO managers included), configured from `settings`."""
    paths = PathsResource(**settings.resource_fields("paths"))
    return {
        "paths": paths,
        "faces": FacesResource(**settings.resource_fields("faces")),
        "clip": ClipResource(**settings.resource_fields("clip")),
        "labels": LabelsResource(**settings.resource_fields("labels")),
        "analysis": AnalysisResource(**settings.resource_fields("analysis")),
        "models": ModelsResource(**settings.resource_fields("models")),
        "composites": CompositesResource(**settings.resource_fields("composites")),
        "io_manager": FaceStatsIOManager(paths=paths),
        "model_store": ModelStoreIOManager(paths=paths),
    }


@dg.definitions
def resources() -> dg.Definitions:
    """The resources every asset, check and sensor of FaceStats uses, and the default executor:
    in process, so a run's steps share one Python (each step in its own process re-imported the
    stack, ~4 s per step and per check; a run's work is one chain of assets, so little runs in parallel
    on a few cores). The `image_shards` scale-out job keeps its own executor."""
    return dg.Definitions(resources=build_resources(load_settings()), executor=dg.in_process_executor)
