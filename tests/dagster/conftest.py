from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from facestats_dagster.definitions import defs
from facestats_dagster.io_manager import FaceStatsIOManager
from facestats_dagster.resources import (
    AnalysisResource,
    ClipResource,
    CompositesResource,
    LabelsResource,
    PathsResource,
    PreprocessResource,
)


@pytest.fixture
def resources(tmp_path: Path, raw_folder: Path, tiny_clip_dir: Path) -> dict[str, dg.ConfigurableResource]:
    paths = PathsResource(data_root=str(raw_folder.parent), model_root=str(tmp_path / "models"))
    return {
        "paths": paths,
        "preprocess": PreprocessResource(size=64),
        "clip": ClipResource(model=str(tiny_clip_dir), batch_size=4),
        "labels": LabelsResource(),
        "analysis": AnalysisResource(),
        "composites": CompositesResource(),
        "io_manager": FaceStatsIOManager(paths=paths),
    }


@pytest.fixture
def all_assets() -> list[dg.AssetsDefinition]:
    return list(defs.assets)  # type: ignore[arg-type]
