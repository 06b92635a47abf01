"""The report's charts, drawn with matplotlib's object API (Agg), each returned as PNG bytes.

* :func:`hbars`: grouped horizontal bars with 95 % error bars (observed vs corrected vs true
  share, accuracy vs baseline, mean score by group).
* :func:`group_accuracy`: held-out accuracy per group with error bars and the overall line.
* :func:`histogram`: a distribution with its mean.
* :func:`heatmap`: a count matrix (cluster × predicted ethnicity) with the counts written in.

No pyplot and no global state: every chart is a fresh :class:`matplotlib.figure.Figure` on a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, and matplotlib is imported inside the
functions, so importing this module (or the Dagster definitions) does not import matplotlib.
Every chart is :data:`WIDTH_IN` × :data:`DPI` pixels wide; its height grows with its rows.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
"""Pixels per inch of every PNG."""
WIDTH_IN = 8.0
"""Width of every chart in inches (800 px)."""
PALETTE: tuple[str, ...] = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#e15759")
"""Series colours, in series order (Tableau 10)."""
INK = "#333333"
GRID = "#e6e6e6"
TITLE_SIZE = 12
LABEL_SIZE = 10
TICK_SIZE = 9
MARK_HATCH = "///"
"""Hatch of the bars of a marked (e.g. unstable) row."""


@dataclass(frozen=True)
class Bar:
    """One bar: its value and, when known, the ends of its 95 % interval."""

    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class BarRow:
    """One category: a label and one :class:`Bar` (or None) per series; ``marked`` rows are hatched."""

    label: str
    bars: tuple[Bar | None, ...]
    marked: bool = False


@dataclass(frozen=True)
class BarGroup:
    """Rows drawn together under an optional bold heading."""

    label: str | None
    rows: tuple[BarRow, ...]


def _real(value: float | None) -> float | None:
    """``value`` as a float when it is a finite number, else None."""
    return float(value) if value is not None and math.isfinite(value) else None


def _figure(height_in: float) -> Figure:
    """A fresh figure of the report's width, laid out by constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained", facecolor="white")


