"""k-fold cross-validation of the attractiveness MLP against the ridge and mean baselines.

Every fold is its own job (:func:`fold_jobs`): its rows, its early-stopping split and its torch seed
(:func:`fold_seed`) depend only on the fold number, so the folds can run in worker processes, in any
order, with the same result (:func:`~facestats_core.models.worker_processes.run_jobs`).
"""

from __future__ import annotations

from collections.abc import Sequence

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
from facestats_core.models.worker_processes import Job, run_jobs


def fold_seed(seed: int, fold: int) -> int:
    """The torch seed of fold ``fold``'s MLP (weights and dropout): ``seed + 1 + fold``, so each fold is
    seeded on its own and not by what the folds before it drew."""
    return seed + 1 + fold


def fit_fold(x: np.ndarray, t: np.ndarray, fold: int, test_idx: np.ndarray, rest: np.ndarray, config: MLPConfig,
             num_threads: int | None) -> tuple[HeldOutMetrics, np.ndarray]:
    """Fold ``fold``: the MLP and baselines fitted on ``rest`` (``config.val_fraction`` of it chooses the
    early-stopping epoch), scored on ``test_idx``; returns the metrics and the MLP's predictions of ``test_idx``."""
    inner_train, inner_val = split_indices(len(rest), config.val_fraction, config.seed + 1 + fold)
    with deterministic_torch(fold_seed(config.seed, fold), num_threads):
        _, metrics, predicted = fit_and_score(x, t, rest[inner_train], rest[inner_val], test_idx, config)
    return metrics, predicted


def fold_jobs(x: np.ndarray, t: np.ndarray, config: MLPConfig, k: int,
              num_threads: int | None = TRAINING_THREADS) -> tuple[list[Job], list[np.ndarray]]:
    """The ``k`` fold jobs (:func:`fit_fold`) of validated ``x``/``t`` and each fold's test rows."""
    folds = kfold_indices(len(t), k, config.seed)
    jobs: list[Job] = []
    for i, test_idx in enumerate(folds):
        rest = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i]))
        jobs.append((fit_fold, (x, t, i, test_idx, rest, config, num_threads)))
    return jobs, list(folds)


def collect_folds(results: Sequence[tuple[HeldOutMetrics, np.ndarray]], folds: Sequence[np.ndarray], n: int,
                  seed: int) -> tuple[CrossValidation, np.ndarray]:
    """The cross-validation and the out-of-fold predictions ``(n,)`` from the fold jobs' results."""
    predictions = np.full(n, np.nan, dtype=np.float64)
    for (_, predicted), test_idx in zip(results, folds, strict=True):
        predictions[test_idx] = predicted
    return CrossValidation(folds=tuple(metrics for metrics, _ in results), seed=seed), predictions


def cross_validate(
    X: np.ndarray, y: np.ndarray, config: MLPConfig | None = None, k: int = 5, *,
    num_threads: int | None = TRAINING_THREADS, workers: int = 1,
) -> CrossValidation:
    """k-fold cross-validation of the MLP, ridge and the mean (seeded by `config.seed`).

    Each fold is the test set once; of the other rows `config.val_fraction`
    choose the MLP's early-stopping epoch and the rest fit it, while ridge and
    the mean are fitted on all of them. This is the protocol of SCUT-FBP5500's
    published 5-fold results (there with fixed folds), so figures are comparable
    in kind; it costs `k` trainings, spread over `workers` processes (same result).
    """
    return cross_validate_with_predictions(X, y, config, k, num_threads=num_threads, workers=workers)[0]


def cross_validate_with_predictions(
    X: np.ndarray, y: np.ndarray, config: MLPConfig | None = None, k: int = 5, *,
    num_threads: int | None = TRAINING_THREADS, workers: int = 1,
) -> tuple[CrossValidation, np.ndarray]:
    """:func:`cross_validate` and its out-of-fold predictions: ``(n,)`` float64, each row predicted
    by the MLP of the fold that held it out (the rows' folds: ``kfold_indices(n, k, config.seed)``)."""
    config = config or MLPConfig(input_dim=int(np.shape(X)[1]))
    x, t = validate_xy(X, y, config)
    jobs, folds = fold_jobs(x, t, config, k, num_threads)
    return collect_folds(run_jobs(jobs, workers), folds, len(t), config.seed)
