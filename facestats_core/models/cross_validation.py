"""k-fold cross-validation of the attractiveness MLP against the ridge and mean baselines."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from facestats_core.models.regression_metrics import METRIC_NAMES, TrainMetrics, nan_to_none
from facestats_core.models.regressor import MLPConfig, deterministic_torch, fit_and_score, validate_xy
from facestats_core.models.splits import kfold_indices, split_indices

MODEL_NAMES = ("mlp", "ridge", "mean_baseline")


@dataclass(frozen=True)
class MetricSummary:
    """Mean and standard deviation of one metric over cross-validation folds."""

    mean: float
    std: float


@dataclass(frozen=True)
class CrossValidation:
    """k-fold cross-validation of the MLP and both baselines (one `TrainMetrics` per fold).

    Every row is a test row in exactly one fold; within a fold the MLP, ridge and
    the mean see only that fold's other rows (see `cross_validate`).
    """

    folds: tuple[TrainMetrics, ...]
    seed: int

    def summary(self, model: str, metric: str) -> MetricSummary:
        """Mean and sample std over folds of `metric` (`pearson_r`/`mae`/`rmse`) of `model`
        (`mlp`/`ridge`/`mean_baseline`); NaN folds are skipped."""
        values = np.array([getattr(getattr(fold, model), metric) for fold in self.folds], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return MetricSummary(float("nan"), float("nan"))
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return MetricSummary(float(values.mean()), std)

    def mlp_minus_ridge_rmse(self) -> MetricSummary:
        """Per-fold RMSE difference MLP − ridge: mean and its standard error (negative = MLP better)."""
        diffs = np.array([fold.mlp.rmse - fold.ridge.rmse for fold in self.folds], dtype=np.float64)
        se = float(diffs.std(ddof=1) / math.sqrt(diffs.size)) if diffs.size > 1 else float("nan")
        return MetricSummary(float(diffs.mean()), se)

    def mlp_wins(self, baseline: str) -> int:
        """Number of folds where the MLP's RMSE is below `baseline`'s."""
        return sum(fold.mlp.rmse < getattr(fold, baseline).rmse for fold in self.folds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: per-fold metrics plus mean/std summaries per model and metric."""
        summary = {
            model: {metric: asdict(self.summary(model, metric)) for metric in METRIC_NAMES}
            for model in MODEL_NAMES
        }
        return nan_to_none(
            {
                "k": len(self.folds),
                "seed": self.seed,
                "summary": summary,
                "mlp_minus_ridge_rmse": asdict(self.mlp_minus_ridge_rmse()),
                "mlp_wins_vs_ridge": self.mlp_wins("ridge"),
                "mlp_wins_vs_mean": self.mlp_wins("mean_baseline"),
                "folds": [fold.to_dict() for fold in self.folds],
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrossValidation:
        """Inverse of `to_dict` (the summaries are recomputed from the folds)."""
        return cls(folds=tuple(TrainMetrics.from_dict(f) for f in data["folds"]), seed=int(data["seed"]))


def cross_validate(
    X: np.ndarray, y: np.ndarray, config: MLPConfig | None = None, k: int = 5, *, num_threads: int | None = None
) -> CrossValidation:
    """k-fold cross-validation of the MLP, ridge and the mean (seeded by `config.seed`).

    Each fold is the test set once; of the other rows `config.val_fraction`
    choose the MLP's early-stopping epoch and the rest fit it, while ridge and
    the mean are fitted on all of them. This is the protocol of SCUT-FBP5500's
    published 5-fold results (there with fixed folds), so figures are comparable
    in kind; it costs `k` trainings.
    """
    config = config or MLPConfig(input_dim=int(np.shape(X)[1]))
    x, t = validate_xy(X, y, config)
    folds = kfold_indices(len(t), k, config.seed)
    results: list[TrainMetrics] = []
    with deterministic_torch(config.seed, num_threads):
        for i, test_idx in enumerate(folds):
            rest = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i]))
            inner_train, inner_val = split_indices(len(rest), config.val_fraction, config.seed + 1 + i)
            _, metrics = fit_and_score(x, t, rest[inner_train], rest[inner_val], test_idx, config)
            results.append(metrics)
    return CrossValidation(folds=tuple(results), seed=config.seed)
