"""Attractiveness regressor: a small MLP on CLIP embeddings, plus scoring.

torch is imported inside the functions that need it, so importing this module
is cheap. Training is deterministic on CPU for a fixed seed, data and thread
count (float reductions may differ between thread counts).

Conventions
-----------
* **Percentile** (mid-rank): ``percentile = 100 * (count(< x) + 0.5 * count(== x)) / n``
  over the finite reference scores. Inside a table this equals
  ``100 * (average_rank - 0.5) / n`` with 1-based average ranks, so equal scores
  share a percentile, values lie strictly inside (0, 100), one score or all-equal
  scores get 50, and :func:`percentile_against` gives a new image exactly the
  percentile it would get if it were in the table.
* **Decile**: ``decile = min(10, floor(percentile / 10) + 1)``, i.e. decile ``d``
  covers percentiles ``[10(d-1), 10d)``; decile 10 is exactly ``percentile >= 90``
  (the top 10%). ``n == 1`` and all-equal tables are decile 6 (percentile 50).
* **data_hash**: sha256 over a version tag, the shape of ``X``, ``X`` as
  C-contiguous little-endian float32 bytes and ``y`` as little-endian float64
  bytes. It is row-order sensitive on purpose: the held-out split depends on row
  order, so equal hashes (with equal config) mean an identical training run.
  :func:`assemble_training_data` sorts rows by ``image_id`` so the order (and
  hash) does not depend on how the inputs happened to be ordered.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from facestats_core.io.atomic import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    import torch

DEFAULT_NAME = "attractiveness_regressor"
FORMAT_VERSION = 1
_HASH_TAG = b"facestats-attractiveness-data-v1"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TARGET_KEYS = ("target_mean", "target_std")
_RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-4, 4, 17))

SCORE_SCHEMA: dict[str, Any] = {
    "image_id": pl.Utf8,
    "attractiveness_raw": pl.Float64,
    "attractiveness_percentile": pl.Float64,
    "attractiveness_decile": pl.Int8,
}


class RegressorIntegrityError(ValueError):
    """The saved weights do not match the checksum recorded next to them."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class MLPConfig:
    """Hyper-parameters of the attractiveness MLP and its training loop.

    ``test_fraction`` of the rows is held out and used only for the reported
    metrics; ``val_fraction`` of the remaining rows decides early stopping; the
    MLP is fitted on the rest.
    """

    input_dim: int = 512
    hidden: tuple[int, ...] = (256, 64)
    dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 15
    test_fraction: float = 0.2
    val_fraction: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.input_dim < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(f"input_dim and hidden sizes must be >= 1, got {self.input_dim}, {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("test_fraction", "val_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0 and weight_decay >= 0")
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("batch_size, max_epochs and patience must be >= 1")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MLPConfig:
        """Rebuild a config from :func:`dataclasses.asdict` output (e.g. JSON)."""
        values = dict(data)
        if "hidden" in values:
            values["hidden"] = tuple(values["hidden"])
        return cls(**values)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class RegressionMetrics:
    """Held-out metrics of one predictor (rating scale). NaN Pearson = undefined."""

    pearson_r: float
    mae: float
    rmse: float


@dataclass(frozen=True)
class TrainMetrics:
    """MLP vs. baselines on the same held-out test rows.

    ``n_train`` rows fitted the MLP, ``n_val`` rows chose its early-stopping
    epoch and ``n_test`` rows (seen by no model) gave the metrics. Ridge and the
    mean were fitted on the ``n_train + n_val`` rows.
    """

    mlp: RegressionMetrics
    mean_baseline: RegressionMetrics
    ridge: RegressionMetrics
    ridge_alpha: float
    n_train: int
    n_val: int
    n_test: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN becomes ``None``)."""
        return _nan_to_none(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainMetrics:
        """Inverse of :meth:`to_dict`. Files written before ``n_test`` existed measured on
        the early-stopping rows, so there ``n_test`` is ``n_val``."""

        def reg(d: Mapping[str, Any]) -> RegressionMetrics:
            return RegressionMetrics(**{k: _none_to_nan(d[k]) for k in ("pearson_r", "mae", "rmse")})

        return cls(
            mlp=reg(data["mlp"]),
            mean_baseline=reg(data["mean_baseline"]),
            ridge=reg(data["ridge"]),
            ridge_alpha=float(data["ridge_alpha"]),
            n_train=int(data["n_train"]),
            n_val=int(data["n_val"]),
            n_test=int(data.get("n_test", data["n_val"])),
        )


@dataclass(frozen=True)
class MetricSummary:
    """Mean and standard deviation of one metric over cross-validation folds."""

    mean: float
    std: float


@dataclass(frozen=True)
class CrossValidation:
    """k-fold cross-validation of the MLP and both baselines (one :class:`TrainMetrics` per fold).

    Every row is a test row in exactly one fold; within a fold the MLP, ridge and
    the mean see only that fold's other rows (see :func:`cross_validate`).
    """

    folds: tuple[TrainMetrics, ...]
    seed: int

    def summary(self, model: str, metric: str) -> MetricSummary:
        """Mean and sample std over folds of ``metric`` (``pearson_r``/``mae``/``rmse``) of ``model``
        (``mlp``/``ridge``/``mean_baseline``); NaN folds are skipped."""
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
        """Number of folds where the MLP's RMSE is below ``baseline``'s."""
        return sum(fold.mlp.rmse < getattr(fold, baseline).rmse for fold in self.folds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: per-fold metrics plus mean/std summaries per model and metric."""
        summary = {
            model: {metric: asdict(self.summary(model, metric)) for metric in ("pearson_r", "mae", "rmse")}
            for model in ("mlp", "ridge", "mean_baseline")
        }
        return _nan_to_none(
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
        return cls(folds=tuple(TrainMetrics.from_dict(f) for f in data["folds"]), seed=int(data["seed"]))


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def _none_to_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> RegressionMetrics:
    """Pearson r (NaN if either side is constant), MAE and RMSE."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    err = p - t
    def constant(values: np.ndarray) -> bool:
        return bool(np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())))

    if t.size < 2 or constant(t) or constant(p):
        r = float("nan")
    else:
        r = float(np.corrcoef(t, p)[0, 1])
    return RegressionMetrics(
        pearson_r=r, mae=float(np.mean(np.abs(err))), rmse=float(np.sqrt(np.mean(err**2)))
    )


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Rows with both an embedding and a rating, sorted by ``image_id``."""

    image_ids: list[str]
    X: np.ndarray
    y: np.ndarray


def embeddings_to_matrix(frame: pl.DataFrame, column: str = "embedding") -> np.ndarray:
    """Stack a fixed-size (``Array``) or list embedding column into float32 ``(n, D)``."""
    if frame.height == 0:
        dtype = frame.schema[column]
        width = getattr(dtype, "size", 0) or 0
        return np.zeros((0, width), dtype=np.float32)
    matrix = np.asarray(frame[column].to_numpy(), dtype=np.float32)
    if matrix.ndim != 2:
        matrix = np.stack([np.asarray(v, dtype=np.float32) for v in frame[column].to_list()])
    return np.ascontiguousarray(matrix)


def assemble_training_data(embeddings: pl.DataFrame, ratings: pl.DataFrame) -> TrainingData:
    """Inner-join embeddings (``image_id, embedding``) with ratings (``image_id, score``).

    Rows are sorted by ``image_id`` so the result is independent of input order.
    If an image appears more than once in either input, its first row is used.
    """
    emb = embeddings.select("image_id", "embedding").unique("image_id", keep="first", maintain_order=True)
    rat = ratings.select("image_id", "score").unique("image_id", keep="first", maintain_order=True)
    joined = emb.join(rat, on="image_id", how="inner").sort("image_id")
    return TrainingData(
        image_ids=joined["image_id"].to_list(),
        X=embeddings_to_matrix(joined),
        y=joined["score"].cast(pl.Float64).to_numpy().copy(),
    )


def data_hash(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the training data (see module docstring for the exact recipe)."""
    x = np.ascontiguousarray(X, dtype="<f4")
    t = np.ascontiguousarray(y, dtype="<f8")
    digest = hashlib.sha256(_HASH_TAG)
    digest.update(json.dumps(list(x.shape)).encode())
    digest.update(x.tobytes())
    digest.update(t.tobytes())
    return digest.hexdigest()


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded two-way split of ``range(n)``; returns sorted ``(rest_idx, held_idx)``.

    ``held`` has ``round(n * val_fraction)`` rows (at least 2); ``rest`` at least 2.
    """
    n_val = max(2, int(round(n * val_fraction)))
    if n - n_val < 2:
        raise ValueError(f"need at least 2 training and 2 validation rows, got n={n}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def split_three(n: int, config: MLPConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded ``(train_idx, val_idx, test_idx)``: ``test_fraction`` of the rows, then
    ``val_fraction`` of the rest for early stopping; each part has at least 2 rows."""
    if n < 6:
        raise ValueError(f"need at least 6 rows (2 each to fit, stop early and test), got n={n}")
    rest, test = split_indices(n, config.test_fraction, config.seed)
    if len(rest) < 4:
        raise ValueError(f"need at least 2 training and 2 validation rows besides the test rows, got n={n}")
    inner_train, inner_val = split_indices(len(rest), config.val_fraction, config.seed + 1)
    return rest[inner_train], rest[inner_val], test


def kfold_indices(n: int, k: int, seed: int) -> list[np.ndarray]:
    """A seeded partition of ``range(n)`` into ``k`` sorted folds of near-equal size."""
    if k < 2 or n < 3 * k:
        raise ValueError(f"{k}-fold cross-validation needs k >= 2 and at least {3 * k} rows, got n={n}")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(fold) for fold in np.array_split(perm, k)]


# --------------------------------------------------------------------------- model


def build_regressor(config: MLPConfig) -> torch.nn.Module:
    """``Linear -> ReLU -> Dropout`` per hidden layer, then ``Linear(_, 1)``."""
    import torch

    layers: list[torch.nn.Module] = []
    width = config.input_dim
    for hidden in config.hidden:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Dropout(config.dropout)]
        width = hidden
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


@contextlib.contextmanager
def _deterministic_torch(seed: int, num_threads: int | None) -> Iterator[None]:
    """Seed torch and enable deterministic algorithms; restore global state after."""
    import torch

    was_det = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_det, warn_only=was_warn)
            if num_threads is not None:
                torch.set_num_threads(old_threads)


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Everything a training run produced. ``state_dict`` holds CPU tensors."""

    state_dict: dict[str, torch.Tensor]
    config: MLPConfig
    target_mean: float
    target_std: float
    n_train: int
    n_val: int
    n_test: int
    epochs_run: int
    best_epoch: int
    val_indices: np.ndarray
    test_indices: np.ndarray
    metrics: TrainMetrics
    data_hash: str
    train_seconds: float = field(default=0.0, compare=False)  # the MLP's training loop only


def _validate_xy(X: np.ndarray, y: np.ndarray, config: MLPConfig) -> tuple[np.ndarray, np.ndarray]:
    x = np.ascontiguousarray(X, dtype=np.float32)
    t = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != t.shape[0]:
        raise ValueError(f"X must be (n, D) and y (n,), got {np.shape(X)} and {np.shape(y)}")
    if x.shape[1] != config.input_dim:
        raise ValueError(f"X has {x.shape[1]} features but config.input_dim is {config.input_dim}")
    if not (np.isfinite(x).all() and np.isfinite(t).all()):
        raise ValueError("X and y must be finite (no NaN/inf)")
    return x, t


@dataclass(frozen=True, eq=False)
class _Fit:
    state_dict: dict[str, torch.Tensor]
    target_mean: float
    target_std: float
    epochs_run: int
    best_epoch: int
    seconds: float


def _fit_mlp(x: np.ndarray, t: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, config: MLPConfig) -> _Fit:
    """AdamW on ``train_idx`` with early stopping on ``val_idx`` (caller seeds torch)."""
    import torch

    started = time.perf_counter()
    mean = float(t[train_idx].mean())
    std = float(t[train_idx].std())
    std = std if std > 1e-12 else 1.0
    x_tr = torch.from_numpy(x[train_idx])
    y_tr = torch.from_numpy(((t[train_idx] - mean) / std).astype(np.float32))
    x_va = torch.from_numpy(x[val_idx])
    y_va = torch.from_numpy(((t[val_idx] - mean) / std).astype(np.float32))
    model = build_regressor(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = torch.nn.MSELoss()

    best_loss = math.inf
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best_epoch = 0
    epochs_run = 0
    stale = 0
    for epoch in range(1, config.max_epochs + 1):
        epochs_run = epoch
        model.train()
        order = torch.randperm(len(y_tr), generator=generator)
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_tr[batch]).squeeze(1), y_tr[batch])
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(x_va).squeeze(1), y_va))
        if val_loss < best_loss - 1e-7:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    state = {k: v.contiguous() for k, v in best_state.items()}
    return _Fit(state, mean, std, epochs_run, best_epoch, time.perf_counter() - started)