def _png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes (Agg canvas; no software/version chunk, so the bytes are reproducible)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _style(
    ax: Axes,
    title: str,
    x_label: str,
    y_label: str | None = None,
    grid_axis: Literal["x", "y", "both", "none"] = "x",
) -> None:
    """The report's look: title, labelled axes, light grid behind the data, no top/right spines."""
    ax.set_title(title, fontsize=TITLE_SIZE, color=INK, loc="left", pad=8)
    ax.set_xlabel(x_label, fontsize=LABEL_SIZE, color=INK)
    if y_label:
        ax.set_ylabel(y_label, fontsize=LABEL_SIZE, color=INK)
    ax.tick_params(labelsize=TICK_SIZE, colors=INK)
    if grid_axis != "none":
        ax.grid(axis=grid_axis, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _layout(
    groups: Sequence[BarGroup],
) -> tuple[list[float], list[str], list[bool], list[tuple[float, BarRow]]]:
    """Y positions (top = 0) of every heading and row: ticks, tick labels, bold flags, placed rows."""
    ticks: list[float] = []
    labels: list[str] = []
    bold: list[bool] = []
    placed: list[tuple[float, BarRow]] = []
    y = 0.0
    for index, group in enumerate(groups):
        if index:
            y += 0.4
        if group.label:
            ticks.append(y)
            labels.append(group.label)
            bold.append(True)
            y += 1
        for row in group.rows:
            ticks.append(y)
            labels.append(row.label + (" *" if row.marked else ""))
            bold.append(False)
            placed.append((y, row))
            y += 1
    return ticks, labels, bold, placed


def _x_limits(
    placed: Sequence[tuple[float, BarRow]],
    x_min: float | None,
    x_max: float | None,
    reference: float | None,
    room: float,
) -> tuple[float, float]:
    """Axis range: from ``x_min`` (None: a little below the smallest value or interval end) to
    ``x_max`` (None: a little past the largest); ``room`` is the extra share of the span kept on
    the right for value labels."""
    candidates = [reference]
    for _, row in placed:
        for bar in row.bars:
            if bar is not None:
                candidates += [bar.value, bar.low, bar.high]
    ends = [v for v in map(_real, candidates) if v is not None]
    low_end, high_end = min(ends, default=0.0), max(ends, default=1.0)
    span = max(high_end - (x_min if x_min is not None else low_end), 1e-9)
    left = x_min if x_min is not None else low_end - 0.06 * span
    right = x_max if x_max is not None else high_end + (0.06 + room) * span
    return left, right


def _measure(bar: Bar | None) -> tuple[float, tuple[float, float] | None] | None:
    """A bar's value and its error bar lengths ``(below, above)`` (None without a full interval);
    None when there is no finite value."""
    value = _real(bar.value) if bar is not None else None
    if bar is None or value is None:
        return None
    low, high = _real(bar.low), _real(bar.high)
    if low is None or high is None:
        return value, None
    return value, (max(value - low, 0.0), max(high - value, 0.0))


def _draw_series(
    ax: Axes,
    placed: Sequence[tuple[float, BarRow]],
    index: int,
    n_series: int,
    name: str,
    x_min: float,
) -> list[tuple[float, float, float]]:
    """Bars and error bars of series ``index``; returns ``(y, value, right end)`` of each bar drawn."""
    thickness = 0.8 / n_series
    offset = (index - (n_series - 1) / 2) * thickness
    ys: list[float] = []
    values: list[float] = []
    marked: list[bool] = []
    errors: list[tuple[float, float, float, float]] = []  # y, value, below, above
    for y, row in placed:
        measured = _measure(row.bars[index] if index < len(row.bars) else None)
        if measured is None:
            continue
        value, error = measured
        ys.append(y + offset)
        values.append(value)
        marked.append(row.marked)
        if error is not None:
            errors.append((y + offset, value, *error))
    color = PALETTE[index % len(PALETTE)]
    container = ax.barh(
        ys, [v - x_min for v in values], left=x_min, height=thickness * 0.9, color=color, label=name
    )
    for patch, is_marked in zip(container.patches, marked, strict=True):
        if is_marked:
            patch.set_hatch(MARK_HATCH)
            patch.set_edgecolor("white")
            patch.set_linewidth(0)
    if errors:
        ax.errorbar(
            [e[1] for e in errors],
            [e[0] for e in errors],
            xerr=[[e[2] for e in errors], [e[3] for e in errors]],
            fmt="none",
            ecolor=INK,
            elinewidth=1.1,
            capsize=3,
            zorder=3,
        )
    ends = {y: value + above for y, value, _, above in errors}
    return [(y, v, ends.get(y, v)) for y, v in zip(ys, values, strict=True)]


def _draw_points(
    ax: Axes, placed: Sequence[tuple[float, BarRow]], name: str
) -> list[tuple[float, float, float]]:
    """The first series as dots with horizontal 95 % whiskers (hollow dots for marked rows);
    returns ``(y, value, right end)`` of each dot drawn."""
    drawn: list[tuple[float, float, float]] = []
    color = PALETTE[0]
    for y, row in placed:
        measured = _measure(row.bars[0] if row.bars else None)
        if measured is None:
            continue
        value, error = measured
        ax.errorbar(
            [value],
            [y],
            xerr=[[error[0]], [error[1]]] if error is not None else None,
            fmt="o",
            color=color,
            ecolor=color,
            elinewidth=1.6,
            capsize=4,
            markersize=7,
            markerfacecolor="white" if row.marked else color,
            markeredgewidth=1.5,
            label=None if drawn else name,
            zorder=3,
        )
        drawn.append((y, value, value + error[1] if error is not None else value))
    return drawn


def _value_labels(
    ax: Axes,
    drawn: Sequence[tuple[float, float, float]],
    limits: tuple[float, float],
    percent: bool,
    inside: bool,
) -> None:
    """The value of each bar: ``inside`` its base when the bar is long enough, else past its interval."""
    span = limits[1] - limits[0]
    for y, value, end in drawn:
        text = f"{value:.0%}" if percent else f"{value:.2f}"
        if inside and value - limits[0] > 0.16 * span:
            ax.text(
                limits[0] + 0.01 * span,
                y,
                text,
                va="center",
                ha="left",
                fontsize=TICK_SIZE,
                color="white",
                fontweight="bold",
                zorder=4,
            )
        elif end + 0.1 * span < limits[1]:
            ax.text(
                end + 0.01 * span,
                y,
                text,
                va="center",
                ha="left",
                fontsize=TICK_SIZE,
                color=INK,
                zorder=4,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.85},
            )


