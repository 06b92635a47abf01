"""Zero-shot attributes: CLIP image embeddings against prompt-ensemble text embeddings.

For each class, the text embedding is the mean of the L2-normalised
embeddings of its prompts, L2-normalised again (Radford et al. 2021, 3.1.4).
The probabilities of an image are ``softmax(logit_scale * x @ T.T)`` over the
attribute's classes, with ``x`` the L2-normalised image embedding, ``T`` the
class embeddings and ``logit_scale`` the model's own temperature
(:func:`facestats_core.embedding.text.logit_scale`), which is what
``CLIPModel`` computes as ``logits_per_image``.

A :class:`ZeroShotClassifier` has the ``classes`` / ``predict_proba`` of a
trained probe, so :func:`zero_shot_attributes` returns exactly the columns of
:func:`facestats_core.models.classifiers.predict_attributes`, plus
``<attr>_method`` = ``"zero_shot"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from facestats_core.embedding.text import encode_texts
from facestats_core.embedding.tower import LoadedClip
from facestats_core.embedding.vectors import l2_normalize
from facestats_core.models.classifiers import predict_attributes
from facestats_core.models.prediction_method import with_method
from facestats_core.models.prompts import PromptSet
from facestats_core.models.text_cache import cached_text_embeddings, text_cache_key

TextEncoder = Callable[[Sequence[str]], np.ndarray]
"""Texts → L2-normalised ``(len(texts), dim)`` features, e.g. ``partial(encode_texts, clip)``."""


def ensemble(prompt_embeddings: np.ndarray) -> np.ndarray:
    """Mean of the L2-normalised rows, L2-normalised again: one float32 ``(dim,)`` vector."""
    rows = l2_normalize(np.atleast_2d(prompt_embeddings))
    if rows.shape[0] == 0:
        raise ValueError("cannot ensemble zero prompt embeddings")
    return l2_normalize(rows.mean(axis=0, keepdims=True))[0]


def ensemble_text_embeddings(encode: TextEncoder, groups: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """One ensembled embedding per group of prompts; every prompt is encoded once, in one call."""
    keys = list(groups)
    prompts = [p for key in keys for p in groups[key]]
    if any(not groups[key] for key in keys):
        raise ValueError(f"groups without prompts: {[k for k in keys if not groups[k]]}")
    features = np.asarray(encode(prompts), dtype=np.float32) if prompts else np.zeros((0, 0), np.float32)
    if features.shape[0] != len(prompts):
        raise ValueError(f"the encoder returned {features.shape[0]} rows for {len(prompts)} prompts")
    out: dict[str, np.ndarray] = {}
    start = 0
    for key in keys:
        stop = start + len(groups[key])
        out[key] = ensemble(features[start:stop])
        start = stop
    return out


def attribute_prompt_groups(prompt_sets: Mapping[str, PromptSet]) -> dict[str, tuple[str, ...]]:
    """Prompt groups keyed ``"<attribute>/<class>"`` (the unit :func:`ensemble_text_embeddings` and the cache take)."""
    return {
        f"{attr}/{cls}": prompts
        for attr, prompt_set in prompt_sets.items()
        for cls, prompts in zip(prompt_set.classes, prompt_set.prompts)
    }


def softmax_probabilities(X: np.ndarray, class_embeddings: np.ndarray, logit_scale: float) -> np.ndarray:
    """``softmax(logit_scale * l2(X) @ class_embeddings.T)`` row-wise, float32 ``(n, n_classes)``."""
    x = l2_normalize(np.asarray(X, dtype=np.float32))
    t = np.asarray(class_embeddings, dtype=np.float32)
    if x.ndim != 2 or t.ndim != 2 or x.shape[1] != t.shape[1]:
        raise ValueError(f"image embeddings {x.shape} and text embeddings {t.shape} differ in dimension")
    logits = np.float32(logit_scale) * (x @ t.T)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class ZeroShotClassifier:
    """One attribute's classes (canonical order) and their ensembled text embeddings."""

    classes: tuple[str, ...]
    text_embeddings: np.ndarray
    logit_scale: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, len(classes)) float32 probabilities in canonical order."""
        return softmax_probabilities(X, self.text_embeddings, self.logit_scale)


def zero_shot_classifiers(
    prompt_sets: Mapping[str, PromptSet], group_embeddings: Mapping[str, np.ndarray], logit_scale: float
) -> dict[str, ZeroShotClassifier]:
    """A classifier per attribute from the ``"<attribute>/<class>"`` embeddings of :func:`ensemble_text_embeddings`."""
    out: dict[str, ZeroShotClassifier] = {}
    for attr, prompt_set in prompt_sets.items():
        missing = [c for c in prompt_set.classes if f"{attr}/{c}" not in group_embeddings]
        if missing:
            raise KeyError(f"no text embedding for {attr} classes {missing}")
        matrix = np.stack([group_embeddings[f"{attr}/{c}"] for c in prompt_set.classes]).astype(np.float32)
        out[attr] = ZeroShotClassifier(prompt_set.classes, matrix, float(logit_scale))
    return out


def zero_shot_attributes(classifiers: Mapping[str, ZeroShotClassifier], X: np.ndarray) -> pl.DataFrame:
    """``predict_attributes`` columns (``<attr>_pred``/``_prob``/``_probs``) plus ``<attr>_method`` = ``zero_shot``."""
    return with_method(predict_attributes(classifiers, X), "zero_shot")


def clip_prompt_embeddings(
    clip: LoadedClip, groups: Mapping[str, Sequence[str]], cache_dir: Any | None = None
) -> dict[str, np.ndarray]:
    """Ensembled text embeddings of ``groups`` with ``clip``'s text tower, cached per (model, revision, prompts)."""
    key = text_cache_key(clip.model_id, clip.revision, groups)
    compute = partial(ensemble_text_embeddings, partial(encode_texts, clip))
    return cached_text_embeddings(cache_dir, key, groups, compute)
