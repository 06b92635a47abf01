"""The one ``Definitions`` of FaceStats (``dagster dev -w workspace.yaml``)."""

from __future__ import annotations

import dagster as dg

from facestats_dagster.assets import attractiveness, attributes, composites, embeddings, images, master
from facestats_dagster.io_manager import FaceStatsIOManager
from facestats_dagster.resources import from_env
from facestats_dagster.sensors import composite_specs_sensor

resources = from_env()

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([images, embeddings, attributes, attractiveness, master, composites]),
    asset_checks=dg.load_asset_checks_from_modules([attributes, attractiveness, master]),
    sensors=[composite_specs_sensor],
    resources={**resources, "io_manager": FaceStatsIOManager(paths=resources["paths"])},
)
