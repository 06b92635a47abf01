"""The labelled embeddings ``bench_prevalence.py`` measures on: the demo's reference and analysed sets.

``demo_sets(cache)`` generates them as ``facestats demo`` does (reference: demo seed 0, 1,500 faces,
balanced mix; analysed: seed 1, 600 faces, the ``shifted`` mix; 256 px) plus 6,000 balanced faces of
seed 2 (no model trained on seeds 1 or 2), embeds every image with the demo CLIP (``load_clip`` +
``embed_paths``, the pipeline's loader and preprocessing) and caches each set as ``<cache>/<name>.npz``
(embeddings and true labels), so later runs skip both steps.
``labelled_set(folder, labels_csv)`` embeds any other FairFace-format labelled folder the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES

SETS: dict[str, dict] = {
    "reference": dict(n_images=1500, seed=0, mix="balanced"),
    "analysed": dict(n_images=600, seed=1, mix="shifted"),
    "evaluation": dict(n_images=6000, seed=2, mix="balanced"),
}
"""The demo sets: the reference set the probes train on and the analysed folder, as ``facestats demo``
writes them, and more balanced faces of an unused seed that widen the pool test samples are drawn from."""


@dataclass(frozen=True)
class LabelledSet:
    """Embeddings ``X`` (n, d) and true labels per attribute (object arrays of canonical values)."""

    X: np.ndarray
    labels: dict[str, np.ndarray]


def _embed(paths: list[Path], model: str) -> np.ndarray:
    from facestats_core.embedding.config import ClipConfig
    from facestats_core.embedding.embed import embed_paths
    from facestats_core.embedding.loader import load_clip

    clip = load_clip(ClipConfig(model=model))
    result = embed_paths(clip, paths, batch_size=64)
    if result.failures:
        raise SystemExit(f"{len(result.failures)} images failed to embed: {result.failures[:3]}")
    return np.asarray(result.embeddings, dtype=np.float32)


def _demo_set(root: Path, spec: dict, model: str) -> LabelledSet:
    from facestats_demo.faces import DemoSpec, generate_demo_dataset

    dataset = generate_demo_dataset(root, DemoSpec(size=256, **spec))
    truth = pl.read_csv(dataset.truth)
    X = _embed([root / "raw" / name for name in truth["file"].to_list()], model)
    return LabelledSet(X, {attr: truth[attr].to_numpy().astype(object) for attr in ATTRIBUTES})


def _cached(cache: Path, name: str, make) -> LabelledSet:
    stored = cache / f"{name}.npz"
    if stored.exists():
        data = np.load(stored, allow_pickle=False)
        return LabelledSet(data["X"], {a: data[a].astype(object) for a in ATTRIBUTES})
    made = make()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{name}.tmp.npz"
    np.savez(tmp, X=made.X, **{a: made.labels[a].astype(str) for a in ATTRIBUTES})
    tmp.replace(stored)
    return made


def demo_sets(cache: Path, model: str | None = None) -> dict[str, LabelledSet]:
    """``reference``, ``analysed`` and ``evaluation`` demo sets, each from ``<cache>/<name>.npz`` when it exists."""
    from facestats_demo.train_clip import DEMO_CLIP_DIR

    cache = Path(cache)
    model = model or str(DEMO_CLIP_DIR)
    return {
        name: _cached(cache, name, lambda name=name, spec=spec: _demo_set(cache / name, spec, model))
        for name, spec in SETS.items()
    }


def labelled_set(folder: Path, labels_csv: Path, model: str) -> LabelledSet:
    """Any FairFace-format labelled folder, embedded (rows whose image is missing are left out)."""
    from facestats_core.labels.attribute_labels import read_fairface_labels

    frame = read_fairface_labels(labels_csv).labels
    paths = [Path(folder) / str(f) for f in frame["file"].to_list()]
    keep = np.array([p.exists() for p in paths])
    frame = frame.filter(pl.Series(keep))
    X = _embed([p for p, k in zip(paths, keep) if k], model)
    return LabelledSet(X, {attr: frame[attr].to_numpy().astype(object) for attr in ATTRIBUTES})
