"""The attractiveness MLP: its config, the torch module, training, predictions and its files on disk.

torch is imported inside the functions that need it, so importing this module
is cheap. Training is deterministic on CPU for a fixed seed, data and thread
count (float reductions may differ between thread counts).

Files: `<name>.pt`, a plain dict of tensors (the state dict plus `target_mean`
and `target_std`) loaded with `torch.load(weights_only=True)`, and
`<name>.json` with the config, data hash, metrics and the `.pt` sha256
(`weights_sha256`), written and checked by the model store.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from facestats_core.models.regression_metrics import TrainMetrics, regression_metrics
from facestats_core.models.splits import data_hash, split_three
from facestats_core.models.store import (
    MetadataKeys,
    ModelIntegrityError,
    StoredModel,
    load_model,
    model_paths,
    save_model,
)

if TYPE_CHECKING:
    import torch

    from facestats_core.models.cross_validation import CrossValidation

DEFAULT_NAME = "attractiveness_regressor"
FORMAT_VERSION = 1
WEIGHTS_SUFFIX = ".pt"
METADATA_SUFFIX = ".json"
METADATA_KEYS = MetadataKeys(file="weights_file", sha256="weights_sha256")
_TARGET_KEYS = ("target_mean", "target_std")
_KIND = "regressor"
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-4, 4, 17))


@dataclass(frozen=True)
class MLPConfig:
    """Hyper-parameters of the attractiveness MLP and its training loop.

    `test_fraction` of the rows is held out and used only for the reported
    metrics; `val_fraction` of the remaining rows decides early stopping; the
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
        """Rebuild a config from `dataclasses.asdict` output (e.g. JSON)."""
        values = dict(data)
        if "hidden" in values:
            values["hidden"] = tuple(values["hidden"])
        return cls(**values)


@dataclass(frozen=True, eq=False)
class LoadedRegressor:
    """A ready-to-predict regressor (module in eval mode) and its metadata."""

    module: torch.nn.Module
    config: MLPConfig
    target_mean: float
    target_std: float
    metadata: dict[str, Any]


def build_regressor(config: MLPConfig) -> torch.nn.Module:
    """`Linear -> ReLU -> Dropout` per hidden layer, then `Linear(_, 1)`."""
    import torch

    layers: list[torch.nn.Module] = []
    width = config.input_dim
    for hidden in config.hidden:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Dropout(config.dropout)]
        width = hidden
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def loaded_regressor(
    state_dict: Mapping[str, Any],
    config: MLPConfig,
    target_mean: float,
    target_std: float,
    metadata: dict[str, Any] | None = None,
) -> LoadedRegressor:
    """A `LoadedRegressor` from weights (extra `target_*` entries are ignored) and target scaling."""
    module = build_regressor(config)
    module.load_state_dict({k: v for k, v in state_dict.items() if k not in _TARGET_KEYS}, strict=True)
    module.eval()
    return LoadedRegressor(module, config, target_mean, target_std, metadata or {})


def regressor_from_result(result: TrainResult) -> LoadedRegressor:
    """In-memory `LoadedRegressor` from a training result (no disk I/O)."""
    return loaded_regressor(
        result.state_dict, result.config, result.target_mean, result.target_std,
        {"data_hash": result.data_hash, "metrics": result.metrics.to_dict()},
    )


def predict_scores(model: LoadedRegressor, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Predict ratings (float64, rating scale) for `(n, D)` embeddings."""
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


# --------------------------------------------------------------------------- training


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Everything a training run produced. `state_dict` holds CPU tensors."""

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


@dataclass(frozen=True, eq=False)
class TrainedRegressor:
    """What the regressor stage stores: a training result and, when it ran, its cross-validation."""

    result: TrainResult
    cross_validation: CrossValidation | None = None
    trained_on: str = ""
    """Which faces it learned from: ``reference`` (a reference set) or ``analysed`` (the data set's own ratings)."""
    fingerprint: str = ""
    """:func:`~facestats_core.models.fingerprint.training_fingerprint` of the data and settings it was
    trained with (stored as ``training_fingerprint``; a later run with the same one reuses the model)."""


@dataclass(frozen=True, eq=False)
class MLPFit:
    """One early-stopped MLP fit: best-epoch weights, target scaling and timing."""

    state_dict: dict[str, torch.Tensor]
    target_mean: float
    target_std: float
    epochs_run: int
    best_epoch: int
    seconds: float


@contextlib.contextmanager
def deterministic_torch(seed: int, num_threads: int | None) -> Iterator[None]:
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


def validate_xy(X: np.ndarray, y: np.ndarray, config: MLPConfig) -> tuple[np.ndarray, np.ndarray]:
    """`X` as C-contiguous float32 `(n, input_dim)` and `y` as float64 `(n,)`, both finite."""
    x = np.ascontiguousarray(X, dtype=np.float32)
    t = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != t.shape[0]:
        raise ValueError(f"X must be (n, D) and y (n,), got {np.shape(X)} and {np.shape(y)}")
    if x.shape[1] != config.input_dim:
        raise ValueError(f"X has {x.shape[1]} features but config.input_dim is {config.input_dim}")
    if not (np.isfinite(x).all() and np.isfinite(t).all()):
        raise ValueError("X and y must be finite (no NaN/inf)")
    return x, t


def _run_epoch(
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    loss_fn: torch.nn.Module,
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    generator: torch.Generator,
    batch_size: int,
) -> None:
    """One pass of AdamW over seeded shuffled mini-batches."""
    import torch

    model.train()
    order = torch.randperm(len(y_tr), generator=generator)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(x_tr[batch]).squeeze(1), y_tr[batch])
        loss.backward()
        optimiser.step()


