"""Synthetic embeddings with planted structure, shared by the model tests (here and in tests/dagster)."""

from __future__ import annotations

import numpy as np


def planted_ratings(n: int, d: int, seed: int = 0, noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings and ratings around 3 that are linear in them plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # like L2-normalised CLIP features
    z = X @ rng.standard_normal(d)
    y = 3.0 + 0.7 * z / z.std() + noise * rng.standard_normal(n)
    return X, y


def class_blobs(
    n: int, classes: tuple[str, ...], dim: int = 64, seed: int = 0, noise: float = 0.6, probs=None
) -> tuple[np.ndarray, np.ndarray]:
    """Class means on the unit sphere plus Gaussian noise, rows L2-normalised; returns (X, labels)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(len(classes), dim))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    idx = rng.choice(len(classes), size=n, p=probs)
    X = means[idx] + noise * rng.normal(size=(n, dim)) / np.sqrt(dim)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), np.asarray(classes, dtype=object)[idx]


def class_posteriors(n: int, k: int, seed: int, prior=None) -> tuple[np.ndarray, np.ndarray]:
    """Noisy but informative posteriors ``(n, k)`` of ``n`` faces of ``k`` classes drawn with ``prior``
    (uniform when None), and their true classes."""
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=prior if prior is not None else np.full(k, 1 / k))
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]
    P = np.exp(logits)
    return P / P.sum(axis=1, keepdims=True), y


def small_mlp_config():  # -> MLPConfig (torch is imported lazily by the callers' importorskip)
    """A tiny, fast MLP configuration for 8-dimensional synthetic embeddings."""
    from facestats_core.attractiveness.training import MLPConfig

    return MLPConfig(input_dim=8, hidden=(16,), dropout=0.1, batch_size=32, max_epochs=4, patience=3)


def small_regressor(cv_folds: int = 0):  # -> AttractivenessRegressor
    """`small_mlp_config()` fitted on 160 planted ratings (seed 1), cross-validated when `cv_folds >= 2`."""
    from facestats_core.attractiveness.estimator import AttractivenessRegressor

    X, y = planted_ratings(160, 8, seed=1)
    return AttractivenessRegressor(small_mlp_config(), cv_folds=cv_folds).fit(X, y)
