"""The attractiveness regressor: one estimator with the scikit-learn shape.

``AttractivenessRegressor(config, cv_folds=5).fit(X, y)`` trains the MLP of
:mod:`~facestats_core.attractiveness.training` on embeddings ``X`` and mean ratings ``y``,
scores it and the two baselines on held-out rows and, with ``cv_folds >= 2``, cross-validates
all three; ``predict(X)`` gives ratings; ``evaluation`` (an
:class:`~facestats_core.attractiveness.evaluation.Evaluation`) says how good it is. Learned state
ends in ``_``. The same object comes back from a file
(:func:`facestats_core.attractiveness.model_file.load_regressor`) or a bundle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from facestats_core.attractiveness.cross_validation import collect_folds, fold_jobs
from facestats_core.attractiveness.evaluation import Evaluation
from facestats_core.attractiveness.training import (
    TRAINING_THREADS,
    MLPConfig,
    deterministic_torch,
    fit_and_score,
    module_with,
    predict_with,
    validate_xy,
)
from facestats_core.models.splits import data_hash, split_three
from facestats_core.models.worker_processes import run_jobs

if TYPE_CHECKING:
    import torch


class AttractivenessRegressor:
    """An MLP from CLIP embeddings to mean attractiveness ratings, with its evaluation.

    Parameters: ``config`` (the MLP and its training; ``None``: the defaults for ``X``'s width),
    ``cv_folds`` (k-fold cross-validation on ``fit`` when >= 2), ``num_threads`` (torch's intra-op
    threads during ``fit`` only; default ``TRAINING_THREADS`` = 1, ``None``: torch's own setting),
    ``workers`` (processes that share the final fit and the cross-validation's folds during ``fit``; each is
    seeded on its own, so the model and its evaluation do not depend on it),
    ``trained_on`` (``reference`` or ``analysed``: whose ratings) and
    ``fingerprint`` (:func:`~facestats_core.models.fingerprint.regressor_fingerprint` of what it
    is trained with; a run with the same one reuses the stored model).

    After ``fit`` (or loading): ``config_``, ``state_dict_`` (CPU tensors), ``target_mean_`` /
    ``target_std_`` (the training targets' scaling), ``epochs_run_``, ``best_epoch_``, ``data_hash_``,
    ``torch_version_``, ``evaluation`` and ``cv_predictions_`` (the cross-validation's out-of-fold
    prediction of each training row, in training order; empty without cross-validation); after
    ``fit`` only (else empty / 0): ``val_indices_``, ``test_indices_`` and ``train_seconds_`` (the
    MLP's training loop).
    """

    def __init__(self, config: MLPConfig | None = None, *, cv_folds: int = 0,
                 num_threads: int | None = TRAINING_THREADS, workers: int = 1,
                 trained_on: str = "", fingerprint: str = "") -> None:
        self.config = config
        self.cv_folds = cv_folds
        self.num_threads = num_threads
        self.workers = workers
        self.trained_on = trained_on
        self.fingerprint = fingerprint
        self.evaluation: Evaluation | None = None
        self._module: torch.nn.Module | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> AttractivenessRegressor:
        """Train with early stopping and evaluate against two baselines; returns ``self``.

        Rows are split three ways (``split_three``): the MLP is fitted on the training rows, the
        validation rows choose its early-stopping epoch, and the held-out test rows, which no
        model has seen, give ``evaluation.held_out``. Targets are standardised with the training
        rows' mean/std. Each epoch runs AdamW over seeded shuffled mini-batches, then measures
        validation MSE; the best epoch's weights are restored when ``patience`` epochs pass
        without improvement or at ``max_epochs``. Baselines, fitted on training + validation rows:
        their mean, and ridge with alpha chosen by ``RidgeCV``. With ``cv_folds >= 2`` the same
        protocol runs ``cv_folds`` times (``evaluation.cross_validation``; fold ``i`` seeded with
        ``fold_seed(seed, i)``), the final fit and the folds spread over ``workers`` processes. Global torch
        state (RNG, deterministic flag, threads) is restored afterwards.
        """
        config = self.config or MLPConfig(input_dim=int(np.shape(X)[1]))
        x, t = validate_xy(X, y, config)
        train_idx, val_idx, test_idx = split_three(len(t), config)
        jobs, folds = fold_jobs(x, t, config, self.cv_folds, self.num_threads) if self.cv_folds >= 2 else ([], [])
        results = run_jobs([(_final_fit, (x, t, train_idx, val_idx, test_idx, config, self.num_threads)), *jobs],
                           self.workers)
        fit, held_out = results[0]
        cv, cv_predictions = None, np.empty(0, dtype=np.float64)
        if jobs:
            cv, cv_predictions = collect_folds(results[1:], folds, len(t), config.seed)
        self._set_state(config, fit.state_dict, fit.target_mean, fit.target_std, Evaluation(held_out, cv),
                        epochs_run=fit.epochs_run, best_epoch=fit.best_epoch, data_hash=data_hash(x, t),
                        cv_predictions=cv_predictions)
        self.val_indices_, self.test_indices_, self.train_seconds_ = val_idx, test_idx, fit.seconds
        return self

    @classmethod
    def from_weights(cls, config: MLPConfig, state_dict: dict[str, Any], target_mean: float, target_std: float,
                     evaluation: Evaluation, *, trained_on: str = "", fingerprint: str = "", epochs_run: int = 0,
                     best_epoch: int = 0, data_hash: str = "", torch_version: str = "",
                     cv_predictions: np.ndarray | None = None) -> AttractivenessRegressor:
        """A fitted regressor from stored weights (checked by the caller) and what was recorded with them."""
        model = cls(config, trained_on=trained_on, fingerprint=fingerprint)
        model._set_state(config, state_dict, target_mean, target_std, evaluation, epochs_run=epochs_run,
                         best_epoch=best_epoch, data_hash=data_hash, torch_version=torch_version,
                         cv_predictions=cv_predictions)
        return model

    def _set_state(self, config: MLPConfig, state_dict: dict[str, Any], target_mean: float, target_std: float,
                   evaluation: Evaluation, *, epochs_run: int, best_epoch: int, data_hash: str,
                   torch_version: str = "", cv_predictions: np.ndarray | None = None) -> None:
        import torch

        self.config_ = config
        self.state_dict_ = state_dict
        self.target_mean_ = float(target_mean)
        self.target_std_ = float(target_std)
        self.evaluation = evaluation
        self.epochs_run_, self.best_epoch_, self.data_hash_ = epochs_run, best_epoch, data_hash
        self.cv_predictions_ = (np.empty(0, dtype=np.float64) if cv_predictions is None
                                else np.asarray(cv_predictions, dtype=np.float64))
        self.torch_version_ = torch_version or torch.__version__
        self.val_indices_ = self.test_indices_ = np.empty(0, dtype=np.int64)
        self.train_seconds_ = 0.0
        with torch.random.fork_rng(devices=[]):  # the module's throw-away initialisation leaves torch's RNG alone
            self._module = module_with(config, state_dict)

    def predict(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Ratings (float64, rating scale) of ``(n, input_dim)`` embeddings."""
        if self._module is None:
            raise ValueError("this AttractivenessRegressor is not fitted: call fit(X, y) first")
        if np.ndim(X) != 2 or np.shape(X)[1] != self.config_.input_dim:
            raise ValueError(f"expected X of shape (n, {self.config_.input_dim}), got {np.shape(X)}")
        return predict_with(self._module, X, self.target_mean_, self.target_std_, batch_size)


def _final_fit(x: np.ndarray, t: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray,
               config: MLPConfig, num_threads: int | None) -> tuple[Any, Any]:
    """The model's own fit (seeded with ``config.seed``) and its held-out metrics: a job of :func:`run_jobs`."""
    with deterministic_torch(config.seed, num_threads):
        fit, held_out, _ = fit_and_score(x, t, train_idx, val_idx, test_idx, config)
    return fit, held_out
