"""Report section: the gallery of built composites (thumbnail, spec, faces used of matched)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from facestats_core.report.inputs import CompositeItem
from facestats_core.report.sections.common import OK, Section

KEY = "composites"
TITLE = "Composite faces"
NO_COMPOSITES_NOTE = (
    "No composites built yet: add filter specs (config/composites.yaml or `facestats composites add`) "
    "and materialize composite."
)


@dataclass(frozen=True)
class Card:
    spec: str
    file: str
    thumbnail_uri: str | None
    """The JPEG thumbnail as a ``data:`` URI (None: the image is missing or unreadable)."""
    used: int | None
    matched: int | None
    relaxed: tuple[str, ...]
    not_built: str | None = None


@dataclass(frozen=True)
class CompositesView:
    note: str | None
    cards: tuple[Card, ...]


def _card(item: CompositeItem) -> Card:
    uri = (
        "data:image/jpeg;base64," + base64.b64encode(item.thumbnail).decode("ascii")
        if item.thumbnail
        else None
    )
    return Card(item.spec, item.file, uri, item.used, item.matched, item.relaxed, item.not_built)


def composites_section(composites: Sequence[CompositeItem]) -> Section:
    """Thumbnails of the composites with their specs and face counts."""
    if not composites:
        return Section(KEY, TITLE, "no composites", CompositesView(NO_COMPOSITES_NOTE, ()))
    return Section(KEY, TITLE, OK, CompositesView(None, tuple(_card(item) for item in composites)))
