"""k-fold cross-validation of the attractiveness MLP against the ridge and mean baselines."""

from __future__ import annotations

import numpy as np

from facestats_core.attractiveness.evaluation import CrossValidation, HeldOutMetrics
from facestats_core.attractiveness.training import (
    TRAINING_THREADS,
    MLPConfig,
    deterministic_torch,
    fit_and_score,
    validate_xy,
)
from facestats_core.models.splits import kfold_indices, split_indices


def cross_validate(
    X: np.ndarray, y: np.ndarray, config: MLPConfig | None = None, k: int = 5, *,
    num_threads: int | None = TRAINING_THREADS,
) -> CrossValidation:
    """k-fold cross-validation of the MLP, ridge and the mean (seeded by `config.seed`).

    Each fold is the test set once; of the other rows `config.val_fraction`
    choose the MLP's early-stopping epoch and the rest fit it, while ridge and
    the mean are fitted on all of them. This is the protocol of SCUT-FBP5500's
    published 5-fold results (there with fixed folds), so figures are comparable
    in kind; it costs `k` trainings.
    """
    return cross_validate_with_predictions(X, y, config, k, num_threads=num_threads)[0]


def cross_validate_with_predictions(
    X: np.ndarray, y: np.ndarray, config: MLPConfig | None = None, k: int = 5, *,
    num_threads: int | None = TRAINING_THREADS,
) -> tuple[CrossValidation, np.ndarray]:
    """:func:`cross_validate` and its out-of-fold predictions: ``(n,)`` float64, each row predicted
    by the MLP of the fold that held it out (the rows' folds: ``kfold_indices(n, k, config.seed)``)."""
    config = config or MLPConfig(input_dim=int(np.shape(X)[1]))
    x, t = validate_xy(X, y, config)
    folds = kfold_indices(len(t), k, config.seed)
    results: list[HeldOutMetrics] = []
    predictions = np.full(len(t), np.nan, dtype=np.float64)
    with deterministic_torch(config.seed, num_threads):
        for i, test_idx in enumerate(folds):
            rest = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i]))
            inner_train, inner_val = split_indices(len(rest), config.val_fraction, config.seed + 1 + i)
            _, metrics, predicted = fit_and_score(x, t, rest[inner_train], rest[inner_val], test_idx, config)
            results.append(metrics)
            predictions[test_idx] = predicted
    return CrossValidation(folds=tuple(results), seed=config.seed), predictions
