"""Markdown for Dagster metadata and the CLI summary: model metrics and cluster tables.

Pure functions from `facestats_core` results to markdown strings; nothing here
imports Dagster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from facestats_core.attractiveness.evaluation import (
    METRIC_NAMES,
    CrossValidation,
    Evaluation,
    HeldOutMetrics,
    MetricSummary,
    RegressionMetrics,
)

_MODELS = (("MLP", "mlp"), ("Mean baseline", "mean_baseline"), ("Ridge", "ridge"))
_METRICS_HEADER = ["| model | Pearson r | MAE | RMSE |", "|---|---:|---:|---:|"]


# --------------------------------------------------------------------------- attribute classifiers


def _fmt_classifier(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)


def _worst_group(metrics: Mapping[str, Any]) -> str:
    """`group=value: accuracy (n=…)` of the least accurate group value, or `–` without groups."""
    worst = None
    for gname, values in (metrics.get("per_group") or {}).items():
        for gval, stats in values.items():
            if worst is None or stats["accuracy"] < worst[2]:
                worst = (gname, gval, stats["accuracy"], stats["n"])
    return f"{worst[0]}={worst[1]}: {worst[2]:.3f} (n={worst[3]})" if worst else "–"


def classifier_metrics_markdown(metrics_by_attribute: Mapping[str, Mapping[str, Any]]) -> str:
    """Compact table of the attribute classifiers: one row per attribute, plus its worst group."""
    head = "| attribute | n_train | n_val | C | accuracy | balanced acc | majority baseline | worst group |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---|"]
    keys = ("n_train", "n_val", "C", "accuracy", "balanced_accuracy", "majority_baseline_accuracy")
    for attr, m in metrics_by_attribute.items():
        cells = [attr, *(_fmt_classifier(m.get(key)) for key in keys), _worst_group(m)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- attractiveness regressor


def _fmt4(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4f}"


def _fmt3(value: Any) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.3f}"


def _metrics_row(label: str, r: RegressionMetrics) -> str:
    return f"| {label} | {_fmt4(r.pearson_r)} | {_fmt4(r.mae)} | {_fmt4(r.rmse)} |"


def regressor_metrics_markdown(m: HeldOutMetrics) -> str:
    """Table comparing the MLP with the mean and ridge baselines on the held-out test rows."""
    rows = [
        _metrics_row("MLP", m.mlp),
        _metrics_row("Mean baseline", m.mean_baseline),
        _metrics_row(f"Ridge (alpha={m.ridge_alpha:g})", m.ridge),
    ]
    intro = (
        f"Held-out test split: {m.n_test} images, seen by no model "
        f"({m.n_train} fitted the MLP, {m.n_val} chose its early-stopping epoch)."
    )
    return "\n".join([intro, "", *_METRICS_HEADER, *rows]) + "\n"


def _mean_sd(s: MetricSummary) -> str:
    return "n/a" if not math.isfinite(s.mean) else f"{s.mean:.4f} ± {s.std:.4f}"


def cross_validation_markdown(c: CrossValidation) -> str:
    """Table of k-fold mean ± sd per model, plus the MLP − ridge RMSE difference."""
    k = c.k
    rows = [
        f"| {label} | " + " | ".join(_mean_sd(c.summary(model, metric)) for metric in METRIC_NAMES) + " |"
        for label, model in _MODELS
    ]
    diff = c.mlp_minus_ridge_rmse()
    outro = (
        f"MLP − ridge RMSE: {diff.mean:+.4f} (standard error {diff.std:.4f}); "
        f"the MLP wins {c.mlp_wins('ridge')}/{k} folds against ridge, "
        f"{c.mlp_wins('mean_baseline')}/{k} against the mean."
    )
    intro = f"{k}-fold cross-validation (mean ± sd over folds, every image tested once):"
    return "\n".join([intro, "", *_METRICS_HEADER, *rows, "", outro]) + "\n"


def regressor_summary(evaluation: Evaluation) -> str:
    """One line comparing the MLP with ridge and the mean: the k-fold means when cross-validation
    ran, else the held-out split."""
    cv = evaluation.cross_validation
    if cv is not None:
        k = cv.k

        def mean(model: str, metric: str) -> str:
            return _fmt3(cv.summary(model, metric).mean)

        return (
            f"{k}-fold CV RMSE: MLP {mean('mlp', 'rmse')} (r {mean('mlp', 'pearson_r')}), "
            f"ridge {mean('ridge', 'rmse')} (r {mean('ridge', 'pearson_r')}), "
            f"mean {mean('mean_baseline', 'rmse')}; MLP better than ridge in {cv.mlp_wins('ridge')}/{k} folds"
        )
    m = evaluation.held_out
    return (
        f"held-out RMSE (n={m.n_test}): MLP {_fmt3(m.mlp.rmse)} (r {_fmt3(m.mlp.pearson_r)}), "
        f"ridge {_fmt3(m.ridge.rmse)} (r {_fmt3(m.ridge.pearson_r)}), mean {_fmt3(m.mean_baseline.rmse)}"
    )


# --------------------------------------------------------------------------- clusters


def crosstab_markdown(table: pl.DataFrame) -> str:
    """Markdown rendering of `facestats_core.analysis.clusters.crosstab` output."""
    cols = table.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---:" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.iter_rows()]
    return "\n".join(lines) + "\n"


def share_table_markdown(table: pl.DataFrame, attribute: str) -> str:
    """The whole-set share rows of one attribute of `face_statistics`: observed and corrected
    shares with their 95 % intervals (⚠ = unstable) and the true share."""
    rows = table.filter(
        (pl.col("statistic") == "share") & (pl.col("attribute") == attribute) & (pl.col("slice_key") == "all")
    )
    lines = ["| value | n | observed (95 % CI) | corrected (95 % CI) | true |", "|---|---:|---|---|---:|"]
    for row in rows.iter_rows(named=True):
        corrected = "–" if row["corrected"] is None else (
            f"{row['corrected']:.3f} ({row['corrected_low']:.3f}–{row['corrected_high']:.3f})"
            + (" ⚠" if row["unstable"] else "")
        )
        true = "–" if row["true_share"] is None else f"{row['true_share']:.3f}"
        lines.append(f"| {row['value']} | {row['n']} | {row['estimate']:.3f} ({row['low']:.3f}–{row['high']:.3f}) "
                     f"| {corrected} | {true} |")
    return "\n".join(lines)


def probe_vs_zero_shot_markdown(metrics_by_attribute: Mapping[str, Mapping[str, Any]],
                                zero_shot: Mapping[str, float]) -> str:
    """Probe held-out accuracy next to CLIP zero-shot accuracy on the labelled faces, per attribute."""
    lines = ["| attribute | probe (held-out) | zero-shot (all labelled) | majority baseline |", "|---|---:|---:|---:|"]
    for attr, m in metrics_by_attribute.items():
        zs = zero_shot.get(attr)
        lines.append(f"| {attr} | {m['accuracy']:.3f} | {'-' if zs is None else f'{zs:.3f}'} | "
                     f"{m['majority_baseline_accuracy']:.3f} |")
    return "\n".join(lines)
