"""Attribute classifiers: accuracy on separable data, metrics schema, absent classes, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from facestats_core.labels.vocab import ETHNICITIES, GENDERS
from facestats_core.models.classifier_file import load_classifiers, save_classifiers
from facestats_core.models.classifiers import predict_attributes, train_attribute_classifier
from facestats_core.models.store import ModelIntegrityError
from tests.core.synthetic import class_blobs as _blobs

GRID = (0.01, 1.0)


@pytest.fixture(scope="module")
def ethnicity_model():
    X, y = _blobs(600, ETHNICITIES, seed=1)
    gender = np.where(np.arange(600) % 2 == 0, "male", "female").astype(object)
    clf = train_attribute_classifier(X, y, ETHNICITIES, groups={"gender": gender}, seed=0, cv_folds=3, c_grid=GRID)
    return X, y, clf


def test_separable_data_high_accuracy_and_beats_baseline(ethnicity_model) -> None:
    _, _, clf = ethnicity_model
    m = clf.metrics
    assert m["n_train"] + m["n_val"] == 600 and m["n_val"] == 120
    assert m["accuracy"] >= 0.95
    assert m["balanced_accuracy"] >= 0.95
    assert m["accuracy"] > m["majority_baseline_accuracy"] + 0.5
    assert m["C"] in GRID and set(m["cv_accuracy"]) == {repr(c) for c in GRID}


def test_metrics_schema_is_json_serialisable(ethnicity_model) -> None:
    _, _, clf = ethnicity_model
    m = json.loads(json.dumps(clf.metrics))
    for key in ("n_train", "n_val", "C", "accuracy", "balanced_accuracy", "majority_baseline_accuracy",
                "per_class", "confusion_matrix", "per_group"):
        assert key in m, key
    assert set(m["per_class"]) == set(ETHNICITIES)
    assert set(m["per_class"]["white"]) == {"precision", "recall", "support"}
    assert sum(v["support"] for v in m["per_class"].values()) == m["n_val"]
    cm = np.asarray(m["confusion_matrix"]["matrix"])
    assert m["confusion_matrix"]["labels"] == list(ETHNICITIES) and cm.shape == (7, 7)
    assert cm.sum() == m["n_val"] and np.trace(cm) / cm.sum() == pytest.approx(m["accuracy"])


def test_per_group_accuracy(ethnicity_model) -> None:
    _, _, clf = ethnicity_model
    groups = clf.metrics["per_group"]["gender"]
    assert set(groups) == {"male", "female"}
    assert sum(g["n"] for g in groups.values()) == clf.metrics["n_val"]
    weighted = sum(g["accuracy"] * g["n"] for g in groups.values()) / clf.metrics["n_val"]
    assert weighted == pytest.approx(clf.metrics["accuracy"])


def test_absent_class_and_null_labels() -> None:
    present = ("white", "black", "indian")
    X, y = _blobs(300, present, seed=2)
    y = y.copy()
    y[:10] = None
    y[10:15] = "unknown"  # never a class: treated as unlabelled
    clf = train_attribute_classifier(X, y, ETHNICITIES, seed=0, cv_folds=3, c_grid=GRID)
    assert clf.metrics["n_unlabelled_excluded"] == 15
    assert clf.metrics["n_train"] + clf.metrics["n_val"] == 285
    assert set(clf.metrics["absent_classes"]) == set(ETHNICITIES) - set(present)
    proba = clf.predict_proba(X)
    assert proba.shape == (300, len(ETHNICITIES)) and proba.dtype == np.float32
    absent_cols = [ETHNICITIES.index(c) for c in ETHNICITIES if c not in present]
    assert np.all(proba[:, absent_cols] == 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert clf.metrics["accuracy"] >= 0.9


def test_val_mask_is_the_heldout_split() -> None:
    X, y = _blobs(200, GENDERS, seed=3)
    val = np.zeros(200, dtype=bool)
    val[150:] = True
    clf = train_attribute_classifier(X, y, GENDERS, val_mask=val, seed=0, cv_folds=3, c_grid=(1.0,))
    assert (clf.metrics["n_train"], clf.metrics["n_val"], clf.metrics["heldout"]) == (150, 50, "val_mask")
    assert clf.metrics["C"] == 1.0


def test_single_present_class_does_not_crash() -> None:
    X, _ = _blobs(40, GENDERS, seed=4)
    clf = train_attribute_classifier(X, np.array(["female"] * 40, dtype=object), GENDERS, c_grid=GRID)
    assert clf.predict(X[:3]).tolist() == ["female"] * 3
    assert clf.metrics["accuracy"] == 1.0 and clf.metrics["absent_classes"] == ["male"]


def test_unknown_as_class_rejected() -> None:
    with pytest.raises(ValueError, match="unknown"):
        train_attribute_classifier(np.zeros((4, 2)), ["a"] * 4, ("a", "unknown"))


def test_predict_attributes_columns(ethnicity_model) -> None:
    X, y, clf = ethnicity_model
    gx, gy = _blobs(600, GENDERS, seed=5)
    gender = train_attribute_classifier(gx, gy, GENDERS, cv_folds=3, c_grid=GRID)
    out = predict_attributes({"gender": gender, "ethnicity": clf}, X[:50])
    assert out.height == 50
    assert out.schema["ethnicity_pred"] == pl.String
    assert out.schema["ethnicity_prob"] == pl.Float32
    assert out.schema["ethnicity_probs"] == pl.Array(pl.Float32, len(ETHNICITIES))
    assert out.schema["gender_probs"] == pl.Array(pl.Float32, 2)
    assert (out["ethnicity_pred"].to_numpy() == y[:50]).mean() >= 0.9
    probs = out["ethnicity_probs"].to_numpy()
    np.testing.assert_allclose(probs.max(axis=1), out["ethnicity_prob"].to_numpy())
    assert predict_attributes({"gender": gender}, np.zeros((0, 64), np.float32)).height == 0


def test_save_load_roundtrip_and_tamper(tmp_path: Path, ethnicity_model) -> None:
    X, _, clf = ethnicity_model
    meta = save_classifiers({"ethnicity": clf}, tmp_path)
    record = json.loads((tmp_path / "attribute_classifiers.metrics.json").read_text())
    assert record["sha256"] == meta.sha256 and len(meta.sha256) == 64
    assert record["metrics"]["ethnicity"]["accuracy"] == clf.metrics["accuracy"]
    loaded = load_classifiers(tmp_path)
    np.testing.assert_array_equal(loaded["ethnicity"].predict_proba(X[:20]), clf.predict_proba(X[:20]))
    model_file = tmp_path / "attribute_classifiers.safetensors"
    model_file.write_bytes(model_file.read_bytes() + b"\x00")
    with pytest.raises(ModelIntegrityError, match=r"sha256 [0-9a-f]{64} does not match expected " + meta.sha256):
        load_classifiers(tmp_path)


def test_paths_outside_model_root_refused(tmp_path: Path, ethnicity_model) -> None:
    _, _, clf = ethnicity_model
    root = tmp_path / "models"
    for bad in ("../evil", "a/b", "/etc/passwd", ".."):
        with pytest.raises(ModelIntegrityError):
            load_classifiers(root, name=bad)
        with pytest.raises(ModelIntegrityError):
            save_classifiers({"e": clf}, root, name=bad)
    root.mkdir()
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"x")
    (root / "linked.safetensors").symlink_to(outside)
    with pytest.raises(ModelIntegrityError, match="outside the model root"):
        load_classifiers(root, name="linked")


def test_missing_artifact_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="attribute_classifiers"):
        load_classifiers(tmp_path)
