from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facestats_core.attractiveness.domain import fit_domain
from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.attractiveness.training import MLPConfig
from facestats_core.models.bundle import (
    BundleMismatchError,
    TrainedWith,
    check_compatible,
    describe_bundle,
    read_bundle,
    write_bundle,
)
from facestats_core.models.classifiers import train_attribute_classifier
from facestats_core.models.store import ModelIntegrityError, ModelNotFoundError

TRAINED_WITH = TrainedWith(
    clip_id="openai/clip-vit-base-patch32", clip_revision="sha256:abc", embedding_dim=6, face_mode="whole",
    chip_version="chip-v1", label_sets={"fairface": {"rows": 40, "counts": {"gender": {"male": 20, "female": 20}}}},
)


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    gender = np.array(["male", "female"] * 20, dtype=object)
    classifiers = {"gender": train_attribute_classifier(X, gender, ("male", "female"), c_grid=(1.0,))}
    config = MLPConfig(input_dim=6, hidden=(4,), max_epochs=3, patience=1, batch_size=16)
    regressor = AttractivenessRegressor(config).fit(X, 3 + X[:, 0])
    return X, classifiers, regressor, fit_domain(X)


def test_round_trip_with_every_component(parts, tmp_path: Path) -> None:
    X, classifiers, regressor, domain = parts
    manifest = write_bundle(tmp_path / "b", TRAINED_WITH, classifiers, regressor, domain)
    assert set(manifest["components"]) == {"attribute_classifiers", "attractiveness_regressor", "domain"}
    bundle = read_bundle(tmp_path / "b")
    assert bundle.trained_with == TRAINED_WITH
    np.testing.assert_allclose(bundle.classifiers["gender"].predict_proba(X), classifiers["gender"].predict_proba(X))
    assert bundle.regressor is not None and bundle.domain is not None
    assert bundle.domain.threshold == pytest.approx(domain.threshold)
    np.testing.assert_allclose(bundle.domain.embeddings, domain.embeddings, atol=1e-3)  # stored as float16
    on_disk = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert on_disk["clip"] == {"id": TRAINED_WITH.clip_id, "revision": "sha256:abc", "embedding_dim": 6}
    assert on_disk["metrics"]["gender"]["n_val"] == classifiers["gender"].metrics["n_val"]
    text = describe_bundle(bundle)
    for expected in ("openai/clip-vit-base-patch32", "sha256:abc", "face mode whole", "chip-v1", "fairface",
                     "gender", "accuracy", "pearson r", "threshold"):
        assert expected in text


def test_probes_only_bundle(parts, tmp_path: Path) -> None:
    _, classifiers, _, _ = parts
    write_bundle(tmp_path, TRAINED_WITH, classifiers)
    bundle = read_bundle(tmp_path)
    assert bundle.regressor is None and bundle.domain is None
    assert "attractiveness regressor: none" in describe_bundle(bundle)


def test_missing_and_corrupt_bundles_raise_store_errors(parts, tmp_path: Path) -> None:
    _, classifiers, regressor, _ = parts
    with pytest.raises(ModelNotFoundError, match="not a model bundle"):
        read_bundle(tmp_path / "nothing")
    write_bundle(tmp_path / "a", TRAINED_WITH, classifiers, regressor)
    (tmp_path / "a" / "attribute_classifiers.safetensors").write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        read_bundle(tmp_path / "a")
    (tmp_path / "a" / "bundle.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="malformed bundle manifest"):
        read_bundle(tmp_path / "a")
    write_bundle(tmp_path / "b", TRAINED_WITH, classifiers, regressor)
    (tmp_path / "b" / "attractiveness_regressor.pt").unlink()
    with pytest.raises(ModelNotFoundError):
        read_bundle(tmp_path / "b")


def test_a_component_from_another_bundle_is_refused(parts, tmp_path: Path) -> None:
    X, classifiers, _, _ = parts
    other = {"gender": train_attribute_classifier(X[::-1], np.array(["male", "female"] * 20, dtype=object),
                                                  ("male", "female"), c_grid=(1.0,), seed=5)}
    write_bundle(tmp_path / "a", TRAINED_WITH, classifiers)
    write_bundle(tmp_path / "b", TRAINED_WITH, other)
    for suffix in (".safetensors", ".metrics.json"):
        name = f"attribute_classifiers{suffix}"
        (tmp_path / "a" / name).write_bytes((tmp_path / "b" / name).read_bytes())
    with pytest.raises(ModelIntegrityError, match="does not match its manifest"):
        read_bundle(tmp_path / "a")


def test_check_compatible_names_every_difference(parts, tmp_path: Path) -> None:
    _, classifiers, _, _ = parts
    write_bundle(tmp_path, TRAINED_WITH, classifiers)
    bundle = read_bundle(tmp_path)
    check_compatible(bundle, "models/clip", "sha256:abc", 6, "whole", "chip-v1")  # same weights, other name
    with pytest.raises(BundleMismatchError) as info:
        check_compatible(bundle, "other/clip", "sha256:def", 8, "detect", "chip-v2")
    message = str(info.value)
    assert ("bundle trained with CLIP openai/clip-vit-base-patch32 rev sha256:abc; "
            "this run uses other/clip rev sha256:def") in message
    assert "dimension 6" in message and "'detect'" in message and "chip-v2" in message
    assert "retrain or point FACESTATS_MODELS elsewhere" in message
    with pytest.raises(BundleMismatchError, match="rev unknown"):
        check_compatible(bundle, "other/clip", "unknown", 6, "whole", "chip-v1")
