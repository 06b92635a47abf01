"""One builder for the resource dict every dagster test passes to ``dagster.materialize``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from facestats_dagster.defs.resources import build_resources
from facestats_dagster.resources import ClipResource, FacesResource
from facestats_dagster.settings import load_settings


def make_resources(
    data_root: Path | str,
    model_root: Path | str,
    *,
    clip: ClipResource | None = None,
    face_mode: str = "whole",
    **overrides: dg.ConfigurableResource,
) -> dict[str, Any]:
    """Every resource of the definitions (the declared defaults, no environment or project; whole-image
    faces unless `face_mode` says otherwise, as the demo faces are pre-cropped; 64 px chips; no CLIP),
    with any resource replaced by keyword (`labels=LabelsResource(...)`). `face_mode="detect"` is the
    default path of real runs."""
    settings = load_settings(flags={"paths.data_root": str(data_root), "paths.model_root": str(model_root),
                                    "faces.face_mode": face_mode, "faces.composite_size": 64,
                                    "clip.model": "unused"}, environ={})
    resources = build_resources(settings)
    resources["faces"] = FacesResource(**settings.section("faces"), embed_size=64)
    if clip is not None:
        resources["clip"] = clip
    resources.update(overrides)
    return resources
