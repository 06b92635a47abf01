"""CLIP's text tower as a classifier: zero-shot attributes and open-vocabulary tags for a loaded CLIP.

:func:`prompt_models` encodes every prompt once (cached per model revision and prompt set,
see :mod:`facestats_core.models.text_cache`); :func:`zero_shot_predictions` and
:func:`tag_predictions` then score any number of image embeddings with matrix products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from facestats_core.embedding.text import logit_scale
from facestats_core.models.prediction_method import with_method
from facestats_core.models.prompts import attribute_prompt_sets
from facestats_core.models.tag_config import TagSpec
from facestats_core.models.tags import tag_probabilities, tag_prompt_groups
from facestats_core.models.zero_shot import (
    ZeroShotClassifier,
    attribute_prompt_groups,
    clip_prompt_embeddings,
    zero_shot_attributes,
    zero_shot_classifiers,
)


@dataclass(frozen=True)
class PromptModels:
    """Zero-shot attribute classifiers, the tag specs and their ensembled prompt embeddings."""

    attributes: dict[str, ZeroShotClassifier]
    tags: tuple[TagSpec, ...]
    embeddings: dict[str, np.ndarray]
    logit_scale: float


def prompt_models(clip: Any, tags: Sequence[TagSpec] = (), cache_dir: Any | None = None) -> PromptModels:
    """Encode the attribute prompt ensembles and the tag prompts with ``clip``'s text tower.

    Raises ``ClipLoadError`` when the model has no tokenizer saved with it.
    """

    sets = attribute_prompt_sets()
    groups = {**attribute_prompt_groups(sets), **tag_prompt_groups(tags)}
    embeddings = clip_prompt_embeddings(clip, groups, cache_dir)
    scale = logit_scale(clip)
    return PromptModels(zero_shot_classifiers(sets, embeddings, scale), tuple(tags), embeddings, scale)


def zero_shot_predictions(models: PromptModels, X: np.ndarray) -> pl.DataFrame:
    """``predict_attributes``' columns for every attribute plus ``<attr>_method = zero_shot``."""
    return with_method(zero_shot_attributes(models.attributes, X), "zero_shot")


def tag_predictions(models: PromptModels, X: np.ndarray) -> pl.DataFrame:
    """One ``tag_<name>`` probability column per tag (no columns without tags)."""
    if not models.tags:
        return pl.DataFrame()
    return tag_probabilities(X, models.tags, models.embeddings, models.logit_scale)
