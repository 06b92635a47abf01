"""The stats report: one self-contained HTML page plus PNG charts (no Dagster).

:func:`build_report` turns the master table, the classifier metrics json, the regressor's evaluation,
the composites (:func:`facestats_core.report.inputs.read_composites`), the ``face_statistics``
table and a reproducibility record into a :class:`Report` (HTML text + PNG bytes);
:func:`write_report` writes it atomically to a folder (``processed/report/``).

Every input except the master table is optional: a missing one leaves its section with a
sentence saying what is missing and how to get it. The sections are in
:mod:`facestats_core.report.sections` (one module each, returning numbers and charts); the
charts are drawn by :mod:`facestats_core.report.figures` (matplotlib, imported when a chart is
drawn); the HTML is the Jinja2 template ``templates/report.html.j2``
(:mod:`facestats_core.report.render`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from facestats_core.attractiveness.evaluation import Evaluation
from facestats_core.io.atomic import atomic_write_bytes, atomic_write_text
from facestats_core.report.face_previews import FacePreviews
from facestats_core.report.inputs import CompositeItem
from facestats_core.report.render import render_page
from facestats_core.report.sections.attractiveness import attractiveness_section
from facestats_core.report.sections.attributes import attributes_section
from facestats_core.report.sections.classifiers import classifier_section
from facestats_core.report.sections.clusters import cluster_section
from facestats_core.report.sections.common import Section
from facestats_core.report.sections.composites import composites_section
from facestats_core.report.sections.dataset import dataset_section
from facestats_core.report.sections.faces import faces_section
from facestats_core.report.sections.reproducibility import reproducibility_section
from facestats_core.report.stat_rows import read_statistics

REPORT_FILE = "index.html"


@dataclass
class Report:
    html: str
    images: dict[str, bytes]
    """PNG file name → bytes (the same pictures are inlined in the HTML)."""
    sections: dict[str, str]
    """Section key → ``ok`` or what is missing, in page order."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Counts of the master table plus ``charts``, ``composites`` and ``statistics_rows``."""


def _classifier_metrics(metrics: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The attribute → metrics mapping, from either that mapping or the whole metrics json."""
    if metrics and "metrics" in metrics and isinstance(metrics["metrics"], Mapping):
        return metrics["metrics"]
    return metrics


def build_report(
    master: pl.DataFrame,
    classifier_metrics: Mapping[str, Any] | None = None,
    regressor: Evaluation | None = None,
    composites: Sequence[CompositeItem] = (),
    statistics: pl.DataFrame | None = None,
    reproducibility: Mapping[str, Any] | None = None,
    face_previews: FacePreviews | None = None,
    method_comparison: tuple[bytes, dict[str, float]] | None = None,
    *,
    title: str = "FaceStats report",
    generated: datetime | None = None,
    caveats: Sequence[str] = (),
) -> Report:
    """Render the report.

    ``classifier_metrics``: the ``metrics`` mapping of ``attribute_classifiers.metrics.json``
    (attribute → metrics) or the whole json; ``regressor``: the regressor's evaluation;
    ``statistics``: the ``face_statistics`` table (shares and mean scores with intervals; without
    it, observed shares and means are computed from ``master``); ``reproducibility``: a flat
    mapping (CLIP id and revision, model hashes, thresholds, versions, run id) shown as a table;
    ``caveats``: what the numbers rest on when that is weak (``models.caveats``), boxed at the top.
    Raises ValueError when ``statistics`` lacks a required column.
    """
    stats = read_statistics(statistics) if statistics is not None else None
    dataset, summary = dataset_section(master)
    faces = master.filter(pl.col("face_id").is_not_null()) if "face_id" in master.columns else master
    sections: list[Section] = [
        dataset,
        faces_section(master, face_previews),
        attributes_section(faces, stats),
        classifier_section(_classifier_metrics(classifier_metrics)),
        attractiveness_section(faces, regressor, stats),
        cluster_section(faces),
        composites_section(composites, method_comparison),
        reproducibility_section(reproducibility),
    ]
    images = {name: png for section in sections for name, png in section.images.items()}
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    html = render_page(title=title, generated=when, n_images=master["image_id"].n_unique() if "image_id" in master.columns else master.height, sections=sections, caveats=list(caveats))
    summary.update(
        charts=len(images),
        composites=len(composites),
        statistics_rows=len(stats) if stats is not None else None,
    )
    return Report(html=html, images=images, sections={s.key: s.status for s in sections}, summary=summary)


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