def _fit_and_score(
    x: np.ndarray, t: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray, config: MLPConfig
) -> tuple[_Fit, TrainMetrics]:
    """Fit the MLP and both baselines without ``test_idx`` and score all three on it."""
    from sklearn.linear_model import RidgeCV

    fit = _fit_mlp(x, t, train_idx, val_idx, config)
    mlp = _loaded(fit.state_dict, config, fit.target_mean, fit.target_std)
    seen = np.sort(np.concatenate([train_idx, val_idx]))
    ridge = RidgeCV(alphas=_RIDGE_ALPHAS).fit(x[seen], t[seen])
    y_test = t[test_idx]
    metrics = TrainMetrics(
        mlp=regression_metrics(y_test, predict_scores(mlp, x[test_idx])),
        mean_baseline=regression_metrics(y_test, np.full_like(y_test, float(t[seen].mean()))),
        ridge=regression_metrics(y_test, ridge.predict(x[test_idx])),
        ridge_alpha=float(ridge.alpha_),
        n_train=len(train_idx),
        n_val=len(val_idx),
        n_test=len(test_idx),
    )
    return fit, metrics


def train_regressor(
    X: np.ndarray, y: np.ndarray, config: MLPConfig | None = None, *, num_threads: int | None = None
) -> TrainResult:
    """Train the MLP with early stopping and evaluate it against two baselines.

    Rows are split three ways (:func:`split_three`): the MLP is fitted on the
    training rows, the validation rows choose its early-stopping epoch, and the
    held-out test rows, which no model has seen, give every reported metric.
    Targets are standardised with the training rows' mean/std. Each epoch runs
    AdamW over seeded shuffled mini-batches, then measures validation MSE; the
    best epoch's weights are restored when ``patience`` epochs pass without
    improvement or at ``max_epochs``. Baselines, fitted on training + validation
    rows: their mean, and Ridge with alpha chosen by ``RidgeCV``.

    ``num_threads`` (optional) sets torch's intra-op threads for the run only.
    Global torch state (RNG, deterministic flag, threads) is restored afterwards.
    """
    config = config or MLPConfig(input_dim=int(np.shape(X)[1]))
    x, t = _validate_xy(X, y, config)
    train_idx, val_idx, test_idx = split_three(len(t), config)
    with _deterministic_torch(config.seed, num_threads):
        fit, metrics = _fit_and_score(x, t, train_idx, val_idx, test_idx, config)
    return TrainResult(
        state_dict=fit.state_dict,
        config=config,
        target_mean=fit.target_mean,
        target_std=fit.target_std,
        n_train=len(train_idx),
        n_val=len(val_idx),
        n_test=len(test_idx),
        epochs_run=fit.epochs_run,
        best_epoch=fit.best_epoch,
        val_indices=val_idx,
        test_indices=test_idx,
        metrics=metrics,
        data_hash=data_hash(x, t),
        train_seconds=fit.seconds,
    )


