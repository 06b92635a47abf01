"""Benchmark: train and evaluate the attractiveness MLP.

Default data: 5,500 x 512 L2-normalised random embeddings with a planted signal
(``y = 3 + 0.6 * (X @ w) / std + 0.2 * tanh(X @ v) + noise``, clipped to [1, 5]),
the size of SCUT-FBP5500. ``--data-root`` uses a materialized data root instead
(its ``embeddings_clip`` and ratings file, read and matched exactly as the
``attractiveness_regressor`` asset does). Prints wall times, epochs, held-out
metrics and, with ``--cv K``, K-fold cross-validation of the MLP and baselines
over several seeds.

    python -m benchmarks.bench_attractiveness [--threads 2] [--n 5500] [--dim 512]
    python -m benchmarks.bench_attractiveness --data-root data --cv 5 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

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


def load_data(data_root: Path, ratings: str) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and matched ratings of a materialized data root."""
    from facestats_core.io.layout import Layout
    from facestats_core.labels.ratings import match_ratings_to_images, read_ratings
    from facestats_core.attractiveness.training_data import assemble_training_data

    layout = Layout.from_roots(data_root, data_root.parent / "models")
    embeddings = layout.read_artifact("embeddings_clip")
    matched, _ = match_ratings_to_images(read_ratings(data_root / ratings).ratings, embeddings.select("image_id", "path"))
    data = assemble_training_data(embeddings, matched)
    return data.X, data.y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=5500)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, help="use this data root's embeddings and ratings")
    parser.add_argument("--ratings", default="labels/scut_ratings.csv", help="ratings file under --data-root")
    parser.add_argument("--cv", type=int, default=0, help="also run K-fold cross-validation (K >= 2)")
    parser.add_argument("--seeds", type=int, nargs="+", help="cross-validation seeds (default: --seed)")
    args = parser.parse_args()

    import torch

    from facestats_core.attractiveness.cross_validation import cross_validate
    from facestats_core.attractiveness.estimator import AttractivenessRegressor
    from facestats_core.attractiveness.training import MLPConfig
    from facestats_dagster.markdown import cross_validation_markdown, regressor_metrics_markdown

    if args.data_root is not None:
        X, y = load_data(args.data_root, args.ratings)
        source = f"{args.data_root} ({args.ratings})"
    else:
        X, y = make_data(args.n, args.dim, args.seed)
        source = "planted signal"
    config = MLPConfig(input_dim=int(X.shape[1]), seed=args.seed)
    started = time.perf_counter()
    model = AttractivenessRegressor(config, num_threads=args.threads).fit(X, y)
    total = time.perf_counter() - started

    with_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model.predict(X)
    predict_s = time.perf_counter() - t0
    torch.set_num_threads(with_threads)

    print(f"torch {torch.__version__}, threads={args.threads}, data {X.shape[0]} x {X.shape[1]}: {source}")
    print(f"fit total: {total:.2f} s (MLP loop {model.train_seconds_:.2f} s, rest = ridge CV + scoring)")
    print(f"epochs run: {model.epochs_run_} (best epoch {model.best_epoch_}, patience {config.patience})")
    print(f"per epoch: {model.train_seconds_ / model.epochs_run_ * 1000:.1f} ms")
    print(f"predict {X.shape[0]} images: {predict_s * 1000:.1f} ms")
    print(regressor_metrics_markdown(model.evaluation.held_out))

    if args.cv >= 2:
        diffs: list[float] = []
        for seed in args.seeds or [args.seed]:
            t0 = time.perf_counter()
            cv = cross_validate(X, y, MLPConfig(input_dim=int(X.shape[1]), seed=seed), k=args.cv,
                                num_threads=args.threads)
            print(f"seed {seed}: {args.cv}-fold CV in {time.perf_counter() - t0:.1f} s")
            print(cross_validation_markdown(cv))
            diffs += [f.mlp.rmse - f.ridge.rmse for f in cv.folds]
        d = np.array(diffs)
        print(
            f"all {d.size} folds: MLP - ridge RMSE {d.mean():+.4f} "
            f"(standard error {d.std(ddof=1) / np.sqrt(d.size):.4f}), MLP better in {(d < 0).sum()}"
        )


if __name__ == "__main__":
    main()
