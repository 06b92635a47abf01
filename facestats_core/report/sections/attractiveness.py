"""Report section: the attractiveness regressor's metrics and the predicted score distribution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.report.charts import BarGroup, BarRow, hbar_chart, histogram
from facestats_core.report.html_parts import esc, img, note, num, table
from facestats_core.report.sections.common import NONE_LABEL, OK, Section, classes, column

KEY = "attractiveness"
MODELS = ("mlp", "ridge", "mean_baseline")
METRIC_HEAD = ["model", "Pearson r", "MAE", "RMSE"]
HISTOGRAM_PNG = "attractiveness_histogram.png"
BY_GROUP_PNG = "attractiveness_by_group.png"


def _held_out_table(regressor: Mapping[str, Any]) -> str:
    """Held-out test metrics per model, headed by the split sizes."""
    metrics = regressor.get("metrics") or {}
    rows = []
    for model in MODELS:
        m = metrics.get(model)
        if isinstance(m, Mapping):
            rows.append([esc(model), num(m.get("pearson_r")), num(m.get("mae")), num(m.get("rmse"))])
    n_test = metrics.get("n_test", metrics.get("n_val", regressor.get("n_val")))
    return (
        f"<h3>Regressor (held-out test: n = {num(n_test)}; "
        f"fitted on {num(metrics.get('n_train', regressor.get('n_train')))}, "
        f"early stopping on {num(metrics.get('n_val', regressor.get('n_val')))})</h3>"
        + (table(METRIC_HEAD, rows) if rows else note("The regressor json has no metrics."))
    )


def _mean_sd(stats: Mapping[str, Any], key: str) -> str:
    entry = stats.get(key) or {}
    return f"{num(entry.get('mean'))} ± {num(entry.get('std'))}"


def _cross_validation_table(cv: Mapping[str, Any]) -> str:
    """k-fold cross-validation metrics (mean ± sd) and the MLP-vs-ridge comparison."""
    rows = []
    for model in MODELS:
        m = cv["summary"].get(model) or {}
        rows.append([esc(model)] + [_mean_sd(m, k) for k in ("pearson_r", "mae", "rmse")])
    diff = cv.get("mlp_minus_ridge_rmse") or {}
    return (
        f"<h3>{num(cv.get('k'))}-fold cross-validation (mean ± sd over folds)</h3>"
        + table(METRIC_HEAD, rows)
        + "<p>"
        + esc(
            f"MLP − ridge RMSE {num(diff.get('mean'))} (standard error {num(diff.get('std'))}); "
            f"the MLP beats ridge in {num(cv.get('mlp_wins_vs_ridge'))} of {num(cv.get('k'))} folds."
        )
        + "</p>"
    )


def _regressor_part(regressor: Mapping[str, Any] | None) -> str:
    """The regressor's metrics, or a note saying it is missing."""
    if regressor is None:
        return note(
            "No attractiveness regressor (models/attractiveness_regressor.json): no ratings configured "
            "(FACESTATS_RATINGS) or attractiveness_regressor not materialized."
        )
    html = _held_out_table(regressor)
    cv = regressor.get("cross_validation")
    if isinstance(cv, Mapping) and isinstance(cv.get("summary"), Mapping):
        html += _cross_validation_table(cv)
    return html


def _group_stats(scored: pl.DataFrame, attr: str) -> tuple[BarGroup, list[list[str]]]:
    """Mean score per value of ``attr``: a bar group and its table rows."""
    stats = scored.group_by(pl.col(attr).cast(pl.String)).agg(
        pl.col("attractiveness_raw").mean().alias("mean"),
        pl.len().alias("n"),
        pl.col("attractiveness_raw").std().alias("std"),
    )
    lookup = {row[0]: row for row in stats.iter_rows()}
    rows, table_rows = [], []
    for cls in classes(attr, list(lookup)) + ([None] if None in lookup else []):
        if cls not in lookup:
            continue
        _, mean, n, std = lookup[cls]
        label = cls if cls is not None else NONE_LABEL
        rows.append(BarRow(f"{label} (n={n})", [float(mean)], note=f"{mean:.3f}"))
        table_rows.append([esc(attr), esc(label), str(n), num(mean), num(std)])
    return BarGroup(f"by {attr}", rows), table_rows


def _by_group_part(scored: pl.DataFrame, overall: float, images: dict[str, bytes]) -> str:
    """Mean score per group of every attribute (chart + table); adds the chart to ``images``."""
    groups, table_rows = [], []
    for attr in ATTRIBUTES:
        if attr not in scored.columns:
            continue
        group, rows = _group_stats(scored, attr)
        groups.append(group)
        table_rows += rows
    png = hbar_chart(
        "Mean attractiveness score by group",
        groups,
        stacked=False,
        x_min=1.0,
        reference=overall,
        reference_label=f"overall mean {overall:.3f}",
        x_label="mean predicted score",
    )
    images[BY_GROUP_PNG] = png
    return (
        "<h3>Mean score by group (final attributes)</h3><div class=row>"
        + img(BY_GROUP_PNG, png, "mean score by group")
        + table(["attribute", "group", "n", "mean", "std"], table_rows, numeric_from=2)
        + "</div>"
    )


def attractiveness_section(master: pl.DataFrame, regressor: Mapping[str, Any] | None) -> Section:
    """Regressor metrics, the score histogram and the mean score per attribute group."""
    head = "<h2 id=attractiveness>Attractiveness</h2>" + _regressor_part(regressor)
    raw = column(master, "attractiveness_raw")
    scored = master.filter(pl.col("attractiveness_raw").is_not_null()) if raw is not None else master.clear()
    if scored.height == 0:
        return Section(
            KEY,
            head
            + note(
                "No attractiveness scores in the master table: the ratings are not configured "
                "(FACESTATS_RATINGS) or attractiveness_scores was not materialized before master_metadata."
            ),
            "no attractiveness scores",
        )
    scores = [float(v) for v in scored["attractiveness_raw"].to_list()]
    images = {HISTOGRAM_PNG: histogram("Attractiveness score (predicted mean rating, 1-5)", scores, bins=20,
                                       x_label="score")}
    histogram_html = "<h3>Score distribution</h3>" + img(HISTOGRAM_PNG, images[HISTOGRAM_PNG],
                                                          "attractiveness histogram")
    by_group = _by_group_part(scored, sum(scores) / len(scores), images)
    return Section(KEY, head + histogram_html + by_group, OK, images)
