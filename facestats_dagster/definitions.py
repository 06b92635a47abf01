"""The one `Definitions` of FaceStats: everything under `facestats_dagster/defs/`, one module per
stage (`dagster dev -w workspace.yaml`, `dg dev`, `dagster asset materialize -m
facestats_dagster.definitions`).

The project config is `facestats_dagster/dg.toml`, next to this file, so the same call works
from a checkout and from an installed wheel."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)

