"""Contact sheet: the built composites tiled in one picture with their captions.

:func:`tile_contact_sheet` draws the grid; :func:`build_contact_sheet` reads the
composites of a list of specs from the composites folder and writes
``contact_sheet.png`` there atomically.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from facestats_core.composites.build import CompositeError, composite_files
from facestats_core.composites.filter_spec import FilterSpecError, parse_spec
from facestats_core.images.preprocess import square_resize
from facestats_core.io.atomic import atomic_write_bytes

CONTACT_SHEET_NAME = "contact_sheet.png"
SHEET_COLUMNS = 4
SHEET_TILE = 192


@dataclass(frozen=True)
class ContactSheetResult:
    """What :func:`build_contact_sheet` wrote: ``count`` composites tiled into ``path``;
    ``missing`` are the spec keys without a (complete) composite, in the order given."""

    count: int
    missing: tuple[str, ...]
    path: Any


# --------------------------------------------------------------------------- tiling


def _fit_caption(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int, max_lines: int) -> list[str]:
    """Greedy-wrap ``text`` (breaking at ',', ' ' or anywhere) into at most ``max_lines`` lines."""
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        cut = len(rest)
        while cut > 1 and draw.textlength(rest[:cut], font=font) > width:
            cut -= 1
        if cut < len(rest):
            soft = max(rest.rfind(",", 0, cut), rest.rfind(" ", 0, cut))
            if soft > 0:
                cut = soft + 1
        lines.append(rest[:cut].strip())
        rest = rest[cut:]
    if rest and lines:
        last = lines[-1]
        while last and draw.textlength(last + "...", font=font) > width:
            last = last[:-1]
        lines[-1] = last + "..."
    return lines


def tile_contact_sheet(
    items: list[tuple[Image.Image, str]],
    columns: int = 4,
    tile: int = 192,
    caption_lines: int = 2,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Grid of ``tile``-px images, each with its caption below (PIL default font)."""
    if columns < 1 or tile < 16:
        raise ValueError(f"columns must be >= 1 and tile >= 16, got {columns}, {tile}")
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), "Ag,|", font=font)
    line_h = int(y1 - y0) + 3
    pad = 4
    cell_w, cell_h = tile + 2 * pad, tile + 2 * pad + caption_lines * line_h
    rows = max(1, -(-len(items) // columns))
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), background)
    draw = ImageDraw.Draw(sheet)
    for index, (image, caption) in enumerate(items):
        r, c = divmod(index, columns)
        left, top = c * cell_w + pad, r * cell_h + pad
        thumb = image.convert("RGB")
        if thumb.size != (tile, tile):
            thumb = square_resize(thumb, tile)
        sheet.paste(thumb, (left, top))
        for k, line in enumerate(_fit_caption(draw, caption, font, tile, caption_lines)):
            draw.text((left, top + tile + 2 + k * line_h - y0), line, fill=(0, 0, 0), font=font)
    return sheet


# --------------------------------------------------------------------------- building


def _read_composite(composites_dir: Any, key: str, fmt: str) -> tuple[Image.Image, str] | None:
    """The picture of spec ``key`` and its caption (``<spec> (n=<used>)``), or None when the
    key is not a valid spec or its image or json is not there."""
    try:
        image_path, json_path = composite_files(composites_dir, parse_spec(key), fmt)
    except (FilterSpecError, CompositeError):
        return None
    if not json_path.exists() or not image_path.exists():
        return None
    with json_path.open("r") as fh:
        meta = json.load(fh)
    with image_path.open("rb") as fh:
        picture = Image.open(io.BytesIO(fh.read())).convert("RGB")
    return picture, f"{meta['spec']} (n={meta['used']})"


def build_contact_sheet(
    composites_dir: Any, spec_keys: Iterable[str], fmt: str = "png"
) -> ContactSheetResult:
    """Tile the composites of ``spec_keys`` (in that order) into ``<composites_dir>/contact_sheet.png``,
    written atomically. ``fmt`` is the composites' image format (``png`` or ``jpg``).

    Raises :class:`~facestats_core.composites.build.CompositeError` when none of them is built.
    """
    keys = list(spec_keys)
    items: list[tuple[Image.Image, str]] = []
    missing: list[str] = []
    for key in keys:
        item = _read_composite(composites_dir, key, fmt)
        if item is None:
            missing.append(key)
        else:
            items.append(item)
    if not items:
        raise CompositeError(
            f"No composites built yet for the {len(keys)} registered specs; materialize `composite` first."
        )
    sheet = tile_contact_sheet(items, columns=SHEET_COLUMNS, tile=SHEET_TILE)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    target = composites_dir / CONTACT_SHEET_NAME
    atomic_write_bytes(target, buffer.getvalue())
    return ContactSheetResult(count=len(items), missing=tuple(missing), path=target)
