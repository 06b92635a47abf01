"""Model files are data, never code: probes rebuilt from arrays give the same predictions, pickles are
refused unread, and every hostile file gets a one-line refusal naming the file and the reason."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from facestats_core.attractiveness.domain import fit_domain
from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.attractiveness.model_file import load_regressor
from facestats_core.attractiveness.training import MLPConfig
from facestats_core.models.array_file import ArrayFileError
from facestats_core.models.bundle import TrainedWith, read_bundle, write_bundle
from facestats_core.models.classifier_file import load_classifiers, save_classifiers
from facestats_core.models.classifiers import TrainedClassifier, train_attribute_classifier
from facestats_core.models.prevalence_calibration import CalibrationData, calibration_of
from facestats_core.models.store import ModelIntegrityError, PickleFormatError
from tests.core.synthetic import class_blobs

DIM = 8
TRAINED_WITH = TrainedWith("clip/x", "sha256:abc", DIM, "whole", "chip-v1")
PROBES = "attribute_classifiers"


@pytest.fixture(scope="module")
def data():
    X, ethnicity = class_blobs(160, ("a", "b", "c"), dim=DIM, seed=3)
    gender = np.where(np.arange(160) % 3 == 0, "female", "male").astype(object)
    probes = {
        "ethnicity": train_attribute_classifier(X, ethnicity, ("a", "b", "c", "d"), c_grid=(0.1, 1.0), cv_folds=2),
        "gender": train_attribute_classifier(X, gender, ("female", "male"), c_grid=(1.0,)),
        "age": train_attribute_classifier(X, np.array(["young"] * 160, dtype=object), ("young", "old")),
    }
    config = MLPConfig(input_dim=DIM, hidden=(4,), max_epochs=2, patience=1, batch_size=32)
    regressor = AttractivenessRegressor(config).fit(X, 3 + X[:, 0])
    return X, probes, regressor


class _RunsCode:
    """Unpickling this creates `marker`: what a crafted model pickle would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _crafted_pickle(marker: Path) -> bytes:
    blob = pickle.dumps({"format": 1, "models": _RunsCode(marker)})
    probe = marker.with_name("proof")
    pickle.loads(pickle.dumps(_RunsCode(probe)))  # the payload does run code when unpickled...
    assert probe.exists()
    return blob


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rewrite(root: Path, payload_name: str, metadata_name: str, sha_key: str, payload: bytes,
             record: Callable[[dict], None] = lambda r: None, component: str | None = None) -> None:
    """Replace a payload and re-record its sha256 everywhere, as an attacker who controls the folder can."""
    (root / payload_name).write_bytes(payload)
    meta = json.loads((root / metadata_name).read_text())
    meta[sha_key] = _sha(payload)
    record(meta)
    (root / metadata_name).write_text(json.dumps(meta))
    if component and (root / "bundle.json").exists():
        manifest = json.loads((root / "bundle.json").read_text())
        manifest["components"][component]["sha256"] = _sha(payload)
        (root / "bundle.json").write_text(json.dumps(manifest))


