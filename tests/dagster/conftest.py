from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from facestats_dagster.definitions import defs
from facestats_dagster.resources import ClipResource
from tests.dagster.resources import make_resources


@pytest.fixture
def resources(tmp_path: Path, raw_folder: Path, tiny_clip_dir: Path) -> dict[str, dg.ConfigurableResource]:
    return make_resources(
        raw_folder.parent, tmp_path / "models", clip=ClipResource(model=str(tiny_clip_dir), batch_size=4)
    )


@pytest.fixture
def all_assets() -> list[dg.AssetsDefinition]:
    return list(defs.assets)  # type: ignore[arg-type]
