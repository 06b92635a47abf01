"""Report inputs read from files: the built composites (json sidecars and thumbnails)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facestats_core.composites.not_built import is_built
from facestats_core.composites.sidecars import read_sidecars
from facestats_core.images.thumbnails import thumbnail_jpeg


@dataclass(frozen=True)
class CompositeItem:
    """One composite for the gallery: its json sidecar fields and a JPEG thumbnail (None if unreadable)."""

    spec: str
    file: str
    matched: int | None
    used: int | None
    relaxed: tuple[str, ...] = ()
    thumbnail: bytes | None = None
    not_built: str | None = None
    """Why the composite could not be built (None when it was)."""


def _is_plain_name(name: str) -> bool:
    """True for a file name that stays in its folder (no separators, not ``.``/``..``)."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _thumbnail(folder: Any, name: str, side: int) -> bytes | None:
    """The thumbnail of ``folder/name``, or None when the name is unsafe or the image unreadable."""
    if not _is_plain_name(name):
        return None
    try:
        return thumbnail_jpeg(folder / name, side)
    except (OSError, ValueError):
        return None


def read_composites(folder: Any, side: int = 192) -> list[CompositeItem]:
    """The composites in ``folder`` (every ``<slug>.json`` with its image), sorted by spec.

    Sidecars that are not composite json, or whose ``image_file`` is not a plain
    file name in the folder, are skipped; an unreadable image gives an item without thumbnail.
    """
    if folder is None:
        return []
    items: list[CompositeItem] = []
    for meta in read_sidecars(folder):
        name = str(meta.get("image_file") or "")
        items.append(
            CompositeItem(
                spec=str(meta["spec"]),
                file=name,
                matched=meta.get("matched"),
                used=meta.get("used"),
                relaxed=tuple(str(r) for r in meta.get("relaxed") or ()),
                thumbnail=_thumbnail(folder, name, side) if name else None,
                not_built=None if is_built(meta) else str(meta.get("reason")),
            )
        )
    return sorted(items, key=lambda item: item.spec)
