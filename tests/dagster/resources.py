"""One builder for the resource dict every dagster test passes to ``dagster.materialize``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg

from facestats_dagster.defs.resources import build_resources
from facestats_dagster.resources import ClipResource, FacesResource
from facestats_dagster.settings import Settings


def make_resources(
    data_root: Path | str,
    model_root: Path | str,
    *,
    clip: ClipResource | None = None,
    face_mode: str = "whole",
    **overrides: dg.ConfigurableResource,
) -> dict[str, Any]:
    """Every resource of the definitions (the defaults of `Settings`; whole-image faces unless `face_mode`
    says otherwise, as the demo faces are pre-cropped; 64 px chips; no CLIP), with any resource replaced
    by keyword (`labels=LabelsResource(...)`). `face_mode="detect"` is the default path of real runs."""
    settings = replace(Settings(), data_root=str(data_root), model_root=str(model_root), face_mode=face_mode,
                       composite_size=64, clip_model="unused")
    resources = build_resources(settings)
    resources["faces"] = FacesResource(**settings.resource_fields("faces"), embed_size=64)
    if clip is not None:
        resources["clip"] = clip
    resources.update(overrides)
    return resources
