"""The stats report: one self-contained HTML page plus PNG charts (no Dagster, no matplotlib).

:func:`build_report` turns the master table, the classifier metrics json, the
regressor json and the composites (:func:`facestats_core.report.inputs.read_composites`)
into a :class:`Report` (HTML text + PNG bytes); :func:`write_report` writes it
atomically to a folder (``processed/report/``). Every input except the master
table is optional: a missing one leaves its section with a sentence saying
what is missing and how to get it. The sections are in
:mod:`facestats_core.report.sections`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from facestats_core.io.atomic import atomic_write_bytes, atomic_write_text
from facestats_core.report.html_parts import esc
from facestats_core.report.inputs import CompositeItem
from facestats_core.report.sections.attractiveness import attractiveness_section
from facestats_core.report.sections.attributes import attributes_section
from facestats_core.report.sections.classifiers import classifier_section
from facestats_core.report.sections.clusters import cluster_section
from facestats_core.report.sections.common import Section
from facestats_core.report.sections.composites import composites_section
from facestats_core.report.sections.overview import overview_section

REPORT_FILE = "index.html"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1500px;color:#222;padding:0 16px}
h1{margin-bottom:4px} h2{border-bottom:2px solid #4e79a7;padding-bottom:4px;margin-top:36px}
nav a{margin-right:14px} .meta{color:#777}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #ddd;padding:3px 8px}
th{background:#f3f5f8} .num{text-align:right} .row{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start}
img.chart{max-width:100%;border:1px solid #eee} .missing{color:#a33;font-style:italic}
.gallery{display:flex;flex-wrap:wrap;gap:14px} figure{margin:0;width:200px;font-size:12px}
img.thumb,div.thumb{width:192px;height:192px;object-fit:cover;border:1px solid #ddd;display:flex;align-items:center;justify-content:center}
"""


@dataclass
class Report:
    html: str
    images: dict[str, bytes]
    """PNG file name → bytes (the same pictures are inlined in the HTML)."""
    sections: dict[str, str]
    """Section → ``ok`` or the reason it is empty."""
    summary: dict[str, Any] = field(default_factory=dict)


def _classifier_metrics(metrics: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The attribute → metrics mapping, from either that mapping or the whole metrics json."""
    if metrics and "metrics" in metrics and isinstance(metrics["metrics"], Mapping):
        return metrics["metrics"]
    return metrics


def _page(
    title: str, generated: datetime, n_images: int, nav_keys: Sequence[str], body: Sequence[str]
) -> str:
    """The whole HTML document around the section bodies."""
    when = generated.strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in ("overview", *nav_keys))
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1><p class=meta>Generated {esc(when)} · {n_images} images · "
        f"charts are also saved as PNG files next to this page</p><nav>{nav}</nav>"
        + "".join(body)
        + "</body></html>\n"
    )


def build_report(
    master: pl.DataFrame,
    classifier_metrics: Mapping[str, Any] | None = None,
    regressor: Mapping[str, Any] | None = None,
    composites: Sequence[CompositeItem] = (),
    *,
    title: str = "FaceStats report",
    generated: datetime | None = None,
) -> Report:
    """Render the report. ``classifier_metrics`` is the ``metrics`` mapping of
    ``attribute_classifiers.metrics.json`` (attribute → metrics) or the whole json;
    ``regressor`` is ``attractiveness_regressor.json``."""
    overview, summary = overview_section(master)
    sections: list[Section] = [
        attributes_section(master),
        attractiveness_section(master, regressor),
        classifier_section(_classifier_metrics(classifier_metrics)),
        cluster_section(master),
        composites_section(composites),
    ]
    images = {name: png for section in sections for name, png in section.images.items()}
    page = _page(
        title,
        generated or datetime.now(UTC),
        master.height,
        [s.key for s in sections],
        [overview, *(s.html for s in sections)],
    )
    summary["charts"] = len(images)
    summary["composites"] = len(composites)
    return Report(html=page, images=images, sections={s.key: s.status for s in sections}, summary=summary)


def write_report(report: Report, folder: Any) -> dict[str, Any]:
    """Write the PNGs and then ``index.html`` into ``folder`` (atomically, each file); PNGs of an
    earlier report that this one no longer has are removed. Returns name → path."""
    written: dict[str, Any] = {}
    for name, data in sorted(report.images.items()):
        target = folder / name
        atomic_write_bytes(target, data)
        written[name] = target
    if folder.exists():
        for stale in folder.glob("*.png"):
            if stale.name not in report.images:
                stale.unlink()
    target = folder / REPORT_FILE
    atomic_write_text(target, report.html)
    written[REPORT_FILE] = target
    return written
