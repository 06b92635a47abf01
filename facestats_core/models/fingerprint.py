"""The fingerprint of a training run: its data and every setting that shapes the fitted model.

A model stage stores the fingerprint in the model's metadata (``training_fingerprint``); when the
next run's fingerprint is the same, the stored model is what training would produce again (the
training is seeded and deterministic), so the stage reuses it instead of training. Anything that
changes the data (the embeddings, the targets, their order), a setting, the library versions or
the recipe (:data:`RECIPE`) changes the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from facestats_core.models.splits import data_hash

RECIPE = "training-fingerprint-v2"
"""Bump when a training procedure changes in a way its settings do not show (v2: each cross-validation
fold of the regressor seeded on its own, ``cross_validation.fold_seed``)."""


def training_fingerprint(X: np.ndarray, y: np.ndarray, settings: Mapping[str, Any]) -> str:
    """sha256 over :data:`RECIPE`, :func:`~facestats_core.models.splits.data_hash` of ``(X, y)``
    and ``settings`` as sorted JSON (numbers, strings, lists, nested mappings)."""
    digest = hashlib.sha256(RECIPE.encode())
    digest.update(data_hash(X, y).encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def reusable(stored_metadata: Mapping[str, Any] | None, fingerprint: str) -> bool:
    """Whether a stored model's metadata carries this ``fingerprint``."""
    return bool(stored_metadata) and stored_metadata.get("training_fingerprint") == fingerprint  # type: ignore[union-attr]


def regressor_fingerprint(X: np.ndarray, y: np.ndarray, config: Any, folds: int, trained_on: str) -> str:
    """The fingerprint of the attractiveness regressor's training: data, MLP settings (``config``,
    an :class:`~facestats_core.attractiveness.training.MLPConfig`), cross-validation folds, the rated
    set it learned from and the torch version."""
    import torch  # noqa: PLC0415 - heavy, imported where it is used

    return training_fingerprint(X, y, {"kind": "attractiveness_regressor", "config": asdict(config),
                                       "cv_folds": folds, "trained_on": trained_on, "torch": torch.__version__})
