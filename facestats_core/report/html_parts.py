"""HTML building blocks of the report: escaping, numbers, tables, inline images, notes."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

MISSING_NUMBER = "–"
"""How a missing or non-finite number is shown."""


def esc(value: Any) -> str:
    """``str(value)`` escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def num(value: Any, digits: int = 3) -> str:
    """A number for a table cell: ints as they are, floats with ``digits`` decimals,
    None/NaN/inf as a dash, anything else escaped text."""
    if value is None:
        return MISSING_NUMBER
    if isinstance(value, bool | int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if not math.isfinite(number):
        return MISSING_NUMBER
    return f"{number:.{digits}f}"


def _cell(tag: str, index: int, content: str, numeric_from: int) -> str:
    return f'<{tag} class="{"num" if index >= numeric_from else ""}">{content}</{tag}>'


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    """A table; ``head`` is escaped, ``rows`` cells are HTML already. Columns from
    ``numeric_from`` on are right-aligned."""
    out = ["<table><thead><tr>"]
    out += [_cell("th", i, esc(h), numeric_from) for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = "".join(_cell("td", i, cell, numeric_from) for i, cell in enumerate(row))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def img(name: str, data: bytes, alt: str, mime: str = "image/png", css_class: str = "chart") -> str:
    """An ``<img>`` with ``data`` inlined as base64 (``name`` becomes its title)."""
    encoded = base64.b64encode(data).decode()
    return (
        f'<img class="{css_class}" src="data:{mime};base64,{encoded}" '
        f'alt="{esc(alt)}" title="{esc(name)}">'
    )


def note(text: str) -> str:
    """A paragraph saying what is missing (styled as ``.missing``)."""
    return f'<p class="missing">{esc(text)}</p>'
