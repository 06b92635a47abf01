"""The report's building blocks: matplotlib figures, intervals, number formats, face_statistics rows."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import polars as pl
from PIL import Image

from facestats_core.report.figures import Bar, BarGroup, BarRow, group_accuracy, hbars, heatmap, histogram
from facestats_core.report.render import fmt_interval, fmt_num, fmt_pct, fmt_signed
from facestats_core.report.stat_rows import describe_correction, read_statistics


def _size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.size


ROWS = (
    BarRow("a", (Bar(0.4, 0.3, 0.5), Bar(0.45, 0.35, 0.6), Bar(0.42))),
    BarRow("b", (Bar(0.6, 0.5, 0.7), None, Bar(math.nan)), marked=True),
)


def test_every_figure_is_an_800_px_png_without_pyplot() -> None:
    shares = hbars(
        "s",
        [BarGroup(None, ROWS)],
        ("obs", "corr", "true"),
        x_label="share",
        percent=True,
        marked_label="unstable",
    )
    grouped = group_accuracy("acc", [BarGroup("true gender", ROWS[:1]), BarGroup("true x", ROWS[1:])], 0.5)
    points = hbars(
        "m",
        [BarGroup("by g", ROWS)],
        ("mean",),
        x_label="score",
        x_min=None,
        points=True,
        reference=0.5,
        reference_label="overall",
        value_labels=True,
        marked_label="unstable",
    )
    counts = heatmap("h", ["r0", "r1"], ["c0", "c1", "c2"], [[1, 2, 3], [0, 0, 9]], x_label="x", y_label="y")
    for png in (shares, grouped, points, counts, histogram("h", [1.0, 2.0, 2.5, math.nan], x_label="x")):
        width, height = _size(png)
        assert width == 800 and 150 < height < 1200
    # taller with more rows; empty inputs draw empty axes rather than fail
    more = hbars("s", [BarGroup(None, ROWS * 4)], ("obs",), x_label="share")
    assert _size(more)[1] > _size(hbars("s", [BarGroup(None, ROWS)], ("obs",), x_label="share"))[1]
    assert _size(histogram("empty", [], x_label="x"))[0] == 800
    assert _size(hbars("empty", [], ("a",), x_label="x"))[0] == 800
    # pyplot (global state, a GUI backend) is never imported: checked in a fresh interpreter, since
    # another test's library (QuaPy) may have imported it into this one
    drawn = subprocess.run(
        [sys.executable, "-c", "import sys; from facestats_core.report.figures import Bar, BarGroup, BarRow, "
         "hbars, histogram; hbars('s', [BarGroup(None, [BarRow('a', (Bar(0.5),))])], ('obs',), x_label='x'); "
         "histogram('h', [1.0, 2.0], x_label='x'); print('matplotlib.pyplot' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert drawn.stdout.strip() == "False"


def test_figures_are_byte_reproducible() -> None:
    assert hbars("s", [BarGroup(None, ROWS)], ("a", "b", "c"), x_label="x") == hbars(
        "s", [BarGroup(None, ROWS)], ("a", "b", "c"), x_label="x"
    )


def test_number_formats() -> None:
    assert fmt_num(12) == "12" and fmt_num(0.12345) == "0.123" and fmt_num(None) == "–"
    assert fmt_num(math.nan) == "–" and fmt_num("x") == "x"
    assert fmt_pct(0.4123) == "41.2%" and fmt_pct(None) == "–"
    assert (
        fmt_interval(0.412, 0.53, percent=True) == "41.2–53.0%" and fmt_interval(2.75, 3.42) == "2.750–3.420"
    )
    assert fmt_interval(None, 0.5) == "–"
    assert fmt_signed(0.028) == "+0.028" and fmt_signed(-0.1) == "-0.100"


def test_statistics_rows_and_corrections() -> None:
    frame = pl.DataFrame(
        {
            "statistic": ["share"],
            "attribute": ["gender"],
            "slice_key": ["all"],
            "slice_value": ["all"],
            "value": ["male"],
            "n": [10],
            "estimate": [float("nan")],
            "unstable": [None],
        }
    )
    (row,) = read_statistics(frame)
    assert row.estimate is None and row.unstable is False and row.corrected is None and row.n == 10
    assert describe_correction("none: no held-out confusion matrix") == (
        "no correction for classifier errors: no held-out confusion matrix"
    )
    assert describe_correction("emq_bcts").startswith("corrected for classifier errors")
    assert describe_correction("other_method") == "corrected by other_method"
