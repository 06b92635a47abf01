"""Held-out regression metrics of the attractiveness MLP and its baselines."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METRIC_NAMES = ("pearson_r", "mae", "rmse")


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
class TrainMetrics:
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
    def from_dict(cls, data: Mapping[str, Any]) -> TrainMetrics:
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
