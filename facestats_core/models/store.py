"""The one model store: a payload file plus a metadata JSON that records its sha256.

Every model artifact is a pair of files under a model root: the payload
(`<name><weights_suffix>`: plain data, e.g. safetensors arrays or a torch tensor dict) and its
metadata (`<name><metadata_suffix>`). The metadata names the payload file and
records its sha256; `load_model` refuses a payload whose bytes no longer hash
to it, so a tampered or half-written pair is never deserialised.

Both files are written atomically, payload first: a run that dies between the
two writes leaves a pair whose checksum does not match, never new weights with
old metadata that passes the check. The model root may be a local path or any
fsspec/UPath URL. Names are plain file stems; local artifacts must also
resolve inside the resolved root (a symlink pointing elsewhere is refused).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facestats_core.io.atomic import atomic_write_bytes, atomic_write_json
from facestats_core.io.hashing import sha256_bytes
from facestats_core.io.layout import to_upath

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""A model name: letters, digits, `.`, `_`, `-`, starting with a letter or digit (and no `..`)."""


class ModelIntegrityError(ValueError):
    """A model artifact is untrusted: unsafe name or path, missing file, bad metadata, sha256 mismatch."""


class ModelNotFoundError(ModelIntegrityError, FileNotFoundError):
    """A model artifact file does not exist (also a `FileNotFoundError`)."""


class PickleFormatError(ModelIntegrityError):
    """A model in the pickle format of older FaceStats versions: refused unread, never unpickled."""


MAX_METADATA_BYTES = 64 << 20
"""A metadata JSON larger than this is refused unread."""


@dataclass(frozen=True)
class MetadataKeys:
    """The metadata JSON fields the store fills in: the payload's file name and its sha256.

    Each model kind keeps the field names its files have always had.
    """

    file: str = "file"
    sha256: str = "sha256"


DEFAULT_KEYS = MetadataKeys()

@dataclass(frozen=True)
class ModelPaths:
    """Where a model's payload (`weights`) and its metadata JSON live."""

    weights: Any
    metadata: Any


@dataclass(frozen=True)
class StoredModel:
    """A model pair as written by `save_model`."""

    name: str
    weights: Any
    metadata: Any
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: name, both paths as strings, sha256 and payload size in bytes."""
        return {
            "name": self.name,
            "model_path": str(self.weights),
            "metadata_path": str(self.metadata),
            "sha256": self.sha256,
            "bytes": self.size,
        }


def _check_name(name: str, kind: str) -> None:
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ModelIntegrityError(f"invalid {kind} name {name!r}: use letters, digits, '.', '_', '-' only")


def _inside_root(root: Path, path: Path, kind: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise ModelIntegrityError(
            f"{kind} artifact {path} resolves to {resolved}, outside the model root {root}"
        )
    return path


def model_paths(
    model_root: Any, name: str, weights_suffix: str, metadata_suffix: str = ".json", *, kind: str = "model"
) -> ModelPaths:
    """Artifact paths for `name` under `model_root`; refuses unsafe names and local paths escaping the root.

    Local roots give resolved `pathlib.Path`s, URL roots UPaths. `kind` names
    the artifact in error messages (e.g. `"regressor"`).
    """
    _check_name(name, kind)
    root = to_upath(model_root)
    if root.protocol not in ("", "file", "local"):
        return ModelPaths(root / f"{name}{weights_suffix}", root / f"{name}{metadata_suffix}")
    local = Path(root.path).resolve()
    return ModelPaths(
        weights=_inside_root(local, local / f"{name}{weights_suffix}", kind),
        metadata=_inside_root(local, local / f"{name}{metadata_suffix}", kind),
    )


def save_model(
    model_root: Any,
    name: str,
    payload: bytes,
    metadata: dict[str, Any],
    weights_suffix: str,
    metadata_suffix: str = ".json",
    *,
    keys: MetadataKeys = DEFAULT_KEYS,
    kind: str = "model",
) -> StoredModel:
    """Write the payload, then `metadata` plus the payload's file name and sha256, both atomically."""
    paths = model_paths(model_root, name, weights_suffix, metadata_suffix, kind=kind)
    digest = sha256_bytes(payload)
    record = {**metadata, keys.file: f"{name}{weights_suffix}", keys.sha256: digest}
    atomic_write_bytes(paths.weights, payload)
    atomic_write_json(paths.metadata, record)
    return StoredModel(name, paths.weights, paths.metadata, sha256=digest, size=len(payload))


