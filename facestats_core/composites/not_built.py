"""Composites that cannot be built (too few matching faces, a spec that needs scores there are
none of, …) are recorded, not failed: ``<slug>.json`` says ``status: not_built`` and why, and no
picture is left beside it, so the UI, the contact sheet and the report show the reason."""

from __future__ import annotations

from typing import Any

from facestats_core.composites.filter_spec import FilterSpec
from facestats_core.io.atomic import atomic_write_json

BUILT = "built"
NOT_BUILT = "not_built"


def is_built(meta: dict[str, Any]) -> bool:
    """Whether a sidecar describes a built composite (sidecars before this status existed were built)."""
    return meta.get("status", BUILT) == BUILT


def record_not_built(composites_dir: Any, spec: FilterSpec, reason: str, counts: dict[str, Any] | None = None,
                     formats: tuple[str, ...] = ("png", "jpg")) -> Any:
    """Write ``<slug>.json`` with ``status: not_built`` and ``reason`` (and ``counts``); remove a stale picture."""
    for fmt in formats:
        stale = composites_dir / f"{spec.slug}.{fmt}"
        if stale.exists():
            stale.unlink()
    path = composites_dir / f"{spec.slug}.json"
    atomic_write_json(path, {"spec": spec.canonical, "slug": spec.slug, "status": NOT_BUILT, "reason": reason,
                             **(counts or {})})
    return path
