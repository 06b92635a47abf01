"""The MLP's parts: config, module, split, early stopping, seeded torch state, input checks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from facestats_core.attractiveness.estimator import AttractivenessRegressor  # noqa: E402
from facestats_core.attractiveness import training  # noqa: E402
from facestats_core.attractiveness.training import MLPConfig, build_module  # noqa: E402
from facestats_core.models.splits import data_hash, kfold_indices, split_three  # noqa: E402
from tests.core.synthetic import planted_ratings as _planted  # noqa: E402
from tests.core.synthetic import small_mlp_config  # noqa: E402

SMALL = small_mlp_config()


def test_build_module_shape() -> None:
    model = build_module(MLPConfig(input_dim=12, hidden=(7, 5)))
    assert model(torch.zeros(3, 12)).shape == (3, 1)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 7), (7, 5), (5, 1)]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        MLPConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="test_fraction"):
        MLPConfig(test_fraction=0.0)
    assert MLPConfig.from_dict({"hidden": [4, 2], "input_dim": 3}).hidden == (4, 2)


def test_three_way_split_is_a_partition() -> None:
    train, val, test = split_three(100, MLPConfig(test_fraction=0.2, val_fraction=0.25, seed=3))
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(100))
    for part in (train, val, test):
        assert np.array_equal(part, np.sort(part))
    assert len(split_three(6, MLPConfig())[2]) == 2


def test_kfold_indices_partition_and_validation() -> None:
    folds = kfold_indices(23, 5, seed=0)
    assert [len(f) for f in folds] == [5, 5, 5, 4, 4]
    assert sorted(np.concatenate(folds).tolist()) == list(range(23))
    assert all(np.array_equal(a, b) for a, b in zip(folds, kfold_indices(23, 5, seed=0), strict=True))
    with pytest.raises(ValueError, match="5-fold"):
        kfold_indices(14, 5, seed=0)
    with pytest.raises(ValueError, match="k >= 2"):
        kfold_indices(100, 1, seed=0)


def test_early_stopping_stops_before_max_epochs() -> None:
    X = np.random.default_rng(3).standard_normal((120, 8)).astype(np.float32)
    y = np.random.default_rng(4).uniform(1, 5, 120)  # pure noise: no improvement to find
    model = AttractivenessRegressor(replace(SMALL, max_epochs=200, patience=3, lr=1e-2)).fit(X, y)
    assert model.epochs_run_ < 200
    assert model.epochs_run_ - model.best_epoch_ == 3


def test_adamw_stepping_parameters_together_gives_the_weights_of_one_at_a_time(monkeypatch) -> None:
    """`adamw` uses torch's `foreach` AdamW for speed: the trained weights equal those of the
    one-parameter-at-a-time AdamW bit for bit (with dropout, several epochs)."""
    X = np.random.default_rng(5).standard_normal((300, 16)).astype(np.float32)
    y = np.random.default_rng(6).uniform(1, 5, 300)
    config = replace(MLPConfig(input_dim=16, hidden=(32, 8), batch_size=32), max_epochs=8, patience=8)
    together = AttractivenessRegressor(config).fit(X, y)
    assert together.epochs_run_ == 8
    monkeypatch.setattr(training, "adamw", lambda model, cfg: torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False))
    one_at_a_time = AttractivenessRegressor(config).fit(X, y)
    for name, tensor in together.state_dict_.items():
        assert torch.equal(tensor, one_at_a_time.state_dict_[name]), name


def test_global_torch_state_restored() -> None:
    before_flag = torch.are_deterministic_algorithms_enabled()
    before_rng = torch.get_rng_state()
    X, y = _planted(40, 8)
    AttractivenessRegressor(replace(SMALL, max_epochs=1)).fit(X, y)
    assert torch.are_deterministic_algorithms_enabled() == before_flag
    assert torch.equal(torch.get_rng_state(), before_rng)


def test_training_state_sets_torch_and_blas_threads_and_restores_them() -> None:
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before_blas, before_torch = blas_threads(), torch.get_num_threads()
    with training.deterministic_torch(0, 1):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.get_num_threads() == 1
        assert blas_threads() and set(blas_threads()) == {1}
    assert blas_threads() == before_blas and torch.get_num_threads() == before_torch
    assert not torch.are_deterministic_algorithms_enabled()


def test_deterministic_mode_without_importing_the_compiler_then_with_it() -> None:
    """A fresh process gets the deterministic flag without importing torch._inductor (1-2 s of imports);
    where the compiler's config is imported, its `deterministic` setting follows the flag as
    `torch.use_deterministic_algorithms` would set it."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from facestats_core.attractiveness.training import set_deterministic_algorithms as on\n"
        "on(True, warn_only=True)\n"
        "assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()\n"
        "assert 'torch._inductor' not in sys.modules, 'imported the compiler'\n"
        "on(False)\n"
        "assert not torch.are_deterministic_algorithms_enabled()\n"
        "import torch._inductor.config as config\n"
        "on(True)\n"
        "assert torch.are_deterministic_algorithms_enabled() and config.deterministic\n"
        "on(False)\n"
        "assert not config.deterministic and not torch.are_deterministic_algorithms_enabled()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_input_validation() -> None:
    X, y = _planted(40, 8)
    with pytest.raises(ValueError, match="input_dim"):
        AttractivenessRegressor(replace(SMALL, input_dim=9)).fit(X, y)
    y_bad = y.copy()
    y_bad[0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        AttractivenessRegressor(SMALL).fit(X, y_bad)
    with pytest.raises(ValueError, match="at least 6"):
        AttractivenessRegressor(SMALL).fit(X[:5], y[:5])


def test_data_hash_sensitive_to_data() -> None:
    X, y = _planted(20, 8)
    assert data_hash(X, y) == data_hash(X.copy(), y.copy())
    y2 = y.copy()
    y2[5] += 0.01
    assert data_hash(X, y) != data_hash(X, y2)