def read_limited(path: Any, kind: str, max_bytes: int | None = None) -> bytes:
    """The file's bytes; `ModelIntegrityError` for one larger than `max_bytes` (refused before it is read),
    `ModelNotFoundError` when it is missing."""
    try:
        if max_bytes is not None and (size := path.stat().st_size) > max_bytes:
            raise ModelIntegrityError(f"refusing to load {path}: {size} bytes, more than the {max_bytes} its metadata allows")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{kind} artifact not found: {path}") from exc


def _parse_metadata(raw: bytes, path: Any, keys: MetadataKeys) -> dict[str, Any]:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"malformed model metadata {path}: {exc}") from exc
    if not isinstance(record, dict) or not isinstance(record.get(keys.sha256), str):
        raise ModelIntegrityError(
            f"malformed model metadata {path}: no {keys.sha256!r} string in a JSON object"
        )
    return record


def load_model(
    model_root: Any,
    name: str,
    weights_suffix: str,
    metadata_suffix: str = ".json",
    *,
    keys: MetadataKeys = DEFAULT_KEYS,
    kind: str = "model",
    max_bytes: Callable[[dict[str, Any]], int] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """The payload bytes and metadata of `name`, only once the payload's sha256 matches the recorded one.

    Raises `ModelIntegrityError` for an unsafe name or path, malformed metadata
    or a sha256 mismatch, and `ModelNotFoundError` (a `ModelIntegrityError`
    and a `FileNotFoundError`) when either file is missing. `max_bytes(metadata)`: the largest
    payload the metadata allows; a larger file is refused before it is read (a metadata JSON over
    `MAX_METADATA_BYTES` always is).
    """
    paths = model_paths(model_root, name, weights_suffix, metadata_suffix, kind=kind)
    metadata = _parse_metadata(read_limited(paths.metadata, kind, MAX_METADATA_BYTES), paths.metadata, keys)
    payload = read_limited(paths.weights, kind, None if max_bytes is None else max_bytes(metadata))
    actual, expected = sha256_bytes(payload), metadata[keys.sha256]
    if actual != expected:
        raise ModelIntegrityError(
            f"refusing to load {paths.weights}: sha256 {actual} does not match expected {expected} "
            f"recorded in {paths.metadata} (tampered or partially written)"
        )
    return payload, metadata


ABSENT_SUFFIX = ".absent.json"
"""``<name>.absent.json``: this model was deliberately not trained (e.g. no ratings); its reason."""


def mark_absent(model_root: Any, name: str, reason: str) -> None:
    """Record that model ``name`` does not exist for a reason (its older files, if any, are ignored)."""
    if not SAFE_NAME.match(name) or ".." in name:
        raise ModelIntegrityError(f"unsafe model name {name!r}")
    atomic_write_json(to_upath(model_root) / f"{name}{ABSENT_SUFFIX}", {"name": name, "absent": True, "reason": reason})


def absent_reason(model_root: Any, name: str) -> str | None:
    """Why model ``name`` is marked absent, or None when it is not."""
    path = to_upath(model_root) / f"{name}{ABSENT_SUFFIX}"
    if not path.exists():
        return None
    try:
        return str(json.loads(path.read_text()).get("reason", "marked absent"))
    except (OSError, ValueError):
        return "marked absent"


def clear_absent(model_root: Any, name: str) -> None:
    """Remove the absent marker of ``name`` (before a new model of that name is saved)."""
    path = to_upath(model_root) / f"{name}{ABSENT_SUFFIX}"
    if path.exists():
        path.unlink()