def _fit_mlp(x: np.ndarray, t: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, config: MLPConfig) -> MLPFit:
    """AdamW on `train_idx` with early stopping on `val_idx` (caller seeds torch)."""
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
        _run_epoch(model, optimiser, loss_fn, x_tr, y_tr, generator, config.batch_size)
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
    return MLPFit(state, mean, std, epochs_run, best_epoch, time.perf_counter() - started)


def fit_and_score(
    x: np.ndarray, t: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray, config: MLPConfig
) -> tuple[MLPFit, TrainMetrics]:
    """Fit the MLP and both baselines without `test_idx` and score all three on it (caller seeds torch)."""
    from sklearn.linear_model import RidgeCV

    fit = _fit_mlp(x, t, train_idx, val_idx, config)
    mlp = loaded_regressor(fit.state_dict, config, fit.target_mean, fit.target_std)
    seen = np.sort(np.concatenate([train_idx, val_idx]))
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(x[seen], t[seen])
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

    Rows are split three ways (`split_three`): the MLP is fitted on the
    training rows, the validation rows choose its early-stopping epoch, and the
    held-out test rows, which no model has seen, give every reported metric.
    Targets are standardised with the training rows' mean/std. Each epoch runs
    AdamW over seeded shuffled mini-batches, then measures validation MSE; the
    best epoch's weights are restored when `patience` epochs pass without
    improvement or at `max_epochs`. Baselines, fitted on training + validation
    rows: their mean, and Ridge with alpha chosen by `RidgeCV`.

    `num_threads` (optional) sets torch's intra-op threads for the run only.
    Global torch state (RNG, deterministic flag, threads) is restored afterwards.
    """
    config = config or MLPConfig(input_dim=int(np.shape(X)[1]))
    x, t = validate_xy(X, y, config)
    train_idx, val_idx, test_idx = split_three(len(t), config)
    with deterministic_torch(config.seed, num_threads):
        fit, metrics = fit_and_score(x, t, train_idx, val_idx, test_idx, config)
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


# --------------------------------------------------------------------------- persistence


def _weights_bytes(result: TrainResult) -> bytes:
    import torch

    payload = dict(result.state_dict)
    payload["target_mean"] = torch.tensor(result.target_mean, dtype=torch.float64)
    payload["target_std"] = torch.tensor(result.target_std, dtype=torch.float64)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _metadata(result: TrainResult, name: str, cross_validation: CrossValidation | None) -> dict[str, Any]:
    import torch

    metadata = {
        "format_version": FORMAT_VERSION,
        "name": name,
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
    return metadata


def save_regressor(
    result: TrainResult,
    model_root: Any,
    name: str = DEFAULT_NAME,
    cross_validation: CrossValidation | None = None,
    extra: dict[str, Any] | None = None,
) -> StoredModel:
    """Write `<name>.pt` then `<name>.json` atomically through the model store.

    The JSON records the config, data hash, metrics (and `cross_validation`
    when given) and the sha256 of the `.pt` bytes.
    """
    return save_model(
        model_root, name, _weights_bytes(result), {**_metadata(result, name, cross_validation), **(extra or {})},
        WEIGHTS_SUFFIX, METADATA_SUFFIX, keys=METADATA_KEYS, kind=_KIND,
    )


def save_trained_regressor(
    trained: TrainedRegressor, model_root: Any, name: str = DEFAULT_NAME
) -> StoredModel:
    """`save_regressor` for a `TrainedRegressor` (its result, cross-validation, `trained_on` and
    `training_fingerprint`)."""
    extra = {key: value for key, value in (("trained_on", trained.trained_on),
                                           ("training_fingerprint", trained.fingerprint)) if value}
    return save_regressor(trained.result, model_root, name, trained.cross_validation, extra or None)


def save_loaded_regressor(model: LoadedRegressor, model_root: Any, name: str = DEFAULT_NAME) -> StoredModel:
    """Store an already trained regressor (e.g. one read from a bundle) under another root, metadata kept."""
    import torch

    payload = dict(model.module.state_dict())
    payload["target_mean"] = torch.tensor(model.target_mean, dtype=torch.float64)
    payload["target_std"] = torch.tensor(model.target_std, dtype=torch.float64)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    metadata = {k: v for k, v in model.metadata.items() if k not in (METADATA_KEYS.file, METADATA_KEYS.sha256)}
    return save_model(model_root, name, buffer.getvalue(), {**metadata, "name": name}, WEIGHTS_SUFFIX,
                      METADATA_SUFFIX, keys=METADATA_KEYS, kind=_KIND)


def save_any_regressor(model: TrainedRegressor | LoadedRegressor, model_root: Any, name: str = DEFAULT_NAME
                       ) -> StoredModel:
    """`save_trained_regressor` or `save_loaded_regressor`, whichever fits ``model``."""
    if isinstance(model, TrainedRegressor):
        return save_trained_regressor(model, model_root, name)
    return save_loaded_regressor(model, model_root, name)


MAX_PARAMETERS = 50_000_000
"""A regressor config declaring more parameters than this is refused before anything is built."""
_FILE_ALLOWANCE = 1 << 20
"""Bytes a `.pt` file may take beyond its float64 parameters (zip and pickle framing)."""


def _parameter_count(config: MLPConfig) -> int:
    widths = (config.input_dim, *config.hidden, 1)
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def _config(metadata: Mapping[str, Any], where: str) -> MLPConfig:
    try:
        config = MLPConfig.from_dict(metadata["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelIntegrityError(f"{where}: malformed regressor metadata, bad 'config' ({exc})") from exc
    if _parameter_count(config) > MAX_PARAMETERS:
        raise ModelIntegrityError(f"{where}: the config declares more than {MAX_PARAMETERS} parameters")
    return config


def _checked_tensors(payload: Any, config: MLPConfig, where: str) -> dict[str, Any]:
    """The state dict's tensors, every one float, finite and of the shape `config` builds."""
    import torch

    expected = {k: tuple(v.shape) for k, v in build_regressor(config).state_dict().items()}
    expected.update({key: () for key in _TARGET_KEYS})
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ModelIntegrityError(f"{where}: not a dict of tensors")
    missing, unexpected = sorted(set(expected) - set(payload)), sorted(set(payload) - set(expected))
    if missing or unexpected:
        raise ModelIntegrityError(f"{where}: missing tensors {missing}, unexpected tensors {unexpected}")
    for key, tensor in payload.items():
        if not tensor.is_floating_point():
            raise ModelIntegrityError(f"{where}: tensor {key} has dtype {tensor.dtype}, expected a float")
        if tuple(tensor.shape) != expected[key]:
            raise ModelIntegrityError(f"{where}: tensor {key} has shape {tuple(tensor.shape)}, the config builds {expected[key]}")
        if not bool(torch.isfinite(tensor).all()):
            raise ModelIntegrityError(f"{where}: tensor {key} holds NaN or infinite values")
    if float(payload["target_std"]) <= 0:
        raise ModelIntegrityError(f"{where}: target_std must be positive")
    return payload


