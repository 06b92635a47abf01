"""Report section: the attractiveness regressor's metrics, the score distribution, and the mean
score per group with 95 % intervals.

Means and intervals come from the ``mean_score`` rows of face_statistics (bootstrap intervals);
without them they are computed from the master table (bootstrap intervals, computed here).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from facestats_core.attractiveness.evaluation import MODEL_NAMES, Evaluation
from facestats_core.labels.ratings import SCUT_RATED_ETHNICITIES
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.report.figures import Bar, BarGroup, BarRow, hbars, histogram
from facestats_core.report.sections.common import (
    NONE_LABEL,
    OK,
    Chart,
    Section,
    SliceTable,
    order_keys,
    order_values,
    slice_tables,
)
from facestats_core.report.stat_rows import ALL, MEAN_SCORE, StatRow, select
from facestats_core.statistics.intervals import bootstrap_mean_interval, wilson_interval

KEY = "attractiveness"
TITLE = "Attractiveness"
MODELS = MODEL_NAMES
HISTOGRAM_PNG = "attractiveness_histogram.png"
BY_GROUP_PNG = "attractiveness_by_group.png"
SCORE = "attractiveness_raw"
GROUPINGS = (*ATTRIBUTES, "cluster")
"""Master columns the mean score is computed by when there is no face_statistics table."""
NO_SCORES = "no attractiveness scores"
NO_SCORES_NOTE = (
    "No attractiveness scores in the master table: the ratings are not configured "
    "(FACESTATS_RATINGS) or attractiveness_scores was not materialized before master_metadata."
)
NO_REGRESSOR_NOTE = (
    "No attractiveness regressor (models/attractiveness_regressor.json): no ratings configured "
    "(FACESTATS_RATINGS) or attractiveness_regressor not materialized."
)
BOOTSTRAP_NOTE = "Means from face_statistics; intervals: 95 % bootstrap."
NORMAL_NOTE = (
    "No face_statistics mean scores: means computed from the master table; intervals: "
    "95 % bootstrap (computed here)."
)


@dataclass(frozen=True)
class AttractivenessView:
    regressor: Evaluation | None
    regressor_note: str | None
    scores_note: str | None
    histogram: Chart | None
    by_group: Chart | None
    means: tuple[StatRow, ...]
    means_have_notes: bool
    interval_note: str | None
    slices: tuple[SliceTable, ...]
    out_of_domain: str | None
    """How many scored faces lie outside the rated data set's ethnicities (None: not known)."""
    models: tuple[str, ...] = MODELS
    """The regressor's tables' rows: the MLP and its baselines (attributes of ``HeldOutMetrics``)."""


def master_means(scored: pl.DataFrame) -> list[StatRow]:
    """Mean score overall and per value of every grouping column of ``scored``, normal intervals."""
    rows = [_mean_row(ALL, ALL, scored[SCORE].to_list())]
    for grouping in GROUPINGS:
        if grouping not in scored.columns:
            continue
        keyed = scored.select(pl.col(grouping).cast(pl.String).fill_null(NONE_LABEL).alias("g"), SCORE)
        for group, frame in keyed.group_by("g"):
            rows.append(_mean_row(grouping, str(group[0]), frame[SCORE].to_list()))
    return rows


def _mean_row(grouping: str, group: str, values: list[float | None]) -> StatRow:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    mean, low, high = bootstrap_mean_interval(finite)
    interval = (low, high) if len(finite) > 1 else (None, None)
    return StatRow(
        MEAN_SCORE,
        grouping,
        ALL,
        ALL,
        group,
        len(finite),
        mean if math.isfinite(mean) else None,
        low=interval[0],
        high=interval[1],
    )


def _ordered_means(rows: list[StatRow]) -> list[StatRow]:
    """Overall first, then each grouping in reading order, each in its value order."""
    out = []
    for grouping in order_keys([r.attribute for r in rows]):
        picked = {r.value: r for r in rows if r.attribute == grouping}
        out += [picked[v] for v in order_values(grouping, list(picked))]
    return out


