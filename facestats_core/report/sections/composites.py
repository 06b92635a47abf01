"""Report section: the gallery of built composites."""

from __future__ import annotations

from collections.abc import Sequence

from facestats_core.report.html_parts import esc, img, note, num
from facestats_core.report.inputs import CompositeItem
from facestats_core.report.sections.common import OK, Section

KEY = "composites"


def _card(item: CompositeItem) -> str:
    """One composite: its thumbnail (or a placeholder), spec and face counts."""
    picture = (
        img(item.file, item.thumbnail, item.spec, mime="image/jpeg", css_class="thumb")
        if item.thumbnail
        else '<div class="thumb missing">image missing</div>'
    )
    relaxed = f"<br>relaxed: {esc(', '.join(item.relaxed))}" if item.relaxed else ""
    return (
        f"<figure>{picture}<figcaption><code>{esc(item.spec)}</code><br>"
        f"{num(item.used)} faces used of {num(item.matched)} matched{relaxed}</figcaption></figure>"
    )


def composites_section(composites: Sequence[CompositeItem]) -> Section:
    """Thumbnails of the composites with their specs and face counts."""
    head = "<h2 id=composites>Composite faces</h2>"
    if not composites:
        return Section(
            KEY,
            head
            + note(
                "No composites built yet: add filter specs "
                "(config/composites.yaml or `facestats composites add`) and materialize composite."
            ),
            "no composites",
        )
    cards = "".join(_card(item) for item in composites)
    return Section(KEY, head + '<div class="gallery">' + cards + "</div>", OK)
