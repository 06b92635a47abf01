"""Report section: the gallery of built composites (thumbnail, spec, faces used of matched)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from facestats_core.report.inputs import CompositeItem
from facestats_core.report.sections.common import OK, Chart, Section

KEY = "composites"
METHODS_PNG = "composite_methods.png"
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
    methods: Chart | None = None
    """The same faces averaged by none | eyes | warp, side by side."""
    methods_caption: str = ""


def _card(item: CompositeItem) -> Card:
    uri = (
        "data:image/jpeg;base64," + base64.b64encode(item.thumbnail).decode("ascii")
        if item.thumbnail
        else None
    )
    return Card(item.spec, item.file, uri, item.used, item.matched, item.relaxed, item.not_built)


def composites_section(composites: Sequence[CompositeItem],
                       methods: tuple[bytes, dict[str, float]] | None = None) -> Section:
    """Thumbnails of the composites with their specs and face counts, and (``methods``) one set of
    faces averaged by each method with its face-hull sharpness."""
    chart, caption = None, ""
    if methods is not None:
        png, numbers = methods
        chart = Chart(METHODS_PNG, "the same faces by none, eyes and warp", png)
        caption = (f"{numbers['faces']:.0f} faces with 68 landmarks averaged three ways; sharpness (variance of the "
                   f"Laplacian inside the face hull): none {numbers['none']:.0f}, eyes {numbers['eyes']:.0f}, "
                   f"warp {numbers['warp']:.0f}")
    charts = (chart,) if chart is not None else ()
    if not composites:
        return Section(KEY, TITLE, "no composites", CompositesView(NO_COMPOSITES_NOTE, (), chart, caption), charts)
    view = CompositesView(None, tuple(_card(item) for item in composites), chart, caption)
    return Section(KEY, TITLE, OK, view, charts)