def cross_validate(
    X: np.ndarray, y: np.ndarray, config: MLPConfig | None = None, k: int = 5, *, num_threads: int | None = None
) -> CrossValidation:
    """k-fold cross-validation of the MLP, ridge and the mean (seeded by ``config.seed``).

    Each fold is the test set once; of the other rows ``config.val_fraction``
    choose the MLP's early-stopping epoch and the rest fit it, while ridge and
    the mean are fitted on all of them. This is the protocol of SCUT-FBP5500's
    published 5-fold results (there with fixed folds), so figures are comparable
    in kind; it costs ``k`` trainings.
    """
    config = config or MLPConfig(input_dim=int(np.shape(X)[1]))
    x, t = _validate_xy(X, y, config)
    folds = kfold_indices(len(t), k, config.seed)
    results: list[TrainMetrics] = []
    with _deterministic_torch(config.seed, num_threads):
        for i, test_idx in enumerate(folds):
            rest = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i]))
            inner_train, inner_val = split_indices(len(rest), config.val_fraction, config.seed + 1 + i)
            _, metrics = _fit_and_score(x, t, rest[inner_train], rest[inner_val], test_idx, config)
            results.append(metrics)
    return CrossValidation(folds=tuple(results), seed=config.seed)


# --------------------------------------------------------------------------- persistence