def _one_line_refusal(call: Callable[[], object], *needles: str) -> str:
    with pytest.raises(ModelIntegrityError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    return message


# --------------------------------------------------------------------------- same predictions


def test_probes_rebuilt_from_arrays_predict_exactly_as_the_fitted_ones(data, tmp_path: Path) -> None:
    X, probes, _ = data
    save_classifiers(probes, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{PROBES}.metrics.json", f"{PROBES}.safetensors"]
    loaded = load_classifiers(tmp_path)
    Y = class_blobs(50, ("a", "b", "c"), dim=DIM, seed=9)[0]  # another folder
    for attr, probe in probes.items():
        back = loaded[attr]
        assert isinstance(back, TrainedClassifier)
        assert (back.classes, back.present_classes, back.C) == (probe.classes, probe.present_classes, probe.C)
        assert back.metrics == json.loads(json.dumps(probe.metrics))
        np.testing.assert_array_equal(back.predict_proba(X), probe.predict_proba(X))
        np.testing.assert_array_equal(back.predict_proba(Y), probe.predict_proba(Y))
        np.testing.assert_array_equal(back.predict(Y), probe.predict(Y))
    assert type(loaded["gender"].model).__name__ == "LogisticRegression"
    assert type(loaded["age"].model).__name__ == "ConstantClassifier"
    save_classifiers({}, tmp_path / "zero_shot")  # a run without probes stores an empty model
    assert load_classifiers(tmp_path / "zero_shot") == {}


def test_extra_arrays_travel_with_the_probe_and_are_checked(data, tmp_path: Path) -> None:
    _, probes, _ = data
    rng = np.random.default_rng(0)
    calibration = CalibrationData(probes["ethnicity"].classes, rng.dirichlet(np.ones(4), size=30).astype(np.float32),
                                  rng.integers(0, 4, size=30).astype(np.int64),
                                  context=rng.integers(-1, 4, size=(30, 3)).astype(np.int64))
    extras = calibration.arrays()
    assert set(extras) == {"calibration_posteriors", "calibration_labels", "calibration_context"}
    probe = TrainedClassifier(**{**probes["ethnicity"].__dict__, "arrays": extras})
    save_classifiers({"ethnicity": probe}, tmp_path)
    meta = json.loads((tmp_path / f"{PROBES}.metrics.json").read_text())
    assert meta["probes"]["ethnicity"]["dims"] == {"features": DIM, "calibration_rows": 30, "context_attributes": 3}
    loaded = load_classifiers(tmp_path)["ethnicity"]
    again = calibration_of(loaded)
    assert again is not None and np.array_equal(again.context, calibration.context)
    back = loaded.arrays
    assert set(back) == set(extras)
    for name, array in extras.items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == array.dtype
    with pytest.raises(ValueError, match="not in the schema"):
        save_classifiers({"e": TrainedClassifier(**{**probe.__dict__, "arrays": {"evil": np.zeros(2)}})}, tmp_path)
    arrays = load_safetensors((tmp_path / f"{PROBES}.safetensors").read_bytes())
    arrays["ethnicity.calibration_labels"][0] = 4  # not a class index
    _rewrite(tmp_path, f"{PROBES}.safetensors", f"{PROBES}.metrics.json", "sha256", save_safetensors(arrays))
    _one_line_refusal(lambda: load_classifiers(tmp_path), "ethnicity.calibration_labels", "indices outside [0, 4)")


# --------------------------------------------------------------------------- pickles never run


def test_a_pickle_format_model_root_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    blob = _crafted_pickle(marker)
    root = tmp_path / "models"
    root.mkdir()
    (root / f"{PROBES}.joblib").write_bytes(blob)
    (root / f"{PROBES}.metrics.json").write_text(json.dumps({"format": 1, "file": f"{PROBES}.joblib",
                                                             "sha256": _sha(blob), "attributes": ["gender"]}))
    with pytest.raises(PickleFormatError) as info:
        load_classifiers(root)
    assert "`facestats update`" in str(info.value) and f"{PROBES}.joblib" in str(info.value)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_a_pickle_format_bundle_is_refused_unread(data, tmp_path: Path) -> None:
    _, probes, _ = data
    marker = tmp_path / "ran"
    blob = _crafted_pickle(marker)
    bundle = tmp_path / "bundle"
    write_bundle(bundle, TRAINED_WITH, probes)
    (bundle / f"{PROBES}.safetensors").unlink()
    _rewrite(bundle, f"{PROBES}.joblib", f"{PROBES}.metrics.json", "sha256", blob,
             lambda meta: meta.update(format=1, file=f"{PROBES}.joblib"), component=PROBES)
    manifest = json.loads((bundle / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps({**manifest, "format": 1}))
    message = _one_line_refusal(lambda: read_bundle(bundle), "format-1", "`facestats update`")
    assert "pickle" in message
    (bundle / "bundle.json").write_text(json.dumps(manifest))  # a new manifest over the old pickle
    with pytest.raises(PickleFormatError, match="facestats update"):
        read_bundle(bundle)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("target", ["probes", "regressor"])
def test_a_pickle_in_place_of_the_arrays_never_runs(data, tmp_path: Path, target: str) -> None:
    _, probes, regressor = data
    marker = tmp_path / "ran"
    blob = _crafted_pickle(marker)
    bundle = tmp_path / "bundle"
    write_bundle(bundle, TRAINED_WITH, probes, regressor)
    if target == "probes":
        _rewrite(bundle, f"{PROBES}.safetensors", f"{PROBES}.metrics.json", "sha256", blob, component=PROBES)
        _one_line_refusal(lambda: read_bundle(bundle), f"{PROBES}.safetensors", "not a readable safetensors file")
    else:
        name = "attractiveness_regressor"
        _rewrite(bundle, f"{name}.pt", f"{name}.json", "weights_sha256", blob, component=name)
        _one_line_refusal(lambda: read_bundle(bundle), f"{name}.pt", "not a file of tensors")
    assert not marker.exists()


# --------------------------------------------------------------------------- hostile probe files


def _tampered_probes(tmp_path: Path, probes, change: Callable[[dict], None],
                     record: Callable[[dict], None] = lambda r: None) -> Path:
    root = tmp_path / "bundle"
    write_bundle(root, TRAINED_WITH, probes)
    arrays = load_safetensors((root / f"{PROBES}.safetensors").read_bytes())
    change(arrays)
    _rewrite(root, f"{PROBES}.safetensors", f"{PROBES}.metrics.json", "sha256", save_safetensors(arrays),
             record, component=PROBES)
    return root


def _put(key: str, value) -> Callable[[dict], None]:
    return lambda arrays: arrays.__setitem__(key, value)


HOSTILE_PROBES = {
    "wrong shape": (_put("gender.coef", np.zeros((1, DIM + 1), np.float32)), "gender.coef has shape (1, 9)"),
    "wrong dtype": (_put("gender.coef", np.zeros((1, DIM), np.int64)), "gender.coef has dtype int64"),
    "half floats": (_put("gender.scaler_mean", np.zeros(DIM, np.float16)), "dtype float16"),
    "NaN weights": (_put("gender.intercept", np.array([np.nan], np.float32)), "gender.intercept holds NaN"),
    "inf weights": (_put("ethnicity.scaler_scale", np.full(DIM, np.inf)), "ethnicity.scaler_scale holds NaN or inf"),
    "missing key": (lambda arrays: arrays.pop("ethnicity.coef"), "missing array ethnicity.coef"),
    "unknown key": (_put("gender.__reduce__", np.zeros(1, np.float32)), "unexpected array gender.__reduce__"),
    "far larger": (_put("gender.coef", np.zeros((1, 200_000), np.float32)), "bytes, more than the"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PROBES))
def test_hostile_probe_arrays_are_refused_in_one_line(data, tmp_path: Path, case: str) -> None:
    _, probes, _ = data
    change, reason = HOSTILE_PROBES[case]
    root = _tampered_probes(tmp_path, probes, change)
    _one_line_refusal(lambda: read_bundle(root), reason, str(root))


def test_a_truncated_probe_file_is_refused(data, tmp_path: Path) -> None:
    _, probes, _ = data
    root = tmp_path / "bundle"
    write_bundle(root, TRAINED_WITH, probes)
    payload = (root / f"{PROBES}.safetensors").read_bytes()
    _rewrite(root, f"{PROBES}.safetensors", f"{PROBES}.metrics.json", "sha256", payload[:-40], component=PROBES)
    _one_line_refusal(lambda: read_bundle(root), f"{PROBES}.safetensors", "not a readable safetensors file")
    assert _sha(payload[:-40]) != _sha(payload)


HOSTILE_RECORDS = {
    "huge dimension": (lambda m: m["probes"]["gender"]["dims"].update(features=10**12), "dimension features"),
    "no dimension": (lambda m: m["probes"]["gender"].update(dims={}), "needs dimension features"),
    "other dimension": (lambda m: m["probes"]["gender"]["dims"].update(features=DIM + 1), "has shape (1, 8)"),
    "code as kind": (lambda m: m["probes"]["gender"].update(kind="pickle"), "'kind' must be one of"),
    "classes mismatch": (lambda m: m["probes"]["gender"].update(present_classes=["x", "male"]), "present_classes"),
    "missing probe": (lambda m: m["probes"].pop("gender"), "holds no attribute classifiers"),
    "bad C": (lambda m: m["probes"]["gender"].update(C=float("nan")), "C must be"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RECORDS))
def test_hostile_probe_metadata_is_refused_in_one_line(data, tmp_path: Path, case: str) -> None:
    _, probes, _ = data
    change, reason = HOSTILE_RECORDS[case]
    root = _tampered_probes(tmp_path, probes, lambda arrays: None, change)
    _one_line_refusal(lambda: read_bundle(root), reason, f"{PROBES}.")


def test_probes_of_another_dimension_than_the_bundle_are_refused(data, tmp_path: Path) -> None:
    _, probes, _ = data
    root = tmp_path / "bundle"
    write_bundle(root, TrainedWith("clip/x", "sha256:abc", DIM + 2, "whole", "chip-v1"), probes)
    _one_line_refusal(lambda: read_bundle(root), "takes 8-d embeddings, the bundle declares 10")


# --------------------------------------------------------------------------- hostile domain and regressor


def test_hostile_domain_references_are_refused(data, tmp_path: Path) -> None:
    X, probes, _ = data
    domain = fit_domain(X)
    cases = {
        "NaN": ({"domain.embeddings": np.full((160, DIM), np.nan, np.float16)}, "holds NaN"),
        "shape": ({"domain.embeddings": np.zeros((160, DIM - 1), np.float16)}, "has shape (160, 7)"),
        "dtype": ({"domain.embeddings": np.zeros((160, DIM), np.float32)}, "dtype float32"),
        "larger": ({"domain.embeddings": np.zeros((100_000, DIM), np.float16)}, "bytes, more than the"),
    }
    for name, (arrays, reason) in cases.items():
        root = tmp_path / name
        write_bundle(root, TRAINED_WITH, probes, domain=domain)
        _rewrite(root, "domain.safetensors", "domain.json", "sha256", save_safetensors(arrays), component="domain")
        _one_line_refusal(lambda root=root: read_bundle(root), "domain.safetensors", reason)


def test_hostile_regressor_tensors_are_refused(data, tmp_path: Path) -> None:
    import io

    import torch

    _, probes, regressor = data
    name = "attractiveness_regressor"
    write_bundle(tmp_path / "good", TRAINED_WITH, probes, regressor)
    good = torch.load(tmp_path / "good" / f"{name}.pt", weights_only=True)

    def saved(state: dict) -> bytes:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    cases = {
        "shape": (saved({**good, "0.weight": torch.zeros(4, DIM + 3)}), "tensor 0.weight has shape (4, 11)"),
        "NaN": (saved({**good, "3.bias": torch.tensor([float("nan")])}), "tensor 3.bias holds NaN"),
        "dtype": (saved({**good, "0.bias": torch.zeros(4, dtype=torch.int64)}), "dtype torch.int64"),
        "missing": (saved({k: v for k, v in good.items() if k != "0.weight"}), "missing tensors ['0.weight']"),
        "truncated": (saved(good)[:200], "not a file of tensors"),
        "larger": (saved({**good, "extra": torch.zeros(1_000_000)}), "bytes, more than the"),
    }
    for case, (payload, reason) in cases.items():
        root = tmp_path / case
        write_bundle(root, TRAINED_WITH, probes, regressor)
        _rewrite(root, f"{name}.pt", f"{name}.json", "weights_sha256", payload, component=name)
        _one_line_refusal(lambda root=root: read_bundle(root), f"{name}.", reason)
        _one_line_refusal(lambda root=root: load_regressor(root), reason)
