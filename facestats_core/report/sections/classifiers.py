"""Report section: held-out accuracy of the attribute classifiers, overall and per group (fairness).

Intervals are 95 % Wilson intervals of the accuracy on the held-out images
(:func:`facestats_core.statistics.intervals.accuracy_interval`), per group from the ``per_group``
``{accuracy, n}`` of the classifier metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facestats_core.report.figures import Bar, BarGroup, BarRow, group_accuracy, hbars
from facestats_core.report.sections.common import OK, Chart, Section, classes, ordered
from facestats_core.statistics.intervals import accuracy_interval

KEY = "classifiers"
TITLE = "Attribute classifiers and fairness (held-out)"
ACCURACY_PNG = "classifier_accuracy.png"
NO_METRICS = "no classifier metrics"
NO_METRICS_NOTE = (
    "No classifier metrics (models/attribute_classifiers.metrics.json): materialize "
    "attribute_classifiers (needs FairFace-format labels, FACESTATS_FAIRFACE_LABELS)."
)


@dataclass(frozen=True)
class ClassifierRow:
    attribute: str
    n_train: int | None
    n_val: int | None
    C: float | None
    accuracy: float | None
    low: float | None
    high: float | None
    balanced_accuracy: float | None
    majority_baseline: float | None


@dataclass(frozen=True)
class GroupAccuracy:
    grouping: str
    value: str
    n: int | None
    accuracy: float | None
    low: float | None
    high: float | None
    gap: float | None
    """``accuracy`` minus the classifier's overall accuracy."""


@dataclass(frozen=True)
class FairnessBlock:
    attribute: str
    overall: float | None
    chart: Chart
    rows: tuple[GroupAccuracy, ...]


@dataclass(frozen=True)
class ClassifiersView:
    note: str | None
    rows: tuple[ClassifierRow, ...]
    chart: Chart | None
    blocks: tuple[FairnessBlock, ...]


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _classifier_row(attr: str, m: Mapping[str, Any]) -> ClassifierRow:
    accuracy, n_val = _float(m.get("accuracy")), _int(m.get("n_val"))
    interval = accuracy_interval(accuracy, n_val)
    return ClassifierRow(
        attribute=attr,
        n_train=_int(m.get("n_train")),
        n_val=n_val,
        C=_float(m.get("C")),
        accuracy=accuracy,
        low=interval[0] if interval else None,
        high=interval[1] if interval else None,
        balanced_accuracy=_float(m.get("balanced_accuracy")),
        majority_baseline=_float(m.get("majority_baseline_accuracy")),
    )


def _accuracy_chart(rows: list[ClassifierRow]) -> Chart:
    """Accuracy (with interval), balanced accuracy and majority baseline of every classifier."""
    bar_rows = tuple(
        BarRow(
            f"{r.attribute} (n={r.n_val})",
            (Bar(r.accuracy, r.low, r.high), Bar(r.balanced_accuracy), Bar(r.majority_baseline)),
        )
        for r in rows
    )
    png = hbars(
        "Held-out accuracy vs majority baseline",
        [BarGroup(None, bar_rows)],
        ("accuracy", "balanced accuracy", "majority baseline"),
        x_label="held-out accuracy (error bars: 95 % Wilson interval)",
        percent=True,
        x_max=1.0,
    )
    return Chart(ACCURACY_PNG, "classifier accuracy", png)


def _group_rows(grouping: str, values: Mapping[str, Any], overall: float | None) -> list[GroupAccuracy]:
    """Accuracy with its Wilson interval within each true value of ``grouping``."""
    out = []
    for value in classes(grouping, list(values)):
        stats = values.get(value)
        if not isinstance(stats, Mapping):
            continue
        accuracy, n = _float(stats.get("accuracy")), _int(stats.get("n"))
        interval = accuracy_interval(accuracy, n)
        out.append(
            GroupAccuracy(
                grouping=grouping,
                value=value,
                n=n,
                accuracy=accuracy,
                low=interval[0] if interval else None,
                high=interval[1] if interval else None,
                gap=accuracy - overall if accuracy is not None and overall is not None else None,
            )
        )
    return out


def _fairness_block(attr: str, m: Mapping[str, Any], per_group: Mapping[str, Any]) -> FairnessBlock:
    """Chart and rows of one classifier's accuracy per true group."""
    overall = _float(m.get("accuracy"))
    rows: list[GroupAccuracy] = []
    groups: list[BarGroup] = []
    for grouping, values in ordered(per_group):
        if not isinstance(values, Mapping):
            continue
        group = _group_rows(grouping, values, overall)
        rows += group
        groups.append(
            BarGroup(
                f"true {grouping}",
                tuple(BarRow(f"{g.value} (n={g.n})", (Bar(g.accuracy, g.low, g.high),)) for g in group),
            )
        )
    png = group_accuracy(f"{attr} classifier: held-out accuracy per group", groups, overall)
    chart = Chart(f"fairness_{attr}.png", f"{attr} classifier accuracy per group", png)
    return FairnessBlock(attr, overall, chart, tuple(rows))


def classifier_section(metrics: Mapping[str, Any] | None) -> Section:
    """Held-out metrics of the attribute classifiers (attribute → metrics mapping)."""
    items = [(attr, m) for attr, m in ordered(metrics or {}) if isinstance(m, Mapping)]
    if not items:
        return Section(KEY, TITLE, NO_METRICS, ClassifiersView(NO_METRICS_NOTE, (), None, ()))
    rows = [_classifier_row(attr, m) for attr, m in items]
    chart = _accuracy_chart(rows)
    blocks = tuple(
        _fairness_block(attr, m, m["per_group"])
        for attr, m in items
        if isinstance(m.get("per_group"), Mapping) and m["per_group"]
    )
    view = ClassifiersView(None, tuple(rows), chart, blocks)
    return Section(KEY, TITLE, OK, view, (chart, *(b.chart for b in blocks)))
