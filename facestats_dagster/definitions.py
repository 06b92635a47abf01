"""The one ``Definitions`` of FaceStats (``dagster dev -w workspace.yaml``)."""

from __future__ import annotations

import dagster as dg

from facestats_dagster import automation, checks
from facestats_dagster.assets import (
    attractiveness,
    attributes,
    composites,
    embeddings,
    images,
    master,
    report,
)
from facestats_dagster.io_manager import FaceStatsIOManager
from facestats_dagster.resources import from_env
from facestats_dagster.scaleout import image_shards_job
from facestats_dagster.sensors import composite_specs_sensor

resources = from_env()

defs = dg.Definitions(
    assets=automation.follow_upstream(dg.load_assets_from_modules(
        [images, embeddings, attributes, attractiveness, master, composites, report]
    )),
    asset_checks=automation.follow_assets(
        dg.load_asset_checks_from_modules([attributes, attractiveness, master, checks])
    ),
    sensors=[composite_specs_sensor, *automation.SENSORS],
    schedules=automation.SCHEDULES,
    jobs=[image_shards_job, *automation.JOBS],
    resources={**resources, "io_manager": FaceStatsIOManager(paths=resources["paths"])},
)