@dataclass(frozen=True)
class RegressorPaths:
    """Where a regressor's weights (``.pt``) and metadata (``.json``) live."""

    weights: Any
    metadata: Any


@dataclass(frozen=True, eq=False)
class LoadedRegressor:
    """A ready-to-predict regressor (module in eval mode) and its metadata."""

    module: torch.nn.Module
    config: MLPConfig
    target_mean: float
    target_std: float
    metadata: dict[str, Any]


def _is_local(root: Any) -> bool:
    return isinstance(root, (str, os.PathLike)) and getattr(root, "protocol", "") in ("", "file", "local")


def regressor_paths(model_root: Any, name: str = DEFAULT_NAME) -> RegressorPaths:
    """Artifact paths for ``name`` under ``model_root``; refuses names that escape it.

    ``model_root`` may be a local path or an fsspec/UPath URL. ``name`` must be a
    plain file stem (letters, digits, ``_ . -``; no separators, no ``..``); for
    local roots the resolved paths must also stay inside the resolved root.
    """
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise ValueError(f"invalid regressor name {name!r}: use letters, digits, '_', '-', '.'")
    if not _is_local(model_root):
        return RegressorPaths(weights=model_root / f"{name}.pt", metadata=model_root / f"{name}.json")
    root = Path(os.fspath(model_root)).resolve()
    paths = RegressorPaths(weights=root / f"{name}.pt", metadata=root / f"{name}.json")
    for path in (paths.weights, paths.metadata):
        if path.resolve().parent != root:
            raise ValueError(f"regressor artifact {path} resolves outside model root {root}")
    return paths


