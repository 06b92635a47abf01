"""The trained demo CLIP that ships in facestats_demo/demo_clip: small, loadable like any CLIP, and it sees gender."""

from __future__ import annotations

import json

import numpy as np

from facestats_demo.clip_training_set import EVALUATION_SEEDS
from facestats_demo.faces import demo_face
from facestats_demo.train_clip import DEMO_CLIP_DIR, RECORD_FILE

UNSEEN_SEED = 7  # neither the training seed nor the demo's


def test_demo_clip_is_small_and_records_its_training_faces() -> None:
    size = sum(f.stat().st_size for f in DEMO_CLIP_DIR.iterdir() if f.is_file())
    assert size <= 10 * 1024 * 1024
    record = json.loads((DEMO_CLIP_DIR / RECORD_FILE).read_text())
    seed = record["training_faces"]["seed"]
    assert seed not in EVALUATION_SEEDS and seed != UNSEEN_SEED
    assert "NOT OpenAI" in record["what"]


def _nearest_centroid_accuracy(X: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out nearest-centroid accuracy (cosine): no fitted parameters to overfit."""
    correct = 0
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        centroids = {label: X[rest & (y == label)].mean(axis=0) for label in set(y.tolist())}
        correct += max(centroids, key=lambda label: float(X[i] @ centroids[label])) == y[i]
    return correct / len(y)


def test_demo_clip_separates_demo_classes_it_never_saw(tmp_path) -> None:
    from facestats_core.embedding.config import ClipConfig
    from facestats_core.embedding.embed import embed_paths
    from facestats_core.embedding.loader import load_clip

    paths, traits = [], []
    for index in range(84):
        face = demo_face(UNSEEN_SEED, index, 256)
        path = tmp_path / f"face_{index:02d}.jpg"
        face.image.save(path, quality=90)
        paths.append(path)
        traits.append(face.traits)
    clip = load_clip(ClipConfig(model=str(DEMO_CLIP_DIR), precision="fp32", local_files_only=True))
    assert clip.tower.precision == "fp32" and clip.image_size == 160
    X = embed_paths(clip, paths).embeddings
    ethnicity = np.array([t.ethnicity for t in traits])
    pair = np.isin(ethnicity, ["white", "black"])
    assert pair.sum() == 24
    assert _nearest_centroid_accuracy(X[pair], ethnicity[pair]) >= 0.9
    age = np.array([t.age for t in traits])
    young, old = np.isin(age, ["20-29", "30-39"]), np.isin(age, ["60-69", "70+"])
    assert _nearest_centroid_accuracy(X[young | old], np.where(old, "old", "young")[young | old]) >= 0.9
    gender = np.array([t.gender for t in traits])
    assert _nearest_centroid_accuracy(X, gender) >= 0.9
