"""Report section: held-out accuracy of the attribute classifiers, overall and per group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from facestats_core.report.charts import BarGroup, BarRow, hbar_chart
from facestats_core.report.html_parts import esc, img, note, num, table
from facestats_core.report.sections.common import OK, Section, classes, ordered

KEY = "classifiers"
ACCURACY_PNG = "classifier_accuracy.png"
SUMMARY_HEAD = ["attribute", "n_train", "n_val", "C", "accuracy", "balanced accuracy", "majority baseline"]


def _accuracy(m: Mapping[str, Any], key: str = "accuracy") -> float:
    return float(m.get(key) or 0.0)


def _summary_part(metrics: Mapping[str, Any], images: dict[str, bytes]) -> str:
    """Table of every classifier's metrics and a chart of accuracy vs majority baseline."""
    rows, bars = [], []
    for attr, m in ordered(metrics):
        if not isinstance(m, Mapping):
            continue
        rows.append(
            [
                esc(attr),
                num(m.get("n_train")),
                num(m.get("n_val")),
                num(m.get("C"), 3),
                num(m.get("accuracy")),
                num(m.get("balanced_accuracy")),
                num(m.get("majority_baseline_accuracy")),
            ]
        )
        accuracy = _accuracy(m)
        baseline = _accuracy(m, "majority_baseline_accuracy")
        bars.append(BarRow(attr, [accuracy, baseline], note=f"{accuracy:.3f}"))
    png = hbar_chart(
        "Held-out accuracy vs majority baseline",
        [BarGroup(None, bars)],
        series=("accuracy", "majority baseline"),
        stacked=False,
        x_max=1.0,
        x_label="accuracy",
    )
    images[ACCURACY_PNG] = png
    return table(SUMMARY_HEAD, rows) + img(ACCURACY_PNG, png, "classifier accuracy")


def _group_rows(
    group_name: str, values: Mapping[str, Any], overall: float
) -> tuple[BarGroup, list[list[str]]]:
    """Accuracy within each true value of ``group_name``: a bar group and its table rows."""
    bars, table_rows = [], []
    for value in classes(group_name, list(values)):
        stats = values.get(value)
        if not stats:
            continue
        acc, n = _accuracy(stats), stats.get("n")
        bars.append(BarRow(f"{value} (n={n})", [acc], note=f"{acc:.3f}"))
        table_rows.append([esc(group_name), esc(value), num(n), num(acc), num(acc - overall)])
    return BarGroup(f"by true {group_name}", bars), table_rows


def _fairness_block(
    attr: str, m: Mapping[str, Any], per_group: Mapping[str, Any], images: dict[str, bytes]
) -> str:
    """Chart and table of one classifier's accuracy per group; adds the chart to ``images``."""
    overall = _accuracy(m)
    groups, table_rows = [], []
    for group_name, values in ordered(per_group):
        group, rows = _group_rows(group_name, values, overall)
        groups.append(group)
        table_rows += rows
    png = hbar_chart(
        f"{attr} classifier: accuracy per group",
        groups,
        x_max=1.0,
        reference=overall,
        reference_label=f"overall {overall:.3f}",
        x_label="held-out accuracy",
    )
    name = f"fairness_{attr}.png"
    images[name] = png
    return (
        f"<h4>{esc(attr)}</h4><div class=row>{img(name, png, f'{attr} accuracy per group')}"
        + table(["group", "value", "n", "accuracy", "vs overall"], table_rows, numeric_from=2)
        + "</div>"
    )


def _fairness_part(metrics: Mapping[str, Any], images: dict[str, bytes]) -> str:
    """Per-group accuracy of every classifier that has ``per_group`` metrics."""
    parts = [
        "<h3>Accuracy per group (fairness view)</h3><p>Held-out accuracy of each classifier within each "
        "true gender and ethnicity group; the dashed line is the overall accuracy.</p>"
    ]
    for attr, m in ordered(metrics):
        per_group = (m or {}).get("per_group") if isinstance(m, Mapping) else None
        if per_group:
            parts.append(_fairness_block(attr, m, per_group, images))
    return "".join(parts)


def classifier_section(metrics: Mapping[str, Any] | None) -> Section:
    """Held-out metrics of the attribute classifiers (attribute → metrics mapping)."""
    head = "<h2 id=classifiers>Attribute classifiers (held-out)</h2>"
    if not metrics:
        return Section(
            KEY,
            head
            + note(
                "No classifier metrics (models/attribute_classifiers.metrics.json): materialize "
                "attribute_classifiers (needs FairFace-format labels, FACESTATS_FAIRFACE_LABELS)."
            ),
            "no classifier metrics",
        )
    images: dict[str, bytes] = {}
    html = head + _summary_part(metrics, images) + _fairness_part(metrics, images)
    return Section(KEY, html, OK, images)
