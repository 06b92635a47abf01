"""The one ``Definitions`` of FaceStats (``dagster dev -w workspace.yaml``)."""

from __future__ import annotations

import dagster as dg

from facestats_dagster.assets import attractiveness, attributes, embeddings, images
from facestats_dagster.io_manager import FaceStatsIOManager
from facestats_dagster.resources import from_env

resources = from_env()

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([images, embeddings, attributes, attractiveness]),
    asset_checks=dg.load_asset_checks_from_modules([attributes, attractiveness]),
    resources={**resources, "io_manager": FaceStatsIOManager(paths=resources["paths"])},
)