def _state_payload(result: TrainResult) -> dict[str, torch.Tensor]:
    import torch

    payload = dict(result.state_dict)
    payload["target_mean"] = torch.tensor(result.target_mean, dtype=torch.float64)
    payload["target_std"] = torch.tensor(result.target_std, dtype=torch.float64)
    return payload


def save_regressor(
    result: TrainResult,
    model_root: Any,
    name: str = DEFAULT_NAME,
    cross_validation: CrossValidation | None = None,
) -> RegressorPaths:
    """Write ``<name>.pt`` (plain dict of tensors) then ``<name>.json``, atomically.

    The JSON records the config, data hash, metrics (and ``cross_validation``
    when given) and the sha256 of the ``.pt`` bytes. The weights are written
    first: if a run dies between the two writes, the checksum no longer matches and :func:`load_regressor` refuses the pair
    instead of silently mixing old metadata with new weights.
    """
    import torch

    paths = regressor_paths(model_root, name)
    buffer = io.BytesIO()
    torch.save(_state_payload(result), buffer)
    blob = buffer.getvalue()
    metadata = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "weights_file": f"{name}.pt",
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "config": asdict(result.config),
        "data_hash": result.data_hash,
        "metrics": result.metrics.to_dict(),
        "target_mean": result.target_mean,
        "target_std": result.target_std,
        "n_train": result.n_train,
        "n_val": result.n_val,
        "n_test": result.n_test,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "torch_version": torch.__version__,
    }
    if cross_validation is not None:
        metadata["cross_validation"] = cross_validation.to_dict()
    atomic_write_bytes(paths.weights, blob)
    atomic_write_json(paths.metadata, metadata)
    return paths


def _read_bytes(path: Any) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"regressor artifact not found: {path}") from exc


def _module_from_payload(payload: Mapping[str, Any], config: MLPConfig) -> torch.nn.Module:
    module = build_regressor(config)
    module.load_state_dict({k: v for k, v in payload.items() if k not in _TARGET_KEYS}, strict=True)
    module.eval()
    return module


