"""Flags: low confidence, near duplicates, combined table, review template."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from facestats_core.analysis.flags import build_flags, labels_template, low_confidence_flags, near_duplicates
from facestats_core.labels.attribute_labels import read_manual_labels


def _sphere(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _predictions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "face_id": ["a", "b", "c"],
            "path": ["demo/a.jpg", "demo/b.jpg", "demo/c.jpg"],
            "gender_pred": ["male", "female", "male"],
            "gender_prob": [0.99, 0.55, None],
            "age_pred": ["20-29", "30-39", "70+"],
            "age_prob": [0.9, 0.8, 0.2],
            "ethnicity_pred": ["white", "indian", "black"],
            "ethnicity_prob": [0.95, 0.9, 0.9],
        },
        schema_overrides={"gender_prob": pl.Float32, "age_prob": pl.Float32, "ethnicity_prob": pl.Float32},
    )


def test_low_confidence_flags() -> None:
    out = low_confidence_flags(_predictions(), {"gender": 0.6, "age": 0.5})
    assert out.columns == ["face_id", "gender_low_confidence", "age_low_confidence"]
    assert out["gender_low_confidence"].to_list() == [False, True, True]  # null prob counts as low
    assert out["age_low_confidence"].to_list() == [False, False, True]
    with pytest.raises(KeyError, match="smile_prob"):
        low_confidence_flags(_predictions(), {"smile": 0.5})


@pytest.mark.parametrize("block", [7, 2048])
def test_near_duplicates_finds_planted_and_no_false_positives(block: int) -> None:
    rng = np.random.default_rng(1)
    X = _sphere(200, seed=1)
    ids = [f"img{i:03d}" for i in range(200)]
    # plant: 150 ~ 10 (tiny noise), 199 exact copy of 42, and 120 ~ 42 too (one group of three)
    X[150] = X[10] + 0.01 * rng.normal(size=64)
    X[199] = X[42]
    X[120] = X[42] + 0.01 * rng.normal(size=64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    out = near_duplicates(ids, X, threshold=0.97, block=block)
    assert out.schema == {"face_id": pl.String, "duplicate_of": pl.String, "similarity": pl.Float32}
    pairs = set(zip(out["face_id"].to_list(), out["duplicate_of"].to_list()))
    assert pairs == {("img150", "img010"), ("img120", "img042"), ("img199", "img042")}
    assert out["similarity"].min() >= 0.97
    assert out.filter(pl.col("face_id") == "img199")["similarity"].item() == pytest.approx(1.0, abs=1e-5)


def test_near_duplicates_representative_is_smallest_id_and_empty_case() -> None:
    X = _sphere(3, seed=2)
    X[0] = X[2]
    out = near_duplicates(["z", "m", "b"], X)
    assert out.rows() == [("z", "b", pytest.approx(1.0, abs=1e-5))]
    assert near_duplicates(["x", "y"], _sphere(2, seed=3)).height == 0
    with pytest.raises(ValueError, match="unique"):
        near_duplicates(["x", "x"], _sphere(2))


def test_build_flags_combines_sources() -> None:
    preproc = pl.DataFrame(
        {"face_id": ["a", "b", "c", "d"], "flags": [[], ["blurry"], None, ["unreadable"]]},
        schema={"face_id": pl.String, "flags": pl.List(pl.String)},
    )
    dups = pl.DataFrame({"face_id": ["c"], "duplicate_of": ["a"], "similarity": [0.99]})
    out = build_flags(_predictions(), {"gender": 0.6, "age": 0.5}, preprocessing=preproc, duplicates=dups)
    assert out.columns == ["face_id", "flags", "low_confidence", "near_duplicate_of"]
    rows = {r["face_id"]: r for r in out.rows(named=True)}
    assert rows["a"]["flags"] == [] and rows["a"]["low_confidence"] is False
    assert rows["b"]["flags"] == ["blurry", "low_confidence_gender"] and rows["b"]["low_confidence"] is True
    assert rows["c"]["flags"] == ["low_confidence_gender", "low_confidence_age", "near_duplicate"]
    assert rows["c"]["near_duplicate_of"] == "a"
    assert rows["d"]["flags"] == ["unreadable", "no_prediction"] and rows["d"]["low_confidence"] is False
    assert out["face_id"].to_list() == ["a", "b", "c", "d"]


def test_labels_template_is_manual_labels_compatible(tmp_path: Path) -> None:
    flagged = build_flags(_predictions(), {"gender": 0.6})
    template = labels_template(flagged, _predictions())
    assert template.columns == ["filename", "face_id", "gender", "age", "ethnicity", "flags"]
    assert template["filename"].to_list() == ["demo/b.jpg", "demo/c.jpg"]  # 'a' has no flags
    assert template.row(0) == ("demo/b.jpg", "b", "female", "30-39", "indian", "low_confidence_gender")
    path = tmp_path / "manual_labels.csv"
    template.write_csv(path)
    back = read_manual_labels(path)
    assert back.issues == []
    assert back.labels.select("file", "face_id", "gender", "age", "ethnicity").rows() == template.select(
        "filename", "face_id", "gender", "age", "ethnicity"
    ).rows()
    with pytest.raises(ValueError, match="path"):
        labels_template(flagged, _predictions().drop("path"))


def _brute_force_groups(X: np.ndarray, threshold: float) -> set[frozenset[int]]:
    """Connected groups of the full similarity graph, by repeated merging (the definition)."""
    sims = X @ X.T
    groups = [{i} for i in range(len(X))]
    for i, j in zip(*np.nonzero(np.triu(sims >= threshold, k=1)), strict=True):
        gi = next(g for g in groups if i in g)
        gj = next(g for g in groups if j in g)
        if gi is not gj:
            gi |= gj
            groups.remove(gj)
    return {frozenset(g) for g in groups if len(g) > 1}


@pytest.mark.parametrize("block", [1, 5, 64])
def test_near_duplicate_groups_are_the_components_of_the_whole_graph(block: int) -> None:
    rng = np.random.default_rng(4)
    centres = _sphere(6, seed=4)
    X = centres[rng.integers(0, 6, 90)] + 0.02 * rng.normal(size=(90, 64))  # chains within blocks and across
    X[80:] = _sphere(10, seed=5)  # and some loners
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    ids = [f"f{i:02d}" for i in range(90)]
    out = near_duplicates(ids, X, threshold=0.985, block=block)
    found: dict[str, set[int]] = {}
    for face, rep in zip(out["face_id"].to_list(), out["duplicate_of"].to_list(), strict=True):
        found.setdefault(rep, {ids.index(rep)}).add(ids.index(face))
    assert {frozenset(g) for g in found.values()} == _brute_force_groups(X.astype(np.float32), 0.985)


def test_near_duplicates_of_a_folder_of_near_identical_faces_stay_small() -> None:
    # 3,000 faces that are all alike (a burst, or an untrained CLIP): one group, every pair similar
    rng = np.random.default_rng(6)
    X = _sphere(1, seed=6) + 0.001 * rng.normal(size=(3000, 64))
    out = near_duplicates([f"f{i:04d}" for i in range(3000)], X, threshold=0.97)
    assert out.height == 2999 and set(out["duplicate_of"].to_list()) == {"f0000"}
