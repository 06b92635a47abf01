"""The json sidecars of built composites (`<slug>.json` beside each picture), read back."""

from __future__ import annotations

import json
from typing import Any

from facestats_core.composites.not_built import is_built


def read_sidecar(path: Any) -> dict[str, Any] | None:
    """A composite json sidecar (a dict with `spec`), or None when the file is anything else."""
    try:
        with path.open("r") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and "spec" in meta else None


def read_sidecars(folder: Any) -> list[dict[str, Any]]:
    """Every readable sidecar in `folder`, sorted by spec; none when the folder does not exist."""
    if not folder.exists():
        return []
    sidecars = (read_sidecar(path) for path in folder.glob("*.json"))
    return sorted((meta for meta in sidecars if meta is not None), key=lambda meta: str(meta["spec"]))


def member_ids(folder: Any) -> dict[str, list[str]]:
    """`{canonical spec: face ids averaged into it}` of every built composite in `folder`."""
    return {
        str(meta["spec"]): [str(i) for i in meta["face_ids"]]
        for meta in read_sidecars(folder)
        if isinstance(meta.get("face_ids"), list) and is_built(meta)
    }
