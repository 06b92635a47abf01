"""The model store: atomic pair of payload + metadata, sha256-checked loads, safe names, URL roots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from upath import UPath

from facestats_core.models.store import (
    MetadataKeys,
    ModelIntegrityError,
    ModelNotFoundError,
    StoredModel,
    load_model,
    model_paths,
    save_model,
)


def test_round_trip_records_sha256_and_file(tmp_path: Path) -> None:
    stored = save_model(tmp_path, "m", b"weights", {"format": 1}, ".bin")
    assert isinstance(stored, StoredModel)
    assert stored.weights == tmp_path.resolve() / "m.bin" and stored.metadata == tmp_path.resolve() / "m.json"
    record = json.loads(stored.metadata.read_text())
    assert record == {"format": 1, "file": "m.bin", "sha256": stored.sha256}
    assert stored.to_dict() == {
        "name": "m", "model_path": str(stored.weights), "metadata_path": str(stored.metadata),
        "sha256": stored.sha256, "bytes": 7,
    }
    assert load_model(tmp_path, "m", ".bin") == (b"weights", record)


def test_custom_metadata_keys_and_suffix(tmp_path: Path) -> None:
    keys = MetadataKeys(file="weights_file", sha256="weights_sha256")
    save_model(tmp_path, "r", b"x", {}, ".pt", ".meta.json", keys=keys)
    record = json.loads((tmp_path / "r.meta.json").read_text())
    assert set(record) == {"weights_file", "weights_sha256"}
    assert load_model(tmp_path, "r", ".pt", ".meta.json", keys=keys)[0] == b"x"
    with pytest.raises(ModelIntegrityError, match="no 'sha256'"):
        load_model(tmp_path, "r", ".pt", ".meta.json")


def test_mismatch_missing_and_malformed(tmp_path: Path) -> None:
    stored = save_model(tmp_path, "m", b"weights", {}, ".bin", kind="widget")
    stored.weights.write_bytes(b"weightz")
    mismatch = f"sha256 [0-9a-f]{{64}} does not match expected {stored.sha256}"
    with pytest.raises(ModelIntegrityError, match=mismatch):
        load_model(tmp_path, "m", ".bin")
    stored.weights.unlink()
    with pytest.raises(ModelNotFoundError, match=r"widget artifact not found: .*m\.bin"):
        load_model(tmp_path, "m", ".bin", kind="widget")
    with pytest.raises(FileNotFoundError, match=r"absent\.json"):  # missing metadata, reported first
        load_model(tmp_path, "absent", ".bin")
    for bad in (b"{not json", b"[1, 2]", b'{"sha256": 5}', b"\xff"):
        (tmp_path / "bad.bin").write_bytes(b"")
        (tmp_path / "bad.json").write_bytes(bad)
        with pytest.raises(ModelIntegrityError, match="malformed model metadata"):
            load_model(tmp_path, "bad", ".bin")


def test_unsafe_names_and_escaping_paths(tmp_path: Path) -> None:
    for bad in ("", "../x", "a/b", ".hidden", "a..b", "/etc/passwd"):
        with pytest.raises(ModelIntegrityError, match="invalid regressor name"):
            model_paths(tmp_path, bad, ".pt", kind="regressor")
    (tmp_path / "link.pt").symlink_to(tmp_path.parent / "elsewhere.pt")
    with pytest.raises(ModelIntegrityError, match="outside the model root"):
        save_model(tmp_path, "link", b"x", {}, ".pt")
    assert not (tmp_path.parent / "elsewhere.pt").exists()


def test_url_root(tmp_path: Path) -> None:
    root = UPath("memory://facestats-store-test/models")
    stored = save_model(root, "m", b"remote", {"v": 2}, ".bin")
    assert str(stored.weights).startswith("memory://") and stored.weights.read_bytes() == b"remote"
    payload, record = load_model("memory://facestats-store-test/models", "m", ".bin")
    assert payload == b"remote" and record["v"] == 2