def hbars(
    title: str,
    groups: Sequence[BarGroup],
    series: Sequence[str],
    *,
    x_label: str,
    percent: bool = False,
    x_min: float | None = 0.0,
    x_max: float | None = None,
    reference: float | None = None,
    reference_label: str | None = None,
    value_labels: bool = False,
    marked_label: str | None = None,
    points: bool = False,
) -> bytes:
    """Grouped horizontal bars, one colour per series, first row on top; a bar with an interval
    gets an error bar. ``percent`` formats the x axis as percentages of 1; ``reference`` draws a
    dashed vertical line; marked rows are hatched and ``*``-suffixed (``marked_label`` in the legend).
    ``points`` draws the first series as dots with whiskers instead (for means, where a bar's
    length from an arbitrary origin means nothing); ``x_min=None`` zooms the axis on the data."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    ticks, labels, bold, placed = _layout(groups)
    n_series = 1 if points else max(len(series), 1)
    slot_in = 0.2 + 0.14 * n_series
    fig = _figure(1.5 + slot_in * max(len(ticks), 1))
    ax = fig.add_subplot()
    _style(ax, title, x_label)
    labelled = value_labels and n_series == 1
    limits = _x_limits(placed, x_min, x_max, reference, room=0.08 if labelled and points else 0.0)
    drawn: list[tuple[float, float, float]] = []
    if points:
        drawn = _draw_points(ax, placed, series[0] if series else "")
    else:
        for index, name in enumerate(series):
            drawn += _draw_series(ax, placed, index, len(series), name, limits[0])
    if (line := _real(reference)) is not None:
        ax.axvline(
            line,
            color=INK,
            linestyle="--",
            linewidth=1.2,
            label=reference_label,
            zorder=2,
        )
    if labelled:
        _value_labels(ax, drawn, limits, percent, inside=not points)
    ax.set_xlim(*limits)
    ax.set_yticks(ticks, labels)
    for label, is_bold in zip(ax.get_yticklabels(), bold, strict=True):
        label.set_fontweight("bold" if is_bold else "normal")
    ax.set_ylim(max(ticks, default=0.0) + 0.6, -0.6)
    ax.tick_params(axis="y", length=0)
    if percent:
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    if not placed:
        ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center", color=INK)
    handles, names = ax.get_legend_handles_labels()
    if marked_label and any(row.marked for _, row in placed):
        handles.append(
            Line2D([], [], marker="o", linestyle="none", markerfacecolor="white", color=PALETTE[0])
            if points
            else Patch(facecolor="#bbbbbb", hatch=MARK_HATCH, edgecolor="white")
        )
        names.append(marked_label)
    if handles and (len(series) > 1 or len(handles) > len(series)):
        fig.legend(
            handles,
            names,
            loc="outside lower center",
            ncols=min(len(handles), 4),
            fontsize=TICK_SIZE,
            frameon=False,
        )
    return _png(fig)


def group_accuracy(title: str, groups: Sequence[BarGroup], overall: float | None) -> bytes:
    """Held-out accuracy per group (one bar per row, 95 % error bars) against the overall accuracy."""
    return hbars(
        title,
        groups,
        ("accuracy",),
        x_label="held-out accuracy (95 % Wilson interval)",
        percent=True,
        x_max=1.0,
        reference=overall,
        reference_label=f"overall {overall:.1%}" if overall is not None else None,
        value_labels=True,
    )


def histogram(
    title: str, values: Sequence[float], *, bins: int | Sequence[float] = 20, x_label: str, y_label: str = "faces"
) -> bytes:
    """A histogram of the finite ``values`` with a dashed line at their mean (empty axes without values)."""
    finite = [v for v in map(_real, values) if v is not None]
    fig = _figure(3.4)
    ax = fig.add_subplot()
    _style(ax, title, x_label, y_label, grid_axis="y")
    if finite:
        ax.hist(finite, bins=bins, color=PALETTE[0], edgecolor="white", linewidth=0.6)
        mean = sum(finite) / len(finite)
        ax.axvline(
            mean,
            color=PALETTE[1],
            linestyle="--",
            linewidth=1.5,
            label=f"mean {mean:.2f} (n = {len(finite)})",
        )
        ax.legend(loc="upper right", fontsize=TICK_SIZE, frameon=False)
    else:
        ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center", color=INK)
    return _png(fig)


def heatmap(
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    matrix: Sequence[Sequence[float]],
    *,
    x_label: str,
    y_label: str,
    value_label: str = "images",
) -> bytes:
    """A count matrix as coloured cells with each count written in (white on dark cells)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    data = np.asarray(matrix, dtype=float).reshape(len(row_labels), len(col_labels))
    fig = _figure(max(2.8, 1.9 + 0.38 * len(row_labels)))
    ax = fig.add_subplot()
    _style(ax, title, x_label, y_label, grid_axis="none")
    vmax = float(data.max()) if data.size and data.max() > 0 else 1.0
    image = ax.imshow(data, cmap="Blues", vmin=0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    for (i, j), value in np.ndenumerate(data):
        ax.text(
            j,
            i,
            f"{value:.0f}",
            ha="center",
            va="center",
            fontsize=TICK_SIZE,
            color="white" if value > 0.55 * vmax else INK,
        )
    colorbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, ticks=MaxNLocator(nbins=5, integer=True))
    colorbar.set_label(value_label, fontsize=LABEL_SIZE, color=INK)
    colorbar.ax.tick_params(labelsize=TICK_SIZE)
    return _png(fig)
