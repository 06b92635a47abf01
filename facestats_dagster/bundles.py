"""The model bundle a run applies (`FACESTATS_MODELS`), read once and checked against the run's CLIP and chips."""

from __future__ import annotations

from typing import Any

import dagster as dg

from facestats_core.models.bundle import BundleMismatchError
from facestats_core.models.store import ModelIntegrityError
from facestats_dagster.resources import ClipResource, FacesResource, ModelsResource


def load_run_bundle(models: ModelsResource, clip: ClipResource, faces: FacesResource) -> Any:
    """The configured bundle, refused (as a `dg.Failure` saying why) when missing, corrupt or made
    with another CLIP or chip version."""

    try:
        return models.compatible_bundle(clip.load(), faces.chips().version)
    except (BundleMismatchError, ModelIntegrityError, FileNotFoundError) as exc:
        raise dg.Failure(f"Cannot apply the model bundle {models.bundle}: {exc}") from exc