def load_regressor(model_root: Any, name: str = DEFAULT_NAME) -> LoadedRegressor:
    """Load a saved regressor with ``torch.load(weights_only=True)``.

    Raises:
        ValueError: ``name`` is unsafe or resolves outside ``model_root``.
        FileNotFoundError: the ``.pt`` or ``.json`` is missing.
        RegressorIntegrityError: the ``.pt`` sha256 differs from the JSON's.
    """
    import torch

    paths = regressor_paths(model_root, name)
    metadata = json.loads(_read_bytes(paths.metadata).decode("utf-8"))
    blob = _read_bytes(paths.weights)
    actual = hashlib.sha256(blob).hexdigest()
    expected = metadata.get("weights_sha256")
    if actual != expected:
        raise RegressorIntegrityError(
            f"refusing to load {paths.weights}: sha256 {actual} does not match "
            f"{expected} recorded in {paths.metadata} (tampered or partially written)"
        )
    payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    config = MLPConfig.from_dict(metadata["config"])
    return LoadedRegressor(
        module=_module_from_payload(payload, config),
        config=config,
        target_mean=float(payload["target_mean"]),
        target_std=float(payload["target_std"]),
        metadata=metadata,
    )


def _loaded(
    state_dict: Mapping[str, Any], config: MLPConfig, target_mean: float, target_std: float,
    metadata: dict[str, Any] | None = None,
) -> LoadedRegressor:
    return LoadedRegressor(
        module=_module_from_payload(state_dict, config),
        config=config,
        target_mean=target_mean,
        target_std=target_std,
        metadata=metadata or {},
    )


def regressor_from_result(result: TrainResult) -> LoadedRegressor:
    """In-memory :class:`LoadedRegressor` from a training result (no disk I/O)."""
    return _loaded(
        result.state_dict, result.config, result.target_mean, result.target_std,
        {"data_hash": result.data_hash, "metrics": result.metrics.to_dict()},
    )


