"""Time training of the three attribute classifiers on synthetic structured embeddings.

Usage: python -m benchmarks.bench_attributes [--n 10000] [--dim 512] [--seed 0] [--strength 1.5]

Each row gets a gender, age bin and ethnicity; its embedding is the sum of one
random unit direction per attribute value (scaled), plus Gaussian noise, then
L2-normalised — structured like CLIP features, but random.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.classifiers import predict_attributes, train_attribute_classifier


def make_embeddings(n: int, dim: int, seed: int, strength: float = 1.5) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Synthetic L2-normalised embeddings and their attribute labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    labels: dict[str, np.ndarray] = {}
    for attr, classes in ATTRIBUTES.items():
        idx = rng.integers(0, len(classes), size=n)
        directions = rng.normal(size=(len(classes), dim)).astype(np.float32)
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        X += strength * directions[idx]
        labels[attr] = np.asarray(classes, dtype=object)[idx]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strength", type=float, default=1.5, help="signal scale (noise is N(0, 1) per dim)")
    args = parser.parse_args()
    X, labels = make_embeddings(args.n, args.dim, args.seed, args.strength)
    models = {}
    total = 0.0
    for attr, classes in ATTRIBUTES.items():
        start = time.perf_counter()
        models[attr] = train_attribute_classifier(
            X, labels[attr], classes, groups={"gender": labels["gender"]}, seed=args.seed
        )
        elapsed = time.perf_counter() - start
        total += elapsed
        m = models[attr].metrics
        print(
            f"{attr:10s} classes={len(classes)} n={args.n} dim={args.dim} time={elapsed:6.2f}s "
            f"C={m['C']} (grid edge: {m['c_at_grid_edge']}, converged: {m['converged']}) "
            f"acc={m['accuracy']:.3f} majority={m['majority_baseline_accuracy']:.3f}"
        )
    start = time.perf_counter()
    predict_attributes(models, X)
    print(f"total train time={total:.2f}s; predict all {args.n} rows={time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