def load_regressor(model_root: Any, name: str = DEFAULT_NAME) -> LoadedRegressor:
    """Load a saved regressor with `torch.load(weights_only=True)` once its sha256 checks out.

    The `.pt` may be no larger than its config's parameters allow, and must hold exactly the
    tensors that config builds (float, finite) plus `target_mean` and `target_std`.
    Raises `ModelIntegrityError` (a `ValueError`) for an unsafe name or path,
    malformed metadata, a sha256 mismatch or a file that is not such tensors, one line naming
    the file, and `ModelNotFoundError` (also a `FileNotFoundError`) when the `.pt` or `.json` is missing.
    """
    import pickle  # noqa: PLC0415 - for its error class only: nothing here unpickles

    import torch

    paths = model_paths(model_root, name, WEIGHTS_SUFFIX, METADATA_SUFFIX, kind=_KIND)
    blob, metadata = load_model(
        model_root, name, WEIGHTS_SUFFIX, METADATA_SUFFIX, keys=METADATA_KEYS, kind=_KIND,
        max_bytes=lambda record: 8 * _parameter_count(_config(record, str(paths.metadata))) + _FILE_ALLOWANCE,
    )
    config = _config(metadata, str(paths.metadata))
    try:
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelIntegrityError(f"{paths.weights}: not a file of tensors (truncated or corrupt: {reason})") from exc
    payload = _checked_tensors(payload, config, str(paths.weights))
    return loaded_regressor(
        payload, config, float(payload["target_mean"]), float(payload["target_std"]), metadata
    )
