"""Small PNG charts drawn with PIL (no matplotlib): horizontal bars, histograms, heatmaps.

Each function returns PNG bytes. They are deliberately plain: labels on the
left, values at the end of the bars, a light grid, a legend when there is more
than one series. Used by :mod:`facestats_core.report.sections`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
WIDTH = 760
INK = "#222222"
GRID = "#dddddd"
MUTED = "#777777"


def font(size: int = 13) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in font at ``size`` (a TrueType font when FreeType is available)."""
    return ImageFont.load_default(size=size)


def _text_size(
    draw: ImageDraw.ImageDraw, text: str, fnt: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt)
    return int(right - left), int(bottom - top)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def nice_ticks(vmax: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least ``vmax`` (about ``count`` of them; whole numbers
    only when ``integer``, e.g. for counts)."""
    if not math.isfinite(vmax) or vmax <= 0:
        return [0.0, 1.0]
    raw = vmax / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = float(max(1, math.ceil(step)))
    ticks = [0.0]
    while ticks[-1] < vmax - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt_tick(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.2g}"


@dataclass
class BarRow:
    """One row of a horizontal bar chart: a label and one value per series."""

    label: str
    values: Sequence[float]
    note: str = ""  # text after the bar (default: the formatted total)


@dataclass
class BarGroup:
    """Rows under an optional heading."""

    heading: str | None
    rows: list[BarRow] = field(default_factory=list)


def hbar_chart(
    title: str,
    groups: Sequence[BarGroup],
    series: Sequence[str] = ("",),
    *,
    stacked: bool = True,
    x_max: float | None = None,
    x_min: float = 0.0,
    x_label: str = "",
    value_format: str = "{:g}",
    reference: float | None = None,
    reference_label: str = "",
) -> bytes:
    """Horizontal bars, grouped under headings; several series are stacked or side by side.

    ``reference`` draws a dashed vertical line (e.g. an overall accuracy) labelled ``reference_label``.
    Bars start at ``x_min`` (0 unless the scale has another natural bottom, e.g. a 1-5 rating).
    """
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    f_title, f_text, f_small = font(16), font(13), font(11)
    labels = [row.label for group in groups for row in group.rows] or [""]
    label_w = min(300, max(_text_size(probe, label, f_text)[0] for label in labels) + 14)
    row_h = 22 if stacked or len(series) == 1 else 10 + 9 * len(series)
    heading_h = 24
    legend = len(series) > 1 or (reference is not None and reference_label)
    top = 36 + (22 if legend else 0)
    n_rows = sum(len(g.rows) for g in groups)
    n_headings = sum(1 for g in groups if g.heading)
    height = top + n_rows * row_h + n_headings * heading_h + 44 + (14 if x_label else 0)
    totals = [
        (sum(row.values) if stacked else max(row.values, default=0.0)) for g in groups for row in g.rows
    ] or [0.0]
    vmax = x_max if x_max is not None else max(max(totals), reference or 0.0)
    if x_max is None:
        counts = all(float(v).is_integer() for g in groups for row in g.rows for v in row.values)
        ticks = [x_min + t for t in nice_ticks(vmax - x_min, integer=counts)]
    else:
        ticks = [x_min + (x_max - x_min) * i / 5 for i in range(6)]
    scale_min, scale_max = ticks[0], ticks[-1]
    span = (scale_max - scale_min) or 1.0
    x0, x1 = label_w, WIDTH - 70
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), title, fill=INK, font=f_title)
    if legend:
        lx = 10
        for index, name in enumerate(series if len(series) > 1 else ()):
            draw.rectangle((lx, 40, lx + 12, 52), fill=PALETTE[index % len(PALETTE)])
            draw.text((lx + 16, 39), name, fill=INK, font=f_text)
            lx += 16 + _text_size(draw, name, f_text)[0] + 18
        if reference is not None and reference_label:
            draw.line((lx, 46, lx + 14, 46), fill=INK, width=2)
            draw.text((lx + 18, 39), reference_label, fill=INK, font=f_text)
    plot_bottom = height - 40 - (14 if x_label else 0)

    def x_of(value: float) -> float:
        return x0 + (x1 - x0) * (max(scale_min, min(value, scale_max)) - scale_min) / span

    def note_at(x: float, y_text: float, text: str) -> None:
        tw, th = _text_size(draw, text, f_small)
        draw.rectangle((x - 1, y_text, x + tw + 2, y_text + th + 4), fill="white")
        draw.text((x, y_text), text, fill=MUTED, font=f_small)

    for tick in ticks:
        x = x_of(tick)
        draw.line((x, top - 4, x, plot_bottom), fill=GRID)
        text = _fmt_tick(tick)
        tw = _text_size(draw, text, f_small)[0]
        draw.text((x - tw / 2, plot_bottom + 4), text, fill=MUTED, font=f_small)
    if x_label:
        tw = _text_size(draw, x_label, f_text)[0]
        draw.text(((x0 + x1) / 2 - tw / 2, plot_bottom + 20), x_label, fill=INK, font=f_text)
    if reference is not None:
        x = x_of(reference)
        for y_dash in range(top - 4, plot_bottom, 8):
            draw.line((x, y_dash, x, min(y_dash + 4, plot_bottom)), fill=INK, width=2)
    y = top
    for group in groups:
        if group.heading:
            draw.text((10, y + 5), group.heading, fill=INK, font=font(14))
            y += heading_h
        for row in group.rows:
            tw, th = _text_size(draw, row.label, f_text)
            draw.text((x0 - 8 - tw, y + (row_h - th) / 2 - 2), row.label, fill=INK, font=f_text)
            if stacked:
                start = 0.0  # stacked segments are lengths from 0 (use x_min only with stacked=False)
                for index, value in enumerate(row.values):
                    if value > 0:
                        draw.rectangle(
                            (x_of(start), y + 3, max(x_of(start + value) - 1, x_of(start)), y + row_h - 4),
                            fill=PALETTE[index % len(PALETTE)],
                        )
                    start += value
                end, total = x_of(start), start
            else:
                bar_h = (row_h - 6) / max(1, len(row.values))
                for index, value in enumerate(row.values):
                    top_y = y + 3 + index * bar_h
                    if value > 0:
                        draw.rectangle(
                            (x0, top_y, max(x_of(value) - 1, x0), top_y + bar_h - 1),
                            fill=PALETTE[index % len(PALETTE)],
                        )
                total = row.values[0] if row.values else 0.0
                end = x_of(max(row.values, default=0.0))
            note_at(end + 5, y + (row_h - th) / 2 - 2, row.note or value_format.format(total))
            y += row_h
    draw.line((x0, top - 4, x0, plot_bottom), fill=INK)
    return _png(image)


def histogram(
    title: str,
    values: Sequence[float],
    bins: int = 20,
    *,
    x_label: str = "",
    value_range: tuple[float, float] | None = None,
) -> bytes:
    """Counts of ``values`` in ``bins`` equal-width bins (vertical bars), with mean and n in the title row."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    lo, hi = value_range if value_range else ((min(finite), max(finite)) if finite else (0.0, 1.0))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts = [0] * bins
    for value in finite:
        index = min(bins - 1, max(0, int((value - lo) / (hi - lo) * bins)))
        counts[index] += 1
    height = 320
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    f_title, f_small, f_text = font(16), font(11), font(13)
    draw.text((10, 8), title, fill=INK, font=f_title)
    if finite:
        mean = sum(finite) / len(finite)
        stats = f"n = {len(finite)}, mean = {mean:.4g}, min = {min(finite):.4g}, max = {max(finite):.4g}"
        draw.text((10, 30), stats, fill=MUTED, font=f_text)
    x0, x1, y0, y1 = 56, WIDTH - 20, 56, height - 56
    ticks = nice_ticks(max(counts) if counts else 1, integer=True)
    cmax = ticks[-1] or 1
    for tick in ticks:
        y = y1 - (y1 - y0) * tick / cmax
        draw.line((x0, y, x1, y), fill=GRID)
        text = _fmt_tick(tick)
        tw, th = _text_size(draw, text, f_small)
        draw.text((x0 - 6 - tw, y - th / 2 - 2), text, fill=MUTED, font=f_small)
    bar_w = (x1 - x0) / bins
    for index, count in enumerate(counts):
        if count:
            left = x0 + index * bar_w
            draw.rectangle((left + 1, y1 - (y1 - y0) * count / cmax, left + bar_w - 1, y1), fill=PALETTE[0])
    stride = max(1, bins // 5)
    decimals = max(0, min(6, 1 - math.floor(math.log10((hi - lo) * stride / bins))))
    for index in range(0, bins + 1, stride):
        x = x0 + index * bar_w
        text = f"{lo + (hi - lo) * index / bins:.{decimals}f}"
        tw = _text_size(draw, text, f_small)[0]
        draw.line((x, y1, x, y1 + 4), fill=INK)
        draw.text((x - tw / 2, y1 + 6), text, fill=MUTED, font=f_small)
    draw.line((x0, y1, x1, y1), fill=INK)
    if x_label:
        tw = _text_size(draw, x_label, f_text)[0]
        draw.text(((x0 + x1) / 2 - tw / 2, y1 + 24), x_label, fill=INK, font=f_text)
    return _png(image)


def _blend(value: float) -> tuple[int, int, int]:
    """White → palette blue for ``value`` in [0, 1]."""
    r, g, b = 0x4E, 0x79, 0xA7
    t = max(0.0, min(1.0, value))
    return (round(255 + (r - 255) * t), round(255 + (g - 255) * t), round(255 + (b - 255) * t))


def heatmap(
    title: str, row_labels: Sequence[str], col_labels: Sequence[str], matrix: Sequence[Sequence[float]]
) -> bytes:
    """A table of counts shaded by value (darker = more), column labels rotated 90°."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    f_title, f_text, f_small = font(16), font(13), font(12)
    cell = 44
    label_w = max([_text_size(probe, label, f_text)[0] for label in row_labels] or [0]) + 16
    head_h = max([_text_size(probe, label, f_small)[0] for label in col_labels] or [0]) + 12
    width = max(WIDTH // 2, label_w + cell * len(col_labels) + 20)
    height = 40 + head_h + cell * len(row_labels) + 16
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), title, fill=INK, font=f_title)
    top = 40 + head_h
    for j, label in enumerate(col_labels):
        tw, th = _text_size(draw, label, f_small)
        tile = Image.new("RGB", (tw + 4, th + 6), "white")
        ImageDraw.Draw(tile).text((2, 0), label, fill=INK, font=f_small)
        rotated = tile.rotate(90, expand=True)
        image.paste(
            rotated, (int(label_w + j * cell + cell / 2 - rotated.width / 2), top - 6 - rotated.height)
        )
    vmax = max([max(row, default=0) for row in matrix] or [0]) or 1
    for i, label in enumerate(row_labels):
        tw, th = _text_size(draw, label, f_text)
        y = top + i * cell
        draw.text((label_w - 8 - tw, y + (cell - th) / 2 - 2), label, fill=INK, font=f_text)
        for j, value in enumerate(matrix[i]):
            x = label_w + j * cell
            shade = float(value) / vmax
            draw.rectangle((x, y, x + cell - 2, y + cell - 2), fill=_blend(shade), outline=GRID)
            text = _fmt_tick(float(value))
            tw, th = _text_size(draw, text, f_small)
            draw.text(
                (x + (cell - 2 - tw) / 2, y + (cell - 2 - th) / 2 - 2),
                text,
                fill="white" if shade > 0.55 else INK,
                font=f_small,
            )
    return _png(image)
