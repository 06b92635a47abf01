"""The attractiveness regressor's evaluation: held-out metrics of the MLP and its two baselines and,
when it ran, their k-fold cross-validation. One type, :class:`Evaluation`, with ``to_dict`` /
``from_dict``: the model file stores its dict, and the asset checks, the UI markdown and the report
read it back as this type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METRIC_NAMES = ("pearson_r", "mae", "rmse")
MODEL_NAMES = ("mlp", "ridge", "mean_baseline")
"""The MLP and its two baselines: ridge on the embeddings, and the training targets' mean."""


@dataclass(frozen=True)
class RegressionMetrics:
    """Held-out metrics of one predictor (rating scale). NaN Pearson = undefined."""

    pearson_r: float
    mae: float
    rmse: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegressionMetrics:
        """Inverse of `asdict` after `nan_to_none` (`None` becomes NaN)."""
        return cls(**{name: none_to_nan(data[name]) for name in METRIC_NAMES})


@dataclass(frozen=True)
class HeldOutMetrics:
    """MLP vs. baselines on the same held-out test rows.

    `n_train` rows fitted the MLP, `n_val` rows chose its early-stopping
    epoch and `n_test` rows (seen by no model) gave the metrics. Ridge and the
    mean were fitted on the `n_train + n_val` rows.
    """

    mlp: RegressionMetrics
    mean_baseline: RegressionMetrics
    ridge: RegressionMetrics
    ridge_alpha: float
    n_train: int
    n_val: int
    n_test: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN becomes `None`)."""
        return nan_to_none(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeldOutMetrics:
        """Inverse of `to_dict`. Files written before `n_test` existed measured on
        the early-stopping rows, so there `n_test` is `n_val`."""
        return cls(
            mlp=RegressionMetrics.from_dict(data["mlp"]),
            mean_baseline=RegressionMetrics.from_dict(data["mean_baseline"]),
            ridge=RegressionMetrics.from_dict(data["ridge"]),
            ridge_alpha=float(data["ridge_alpha"]),
            n_train=int(data["n_train"]),
            n_val=int(data["n_val"]),
            n_test=int(data.get("n_test", data["n_val"])),
        )


def nan_to_none(obj: Any) -> Any:
    """`obj` with every non-finite float (in nested dicts, lists, tuples) replaced by `None`."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj


def none_to_nan(value: Any) -> float:
    """`float(value)`, with `None` (a JSON-stored NaN) becoming NaN."""
    return float("nan") if value is None else float(value)


def _is_constant(values: np.ndarray) -> bool:
    return bool(np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())))


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson correlation; NaN with fewer than 2 rows or when either side is constant."""
    if y_true.size < 2 or _is_constant(y_true) or _is_constant(y_pred):
        return float("nan")
    return float(np.corrcoef(y_true, y_pred)[0, 1])


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> RegressionMetrics:
    """Pearson r (NaN if either side is constant), MAE and RMSE."""
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error  # noqa: PLC0415 - heavy, imported when used
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    return RegressionMetrics(
        pearson_r=pearson_r(t, p),
        mae=float(mean_absolute_error(t, p)),
        rmse=float(root_mean_squared_error(t, p)),
    )


@dataclass(frozen=True)
class MetricSummary:
    """Mean and standard deviation of one metric over cross-validation folds."""

    mean: float
    std: float


@dataclass(frozen=True)
class CrossValidation:
    """k-fold cross-validation of the MLP and both baselines (one `HeldOutMetrics` per fold).

    Every row is a test row in exactly one fold; within a fold the MLP, ridge and the mean see only
    that fold's other rows (:func:`facestats_core.attractiveness.cross_validation.cross_validate`).
    """

    folds: tuple[HeldOutMetrics, ...]
    seed: int

    @property
    def k(self) -> int:
        """The number of folds."""
        return len(self.folds)

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
                "k": self.k,
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
        return cls(folds=tuple(HeldOutMetrics.from_dict(f) for f in data["folds"]), seed=int(data["seed"]))


@dataclass(frozen=True)
class Evaluation:
    """How the regressor was measured: ``held_out`` (the test rows of its own split, seen by no
    model) and ``cross_validation`` (None when it did not run)."""

    held_out: HeldOutMetrics
    cross_validation: CrossValidation | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"metrics": held-out dict, "cross_validation": k-fold dict}``, the latter only when it ran:
        the keys the model file's JSON holds them under."""
        out: dict[str, Any] = {"metrics": self.held_out.to_dict()}
        if self.cross_validation is not None:
            out["cross_validation"] = self.cross_validation.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """Inverse of `to_dict`; reads a whole model JSON too (its other keys are ignored)."""
        cv = data.get("cross_validation")
        return cls(HeldOutMetrics.from_dict(data["metrics"]), CrossValidation.from_dict(cv) if cv else None)

    def mlp_and_ridge_rmse(self) -> tuple[float, float, str]:
        """``(MLP RMSE, ridge RMSE, protocol)``: the k-fold means when cross-validation ran, else the
        held-out split's."""
        cv = self.cross_validation
        if cv is not None:
            return cv.summary("mlp", "rmse").mean, cv.summary("ridge", "rmse").mean, f"{cv.k}-fold CV"
        return self.held_out.mlp.rmse, self.held_out.ridge.rmse, "held-out split"
