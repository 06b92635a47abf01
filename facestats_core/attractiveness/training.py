"""The attractiveness MLP's training: its settings, the torch module, the seeded early-stopped
training loop, predictions from weights, and one fit scored against the ridge and mean baselines.

torch is imported inside the functions that need it (importing this module is cheap). Training is
deterministic on CPU for a fixed seed, data and thread count (float reductions may differ between
thread counts). :class:`~facestats_core.attractiveness.estimator.AttractivenessRegressor` is the
model built from these parts.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from facestats_core.attractiveness.evaluation import HeldOutMetrics, regression_metrics

if TYPE_CHECKING:
    import torch

RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-4, 4, 17))
TARGET_KEYS = ("target_mean", "target_std")
"""The target scaling's entries beside the module's weights in a state dict."""


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


def build_module(config: MLPConfig) -> torch.nn.Module:
    """`Linear -> ReLU -> Dropout` per hidden layer, then `Linear(_, 1)`."""
    import torch

    layers: list[torch.nn.Module] = []
    width = config.input_dim
    for hidden in config.hidden:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Dropout(config.dropout)]
        width = hidden
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def module_with(config: MLPConfig, state_dict: Mapping[str, Any]) -> torch.nn.Module:
    """The module `config` builds with `state_dict`'s weights (`target_*` entries ignored), in eval mode."""
    module = build_module(config)
    module.load_state_dict({k: v for k, v in state_dict.items() if k not in TARGET_KEYS}, strict=True)
    module.eval()
    return module


def predict_with(module: torch.nn.Module, X: np.ndarray, target_mean: float, target_std: float,
                 batch_size: int = 4096) -> np.ndarray:
    """Ratings (float64, rating scale) of `(n, D)` embeddings: the module's output unscaled."""
    import torch

    x = np.ascontiguousarray(X, dtype=np.float32)
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    out = np.empty(x.shape[0], dtype=np.float64)
    module.eval()
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            chunk = torch.from_numpy(np.array(x[start : start + batch_size]))  # writable copy
            out[start : start + len(chunk)] = module(chunk).squeeze(1).double().numpy()
    return out * target_std + target_mean


class EarlyStopped(NamedTuple):
    """What the training loop returns: the best epoch's weights (CPU tensors), the training targets'
    scaling, the epochs run and the best one, and the loop's seconds."""

    state_dict: dict[str, Any]
    target_mean: float
    target_std: float
    epochs_run: int
    best_epoch: int
    seconds: float


TRAINING_THREADS = 1
"""torch intra-op threads while the MLP trains. Its layers are small (512 -> 256 -> 64 -> 1, batches
of 128), so a second thread buys nothing and, when other processes share the cores, costs a lot:
fitting on 2,905 embeddings took 15.2 s with one thread and 38.3 s with two on a loaded 2-core AMD
EPYC, with the same weights (docs/performance.md)."""


@contextlib.contextmanager
def deterministic_torch(seed: int, num_threads: int | None) -> Iterator[None]:
    """Seed torch and enable deterministic algorithms; with ``num_threads``, run torch's intra-op work and the
    BLAS calls (the ridge baseline's) on that many threads. Global state is restored after.

    On two cores the ridge baseline's default two BLAS threads took 0.9-2.1 s per fit next to another
    training process and 0.66 s on one thread (0.45 s alone on both cores), with the same predictions."""
    import torch
    from threadpoolctl import threadpool_limits

    was_det = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_threads = torch.get_num_threads()
    # threadpool_limits(limits=None) leaves BLAS's threads as they are
    with torch.random.fork_rng(devices=[]), threadpool_limits(limits=num_threads, user_api="blas"):
        torch.manual_seed(seed)
        set_deterministic_algorithms(True)
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        try:
            yield
        finally:
            set_deterministic_algorithms(was_det, warn_only=was_warn)
            if num_threads is not None:
                torch.set_num_threads(old_threads)


def set_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms(mode, warn_only=...)`` without importing the compiler.

    The public function also sets ``torch._inductor.config.deterministic``, and importing that module
    imports torch's whole compiler stack (dynamo, sympy): 1.0-1.8 s in each training worker process on
    a 2-core AMD EPYC. Nothing is compiled while it is not imported, so there the flag alone
    (``torch._C._set_deterministic_algorithms``, what the public function sets after the config) is the
    same setting for every eager operation; once it is imported, the public function sets both.
    """
    import sys

    import torch

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


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


def adamw(model: torch.nn.Module, config: MLPConfig) -> torch.optim.Optimizer:
    """AdamW on ``model``'s parameters, stepping them together (``foreach``): on the CPU the same float
    operations in the same order as one parameter at a time, so the same weights bit for bit (tested), with
    fewer dispatches per step (about 20 % less time per epoch at the default MLP)."""
    import torch

    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True)


def fit_mlp(
    x: np.ndarray, t: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, config: MLPConfig
) -> EarlyStopped:
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
    model = build_module(config)
    optimiser = adamw(model, config)
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
    return EarlyStopped(state, mean, std, epochs_run, best_epoch, time.perf_counter() - started)


def fit_and_score(
    x: np.ndarray, t: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray, config: MLPConfig
) -> tuple[EarlyStopped, HeldOutMetrics, np.ndarray]:
    """Fit the MLP and both baselines without `test_idx` and score all three on it (caller seeds torch).

    Returns the MLP's fit, the three models' held-out metrics and the MLP's predictions of the
    `test_idx` rows (float64, in `test_idx` order)."""
    from sklearn.linear_model import RidgeCV

    fit = fit_mlp(x, t, train_idx, val_idx, config)
    mlp = module_with(config, fit.state_dict)
    seen = np.sort(np.concatenate([train_idx, val_idx]))
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(x[seen], t[seen])
    y_test = t[test_idx]
    predicted = np.asarray(predict_with(mlp, x[test_idx], fit.target_mean, fit.target_std), dtype=np.float64)
    metrics = HeldOutMetrics(
        mlp=regression_metrics(y_test, predicted),
        mean_baseline=regression_metrics(y_test, np.full_like(y_test, float(t[seen].mean()))),
        ridge=regression_metrics(y_test, ridge.predict(x[test_idx])),
        ridge_alpha=float(ridge.alpha_),
        n_train=len(train_idx),
        n_val=len(val_idx),
        n_test=len(test_idx),
    )
    return fit, metrics, predicted