def _by_group_chart(means: list[StatRow]) -> Chart:
    """Mean score per group with its interval, one block per grouping, the overall mean dashed."""
    overall = next((r.estimate for r in means if r.attribute == ALL), None)
    groups = []
    for grouping in order_keys([r.attribute for r in means if r.attribute != ALL]):
        rows = tuple(
            BarRow(f"{r.value} (n={r.n})", (Bar(r.estimate, r.low, r.high),), marked=r.unstable)
            for r in means
            if r.attribute == grouping
        )
        groups.append(BarGroup(f"by {grouping}", rows))
    png = hbars(
        "Mean attractiveness score by group",
        groups,
        ("mean score",),
        x_label="mean predicted score (whiskers: 95 % interval)",
        x_min=None,
        reference=overall,
        reference_label=f"overall mean {overall:.2f}" if overall is not None else None,
        value_labels=True,
        marked_label="unstable",
        points=True,
    )
    return Chart(BY_GROUP_PNG, "mean score by group", png)


def _mean_slice_title(grouping: str) -> Callable[[str], str]:
    """The title of a slice table of the mean score by ``grouping``, given the slice key."""
    return lambda key: f"mean score by {grouping} within each {key}"


def _mean_slices(rows: list[StatRow]) -> list[SliceTable]:
    """Compact tables of the mean score per group within every other slice (one per grouping × slice)."""
    tables: list[SliceTable] = []
    for grouping in order_keys([r.attribute for r in rows if r.attribute != ALL]):
        picked = [r for r in rows if r.attribute == grouping]
        tables += slice_tables(picked, grouping, _mean_slice_title(grouping), percent=False)
    return tables


def out_of_domain_note(scored: pl.DataFrame) -> str | None:
    """The share of scored faces whose final ethnicity the SCUT-FBP5500 raters never rated, with
    its Wilson interval; None without scores or ethnicities."""
    if "ethnicity" not in scored.columns:
        return None
    known = scored.filter(pl.col("ethnicity").is_not_null())
    if not known.height:
        return None
    outside = int((~known["ethnicity"].is_in(list(SCUT_RATED_ETHNICITIES))).sum())
    low, high = wilson_interval(outside, known.height)
    return (
        f"Out of domain: {outside} of {known.height} scored faces ({outside / known.height:.1%}, 95 % Wilson "
        f"{low:.1%}–{high:.1%}) have a final ethnicity other than {' or '.join(SCUT_RATED_ETHNICITIES)}; "
        "SCUT-FBP5500's raters rated only Asian and Caucasian faces, so the regressor never saw a rating of "
        "theirs: read their scores with care."
    )


def attractiveness_section(
    master: pl.DataFrame, regressor: Evaluation | None, stats: list[StatRow] | None
) -> Section:
    """Regressor metrics, the score histogram and the mean score per group with intervals."""
    scored = master.filter(pl.col(SCORE).is_not_null()) if SCORE in master.columns else master.clear()
    stat_means = select(stats or [], MEAN_SCORE)
    overall_means = [r for r in stat_means if r.slice_key == ALL]
    means = _ordered_means(overall_means or (master_means(scored) if scored.height else []))
    charts: list[Chart] = []
    hist = None
    if scored.height:
        hist = Chart(
            HISTOGRAM_PNG,
            "attractiveness histogram",
            histogram(
                "Attractiveness score (predicted mean rating, 1-5)",
                scored[SCORE].to_list(),
                bins=20,
                x_label="predicted score",
            ),
        )
        charts.append(hist)
    by_group = _by_group_chart(means) if means else None
    if by_group:
        charts.append(by_group)
    view = AttractivenessView(
        regressor=regressor,
        regressor_note=NO_REGRESSOR_NOTE if regressor is None else None,
        scores_note=NO_SCORES_NOTE if not scored.height else None,
        histogram=hist,
        by_group=by_group,
        means=tuple(means),
        means_have_notes=any(r.unstable or r.note for r in means),
        interval_note=(BOOTSTRAP_NOTE if overall_means else NORMAL_NOTE) if means else None,
        slices=tuple(_mean_slices(stat_means)),
        out_of_domain=out_of_domain_note(scored) if scored.height else None,
    )
    status = OK if means else NO_SCORES
    return Section(KEY, TITLE, status, view, tuple(charts))
