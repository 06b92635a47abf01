"""Seeded row splits of the attractiveness training data, and its content hash.

Splits use scikit-learn's `train_test_split` and `KFold`, like the attribute
stage. Their random state is numpy's `default_rng(seed)` stream (PCG64) behind
the legacy `RandomState` interface scikit-learn takes, so a split is the one
`np.random.default_rng(seed).permutation(n)` gives: held-out rows first, the
rest after. Every part is returned sorted.

**data_hash**: sha256 over a version tag, the shape of `X`, `X` as
C-contiguous little-endian float32 bytes and `y` as little-endian float64
bytes. It is row-order sensitive on purpose: the held-out split depends on row
order, so equal hashes (with equal config) mean an identical training run.
`assemble_training_data` sorts rows by `image_id` so the order (and hash)
does not depend on how the inputs happened to be ordered.
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

import numpy as np

_HASH_TAG = b"facestats-attractiveness-data-v1"


class SplitFractions(Protocol):
    """What `split_three` reads from a training config (e.g. `MLPConfig`)."""

    test_fraction: float
    val_fraction: float
    seed: int


def _random_state(seed: int) -> np.random.RandomState:
    """A `RandomState` drawing numpy's `default_rng(seed)` stream (see the module docstring)."""
    return np.random.RandomState(np.random.PCG64(seed))


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded two-way split of `range(n)`; returns sorted `(rest_idx, held_idx)`.

    `held` has `round(n * val_fraction)` rows (at least 2); `rest` at least 2.
    """
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 - heavy, imported when used
    n_val = max(2, int(round(n * val_fraction)))
    if n - n_val < 2:
        raise ValueError(f"need at least 2 training and 2 validation rows, got n={n}")
    rest, held = train_test_split(np.arange(n), test_size=n_val, random_state=_random_state(seed))
    return np.sort(rest), np.sort(held)


def split_three(n: int, config: SplitFractions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded `(train_idx, val_idx, test_idx)`: `test_fraction` of the rows, then
    `val_fraction` of the rest for early stopping; each part has at least 2 rows."""
    if n < 6:
        raise ValueError(f"need at least 6 rows (2 each to fit, stop early and test), got n={n}")
    rest, test = split_indices(n, config.test_fraction, config.seed)
    if len(rest) < 4:
        raise ValueError(f"need at least 2 training and 2 validation rows besides the test rows, got n={n}")
    inner_train, inner_val = split_indices(len(rest), config.val_fraction, config.seed + 1)
    return rest[inner_train], rest[inner_val], test


def kfold_indices(n: int, k: int, seed: int) -> list[np.ndarray]:
    """A seeded partition of `range(n)` into `k` sorted folds of near-equal size (larger folds first)."""
    from sklearn.model_selection import KFold  # noqa: PLC0415 - heavy, imported when used
    if k < 2 or n < 3 * k:
        raise ValueError(f"{k}-fold cross-validation needs k >= 2 and at least {3 * k} rows, got n={n}")
    folds = KFold(n_splits=k, shuffle=True, random_state=_random_state(seed)).split(np.arange(n))
    return [np.sort(test) for _, test in folds]


def data_hash(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the training data (see the module docstring for the exact recipe)."""
    x = np.ascontiguousarray(X, dtype="<f4")
    t = np.ascontiguousarray(y, dtype="<f8")
    digest = hashlib.sha256(_HASH_TAG)
    digest.update(json.dumps(list(x.shape)).encode())
    digest.update(x.tobytes())
    digest.update(t.tobytes())
    return digest.hexdigest()
