"""The model bundle a run applies (`FACESTATS_MODELS`), read once and checked against the run's CLIP and chips,
and the run's decision of where each model comes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.models.bundle import BundleMismatchError
from facestats_core.models.model_source import ModelSources, TrainingSets, decide_model_sources, training_sets
from facestats_core.models.store import ModelIntegrityError
from facestats_dagster.resources import ClipResource, FacesResource, ModelsResource


def load_run_bundle(models: ModelsResource, clip: ClipResource, faces: FacesResource) -> Any:
    """The configured bundle, refused (as a `dg.Failure` saying why) when missing, corrupt or made
    with another CLIP or chip version."""

    try:
        return models.compatible_bundle(clip.load(), faces.chips().version)
    except (BundleMismatchError, ModelIntegrityError, FileNotFoundError) as exc:
        raise dg.Failure(f"Cannot apply the model bundle {models.bundle}: {exc}") from exc
    finally:
        clip.release()  # only its identity was needed


@dataclass(frozen=True, eq=False)
class RunModels:
    """This run's model-source decision, the rows it may train on, and the bundle when one is configured."""

    sources: ModelSources
    sets: TrainingSets
    bundle: Any = None


def run_models(models: ModelsResource, clip: ClipResource, faces: FacesResource, embeddings_clip: pl.DataFrame,
               reference_embeddings: pl.DataFrame, dataset_labels: pl.DataFrame) -> RunModels:
    """:func:`~facestats_core.models.model_source.decide_model_sources` on this run's sets and bundle
    (loaded and checked as :func:`load_run_bundle` does)."""
    sets = training_sets(embeddings_clip, reference_embeddings, dataset_labels)
    bundle = load_run_bundle(models, clip, faces) if models.bundle else None
    available = sets.available(models.bundle, bundle is not None and bundle.regressor is not None)
    return RunModels(decide_model_sources(available), sets, bundle)