def predict_scores(model: LoadedRegressor, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Predict ratings (float64, rating scale) for ``(n, D)`` embeddings."""
    import torch

    x = np.ascontiguousarray(X, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != model.config.input_dim:
        raise ValueError(f"expected X of shape (n, {model.config.input_dim}), got {np.shape(X)}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    out = np.empty(x.shape[0], dtype=np.float64)
    model.module.eval()
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            chunk = torch.from_numpy(np.array(x[start : start + batch_size]))  # writable copy
            out[start : start + len(chunk)] = model.module(chunk).squeeze(1).double().numpy()
    return out * model.target_std + model.target_mean


# --------------------------------------------------------------------------- scoring


def percentile_against(reference_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each score within the finite reference scores.

    ``100 * (count(ref < s) + 0.5 * count(ref == s)) / n_ref``; NaN/inf scores
    give NaN. Raises ``ValueError`` when the reference has no finite score.
    """
    ref = np.asarray(reference_scores, dtype=np.float64).reshape(-1)
    ref = np.sort(ref[np.isfinite(ref)])
    if ref.size == 0:
        raise ValueError("reference_scores has no finite values")
    s = np.asarray(scores, dtype=np.float64)
    less = np.searchsorted(ref, s, side="left")
    less_equal = np.searchsorted(ref, s, side="right")
    pct = 100.0 * (less + 0.5 * (less_equal - less)) / ref.size
    return np.where(np.isfinite(s), pct, np.nan)


def decile_of(percentiles: np.ndarray) -> np.ndarray:
    """Decile 1..10 (int8) of finite percentiles: ``min(10, floor(p / 10) + 1)``."""
    p = np.asarray(percentiles, dtype=np.float64)
    if not np.isfinite(p).all():
        raise ValueError("decile_of needs finite percentiles")
    return np.clip(np.floor(p / 10.0) + 1, 1, 10).astype(np.int8)


def score_table(image_ids: Sequence[str], raw_scores: np.ndarray) -> pl.DataFrame:
    """Raw score, percentile and decile per image (see module docstring).

    Ranks are taken over the finite scores only; NaN/inf scores get nulls in all
    three columns. ``n == 1`` or all-equal scores give percentile 50, decile 6.
    """
    ids = list(image_ids)
    raw = np.asarray(raw_scores, dtype=np.float64).reshape(-1)
    if len(ids) != raw.size:
        raise ValueError(f"{len(ids)} image ids but {raw.size} scores")
    if len(set(ids)) != len(ids):
        raise ValueError("image_ids must be unique")
    finite = np.isfinite(raw)
    pct = np.full(raw.size, np.nan)
    dec = np.zeros(raw.size, dtype=np.int8)
    if finite.any():
        pct[finite] = percentile_against(raw[finite], raw[finite])
        dec[finite] = decile_of(pct[finite])
    return pl.DataFrame(
        {
            "image_id": ids,
            "attractiveness_raw": [float(v) if f else None for v, f in zip(raw, finite, strict=True)],
            "attractiveness_percentile": [float(v) if f else None for v, f in zip(pct, finite, strict=True)],
            "attractiveness_decile": [int(d) if f else None for d, f in zip(dec, finite, strict=True)],
        },
        schema=SCORE_SCHEMA,
    )


def metrics_markdown(metrics: TrainMetrics | Mapping[str, Any]) -> str:
    """Markdown table comparing the MLP with the mean and Ridge baselines."""
    m = metrics if isinstance(metrics, TrainMetrics) else TrainMetrics.from_dict(metrics)

    def fmt(value: float) -> str:
        return "n/a" if not math.isfinite(value) else f"{value:.4f}"

    rows = [
        ("MLP", m.mlp),
        ("Mean baseline", m.mean_baseline),
        (f"Ridge (alpha={m.ridge_alpha:g})", m.ridge),
    ]
    lines = [
        f"Held-out test split: {m.n_test} images, seen by no model "
        f"({m.n_train} fitted the MLP, {m.n_val} chose its early-stopping epoch).",
        "",
        "| model | Pearson r | MAE | RMSE |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {label} | {fmt(r.pearson_r)} | {fmt(r.mae)} | {fmt(r.rmse)} |" for label, r in rows]
    return "\n".join(lines) + "\n"


def cross_validation_markdown(cv: CrossValidation | Mapping[str, Any]) -> str:
    """Markdown table of k-fold mean ± sd per model, plus the MLP − ridge RMSE difference."""
    c = cv if isinstance(cv, CrossValidation) else CrossValidation.from_dict(cv)

    def fmt(s: MetricSummary) -> str:
        return "n/a" if not math.isfinite(s.mean) else f"{s.mean:.4f} ± {s.std:.4f}"

    k = len(c.folds)
    lines = [
        f"{k}-fold cross-validation (mean ± sd over folds, every image tested once):",
        "",
        "| model | Pearson r | MAE | RMSE |",
        "|---|---:|---:|---:|",
    ]
    for label, model in (("MLP", "mlp"), ("Mean baseline", "mean_baseline"), ("Ridge", "ridge")):
        lines.append(
            f"| {label} | {fmt(c.summary(model, 'pearson_r'))} | {fmt(c.summary(model, 'mae'))} "
            f"| {fmt(c.summary(model, 'rmse'))} |"
        )
    diff = c.mlp_minus_ridge_rmse()
    lines += [
        "",
        f"MLP − ridge RMSE: {diff.mean:+.4f} (standard error {diff.std:.4f}); "
        f"the MLP wins {c.mlp_wins('ridge')}/{k} folds against ridge, {c.mlp_wins('mean_baseline')}/{k} against the mean.",
    ]
    return "\n".join(lines) + "\n"


def regressor_summary(metadata: Mapping[str, Any]) -> str:
    """One line comparing the MLP with ridge and the mean, from a saved regressor's JSON:
    the k-fold means when cross-validation ran, else the held-out split."""

    def fmt(value: Any) -> str:
        return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.3f}"

    if metadata.get("cross_validation"):
        cv = CrossValidation.from_dict(metadata["cross_validation"])
        k = len(cv.folds)
        return (
            f"{k}-fold CV RMSE: MLP {fmt(cv.summary('mlp', 'rmse').mean)} "
            f"(r {fmt(cv.summary('mlp', 'pearson_r').mean)}), "
            f"ridge {fmt(cv.summary('ridge', 'rmse').mean)} (r {fmt(cv.summary('ridge', 'pearson_r').mean)}), "
            f"mean {fmt(cv.summary('mean_baseline', 'rmse').mean)}; MLP better than ridge in "
            f"{cv.mlp_wins('ridge')}/{k} folds"
        )
    m = TrainMetrics.from_dict(metadata["metrics"])
    return (
        f"held-out RMSE (n={m.n_test}): MLP {fmt(m.mlp.rmse)} (r {fmt(m.mlp.pearson_r)}), "
        f"ridge {fmt(m.ridge.rmse)} (r {fmt(m.ridge.pearson_r)}), mean {fmt(m.mean_baseline.rmse)}"
    )
