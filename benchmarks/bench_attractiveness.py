"""Benchmark: train the attractiveness MLP on SCUT-sized synthetic embeddings.

5,500 x 512 L2-normalised random embeddings with a planted signal
(``y = 3 + 0.6 * (X @ w) / std + 0.2 * tanh(X @ v) + noise``, clipped to [1, 5]),
default :class:`MLPConfig`. Prints wall time, epochs, and held-out metrics.

    python -m benchmarks.bench_attractiveness [--threads 2] [--n 5500] [--dim 512]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_data(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic embeddings with a mostly linear, slightly non-linear rating signal."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    lin = X @ rng.standard_normal(dim)
    nonlin = np.tanh(3 * (X @ rng.standard_normal(dim)))
    y = 3.0 + 0.6 * lin / lin.std() + 0.2 * nonlin + 0.3 * rng.standard_normal(n)
    return X, np.clip(y, 1.0, 5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=5500)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from facestats_core.attractiveness import (
        MLPConfig,
        metrics_markdown,
        predict_scores,
        regressor_from_result,
        train_regressor,
    )

    X, y = make_data(args.n, args.dim, args.seed)
    config = MLPConfig(input_dim=args.dim, seed=args.seed)
    started = time.perf_counter()
    result = train_regressor(X, y, config, num_threads=args.threads)
    total = time.perf_counter() - started

    model = regressor_from_result(result)
    with_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    predict_scores(model, X)
    predict_s = time.perf_counter() - t0
    torch.set_num_threads(with_threads)

    print(f"torch {torch.__version__}, threads={args.threads}, data {args.n} x {args.dim}")
    print(
        f"train_regressor total: {total:.2f} s "
        f"(MLP loop {result.train_seconds:.2f} s, rest = ridge CV + hashing)"
    )
    print(f"epochs run: {result.epochs_run} (best epoch {result.best_epoch}, patience {config.patience})")
    print(f"per epoch: {result.train_seconds / result.epochs_run * 1000:.1f} ms")
    print(f"predict {args.n} images: {predict_s * 1000:.1f} ms")
    print(metrics_markdown(result.metrics))


if __name__ == "__main__":
    main()
