"""The stats report: one self-contained HTML page plus PNG charts (no Dagster, no matplotlib).

:func:`build_report` turns the master table, the classifier metrics json, the
regressor json and the composites (:func:`read_composites`) into a
:class:`Report` (HTML text + PNG bytes); :func:`write_report` writes it
atomically to a folder (``processed/report/``). Every input except the master
table is optional: a missing one leaves its section with a sentence saying
what is missing and how to get it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
from PIL import Image

from facestats_core.io.atomic import atomic_write_bytes, atomic_write_text
from facestats_core.report.charts import BarGroup, BarRow, hbar_chart, heatmap, histogram
from facestats_core.analysis.clusters import crosstab
from facestats_core.labels.vocab import ATTRIBUTES

REPORT_FILE = "index.html"
SOURCES = ("manual", "predicted", "none")
NONE_LABEL = "(none)"


@dataclass(frozen=True)
class CompositeItem:
    """One composite for the gallery: its json sidecar fields and a JPEG thumbnail (None if unreadable)."""

    spec: str
    file: str
    matched: int | None
    used: int | None
    relaxed: tuple[str, ...] = ()
    thumbnail: bytes | None = None


@dataclass
class Report:
    html: str
    images: dict[str, bytes]
    """PNG file name → bytes (the same pictures are inlined in the HTML)."""
    sections: dict[str, str]
    """Section → ``ok`` or the reason it is empty."""
    summary: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


def read_json(path: Any) -> dict[str, Any] | None:
    """A json file as a dict, or None when it does not exist."""
    if path is None or not path.exists():
        return None
    with path.open("r") as fh:
        data = json.load(fh)
    return data if isinstance(data, dict) else None


def thumbnail_jpeg(data: bytes, side: int = 192) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        picture = image.convert("RGB")
    picture.thumbnail((side, side))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def read_composites(folder: Any, side: int = 192) -> list[CompositeItem]:
    """The composites in ``folder`` (every ``<slug>.json`` with its image), sorted by spec.

    Sidecars that are not composite json, or whose ``image_file`` is not a plain
    file name in the folder, are skipped; an unreadable image gives an item without thumbnail.
    """
    if folder is None or not folder.exists():
        return []
    items: list[CompositeItem] = []
    for path in sorted(folder.glob("*.json")):
        try:
            with path.open("r") as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or "spec" not in meta:
            continue
        name = str(meta.get("image_file") or "")
        thumb = None
        if name and "/" not in name and "\\" not in name and name not in (".", ".."):
            image_path = folder / name
            try:
                with image_path.open("rb") as fh:
                    thumb = thumbnail_jpeg(fh.read(), side)
            except (OSError, ValueError):
                thumb = None
        items.append(
            CompositeItem(
                spec=str(meta["spec"]),
                file=name,
                matched=meta.get("matched"),
                used=meta.get("used"),
                relaxed=tuple(str(r) for r in meta.get("relaxed") or ()),
                thumbnail=thumb,
            )
        )
    return sorted(items, key=lambda item: item.spec)


# --------------------------------------------------------------------------- helpers


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _esc(value)
    if not math.isfinite(number):
        return "–"
    return f"{number:.{digits}f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    out = ["<table><thead><tr>"]
    out += [f'<th class="{"num" if i >= numeric_from else ""}">{_esc(h)}</th>' for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append(
            "<tr>"
            + "".join(
                f'<td class="{"num" if i >= numeric_from else ""}">{cell}</td>' for i, cell in enumerate(row)
            )
            + "</tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _img(name: str, data: bytes, alt: str, mime: str = "image/png") -> str:
    encoded = base64.b64encode(data).decode()
    return f'<img class="chart" src="data:{mime};base64,{encoded}" alt="{_esc(alt)}" title="{_esc(name)}">'


def _note(text: str) -> str:
    return f'<p class="missing">{_esc(text)}</p>'


def _col(master: pl.DataFrame, name: str) -> pl.Series | None:
    return master[name] if name in master.columns else None


def _ordered(mapping: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Items in canonical attribute order (gender, age, ethnicity), then the others by name."""
    rank = {name: i for i, name in enumerate(ATTRIBUTES)}
    return sorted(mapping.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def _classes(attr: str, values: Sequence[Any]) -> list[str]:
    canonical = list(ATTRIBUTES.get(attr, ()))
    extra = sorted({str(v) for v in values if v is not None} - set(canonical))
    return canonical + extra


# --------------------------------------------------------------------------- sections


def _attributes_section(master: pl.DataFrame, images: dict[str, bytes], sections: dict[str, str]) -> str:
    parts = ["<h2 id=attributes>Attributes (final = manual &gt; predicted)</h2>"]
    present = [a for a in ATTRIBUTES if a in master.columns]
    if not present or master.height == 0:
        sections["attributes"] = "no attribute columns in the master table"
        return "".join(parts) + _note(
            "No attributes in the master table: materialize attributes and master_metadata."
        )
    parts.append(
        "<p>Counts over every image of the master table. <em>manual</em> = from the manual labels file, "
        f"<em>predicted</em> = classifier, <em>{NONE_LABEL}</em> = no value (unreadable or not embedded).</p>"
    )
    for attr in present:
        source_col = f"{attr}_source"
        frame = master.select(
            pl.col(attr).cast(pl.String).alias("value"),
            (
                pl.col(source_col).cast(pl.String) if source_col in master.columns else pl.lit("predicted")
            ).alias("source"),
        ).with_columns(
            pl.when(pl.col("value").is_null())
            .then(pl.lit("none"))
            .otherwise(pl.col("source"))
            .alias("source")
        )
        counts: dict[tuple[str, str], int] = {}
        for value, source, n in frame.group_by("value", "source").len().iter_rows():
            counts[(value if value is not None else NONE_LABEL, source or "predicted")] = int(n)
        classes = _classes(attr, [v for v, _ in counts if v != NONE_LABEL])
        if any(v == NONE_LABEL for v, _ in counts):
            classes.append(NONE_LABEL)
        rows, table_rows = [], []
        for cls in classes:
            values = [float(counts.get((cls, s), 0)) for s in SOURCES]
            total = int(sum(values))
            rows.append(BarRow(cls, values, note=str(total)))
            table_rows.append([_esc(cls), *(str(int(v)) for v in values), str(total)])
        png = hbar_chart(
            f"{attr}: final values by source (n = {master.height})",
            [BarGroup(None, rows)],
            series=SOURCES,
            x_label="images",
        )
        name = f"attributes_{attr}.png"
        images[name] = png
        parts.append(
            f"<h3>{_esc(attr)}</h3><div class=row>{_img(name, png, f'{attr} distribution')}"
            + _table([attr, *SOURCES, "total"], table_rows)
            + "</div>"
        )
    sections["attributes"] = "ok"
    return "".join(parts)


def _attractiveness_section(
    master: pl.DataFrame,
    regressor: Mapping[str, Any] | None,
    images: dict[str, bytes],
    sections: dict[str, str],
) -> str:
    parts = ["<h2 id=attractiveness>Attractiveness</h2>"]
    if regressor is not None:
        metrics = regressor.get("metrics") or {}
        rows = []
        for model in ("mlp", "ridge", "mean_baseline"):
            m = metrics.get(model)
            if isinstance(m, Mapping):
                rows.append([_esc(model), _num(m.get("pearson_r")), _num(m.get("mae")), _num(m.get("rmse"))])
        n_test = metrics.get("n_test", metrics.get("n_val", regressor.get("n_val")))
        parts.append(
            f"<h3>Regressor (held-out test: n = {_num(n_test)}; "
            f"fitted on {_num(metrics.get('n_train', regressor.get('n_train')))}, "
            f"early stopping on {_num(metrics.get('n_val', regressor.get('n_val')))})</h3>"
            + (
                _table(["model", "Pearson r", "MAE", "RMSE"], rows)
                if rows
                else _note("The regressor json has no metrics.")
            )
        )
        cv = regressor.get("cross_validation")
        if isinstance(cv, Mapping) and isinstance(cv.get("summary"), Mapping):
            cv_rows = []
            for model in ("mlp", "ridge", "mean_baseline"):
                m = cv["summary"].get(model) or {}
                cv_rows.append(
                    [_esc(model)]
                    + [f"{_num((m.get(k) or {}).get('mean'))} ± {_num((m.get(k) or {}).get('std'))}"
                       for k in ("pearson_r", "mae", "rmse")]
                )
            diff = cv.get("mlp_minus_ridge_rmse") or {}
            parts.append(
                f"<h3>{_num(cv.get('k'))}-fold cross-validation (mean ± sd over folds)</h3>"
                + _table(["model", "Pearson r", "MAE", "RMSE"], cv_rows)
                + "<p>"
                + _esc(
                    f"MLP − ridge RMSE {_num(diff.get('mean'))} (standard error {_num(diff.get('std'))}); "
                    f"the MLP beats ridge in {_num(cv.get('mlp_wins_vs_ridge'))} of {_num(cv.get('k'))} folds."
                )
                + "</p>"
            )
    else:
        parts.append(
            _note(
                "No attractiveness regressor (models/attractiveness_regressor.json): no ratings configured "
                "(FACESTATS_RATINGS) or attractiveness_regressor not materialized."
            )
        )
    raw = _col(master, "attractiveness_raw")
    scored = master.filter(pl.col("attractiveness_raw").is_not_null()) if raw is not None else master.clear()
    if scored.height == 0:
        sections["attractiveness"] = "no attractiveness scores"
        return "".join(parts) + _note(
            "No attractiveness scores in the master table: the ratings are not configured (FACESTATS_RATINGS) or "
            "attractiveness_scores was not materialized before master_metadata."
        )
    scores = [float(v) for v in scored["attractiveness_raw"].to_list()]
    png = histogram("Attractiveness score (predicted mean rating, 1-5)", scores, bins=20, x_label="score")
    images["attractiveness_histogram.png"] = png
    parts.append(
        "<h3>Score distribution</h3>" + _img("attractiveness_histogram.png", png, "attractiveness histogram")
    )
    overall = sum(scores) / len(scores)
    groups, table_rows = [], []
    for attr in ATTRIBUTES:
        if attr not in scored.columns:
            continue
        stats = scored.group_by(pl.col(attr).cast(pl.String)).agg(
            pl.col("attractiveness_raw").mean().alias("mean"),
            pl.len().alias("n"),
            pl.col("attractiveness_raw").std().alias("std"),
        )
        lookup = {row[0]: row for row in stats.iter_rows()}
        rows = []
        for cls in _classes(attr, list(lookup)) + ([None] if None in lookup else []):
            if cls not in lookup:
                continue
            _, mean, n, std = lookup[cls]
            label = cls if cls is not None else NONE_LABEL
            rows.append(BarRow(f"{label} (n={n})", [float(mean)], note=f"{mean:.3f}"))
            table_rows.append([_esc(attr), _esc(label), str(n), _num(mean), _num(std)])
        groups.append(BarGroup(f"by {attr}", rows))
    png = hbar_chart(
        "Mean attractiveness score by group",
        groups,
        stacked=False,
        x_min=1.0,
        reference=overall,
        reference_label=f"overall mean {overall:.3f}",
        x_label="mean predicted score",
    )
    images["attractiveness_by_group.png"] = png
    parts.append(
        "<h3>Mean score by group (final attributes)</h3><div class=row>"
        + _img("attractiveness_by_group.png", png, "mean score by group")
        + _table(["attribute", "group", "n", "mean", "std"], table_rows, numeric_from=2)
        + "</div>"
    )
    sections["attractiveness"] = "ok"
    return "".join(parts)


def _classifier_section(
    metrics: Mapping[str, Any] | None, images: dict[str, bytes], sections: dict[str, str]
) -> str:
    parts = ["<h2 id=classifiers>Attribute classifiers (held-out)</h2>"]
    if not metrics:
        sections["classifiers"] = "no classifier metrics"
        return "".join(parts) + _note(
            "No classifier metrics (models/attribute_classifiers.metrics.json): materialize attribute_classifiers "
            "(needs FairFace-format labels, FACESTATS_FAIRFACE_LABELS)."
        )
    rows, bars = [], []
    for attr, m in _ordered(metrics):
        if not isinstance(m, Mapping):
            continue
        rows.append(
            [
                _esc(attr),
                _num(m.get("n_train")),
                _num(m.get("n_val")),
                _num(m.get("C"), 3),
                _num(m.get("accuracy")),
                _num(m.get("balanced_accuracy")),
                _num(m.get("majority_baseline_accuracy")),
            ]
        )
        bars.append(
            BarRow(
                attr,
                [float(m.get("accuracy") or 0.0), float(m.get("majority_baseline_accuracy") or 0.0)],
                note=f"{float(m.get('accuracy') or 0.0):.3f}",
            )
        )
    parts.append(
        _table(
            ["attribute", "n_train", "n_val", "C", "accuracy", "balanced accuracy", "majority baseline"], rows
        )
    )
    png = hbar_chart(
        "Held-out accuracy vs majority baseline",
        [BarGroup(None, bars)],
        series=("accuracy", "majority baseline"),
        stacked=False,
        x_max=1.0,
        x_label="accuracy",
    )
    images["classifier_accuracy.png"] = png
    parts.append(_img("classifier_accuracy.png", png, "classifier accuracy"))
    parts.append(
        "<h3>Accuracy per group (fairness view)</h3><p>Held-out accuracy of each classifier within each "
        "true gender and ethnicity group; the dashed line is the overall accuracy.</p>"
    )
    for attr, m in _ordered(metrics):
        per_group = (m or {}).get("per_group") if isinstance(m, Mapping) else None
        if not per_group:
            continue
        overall = float(m.get("accuracy") or 0.0)
        groups, table_rows = [], []
        for group_name, values in _ordered(per_group):
            ordered = _classes(group_name, list(values))
            group_rows = []
            for value in ordered:
                stats = values.get(value)
                if not stats:
                    continue
                acc, n = float(stats.get("accuracy") or 0.0), stats.get("n")
                group_rows.append(BarRow(f"{value} (n={n})", [acc], note=f"{acc:.3f}"))
                table_rows.append([_esc(group_name), _esc(value), _num(n), _num(acc), _num(acc - overall)])
            groups.append(BarGroup(f"by true {group_name}", group_rows))
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
        parts.append(
            f"<h4>{_esc(attr)}</h4><div class=row>{_img(name, png, f'{attr} accuracy per group')}"
            + _table(["group", "value", "n", "accuracy", "vs overall"], table_rows, numeric_from=2)
            + "</div>"
        )
    sections["classifiers"] = "ok"
    return "".join(parts)


def _cluster_section(master: pl.DataFrame, images: dict[str, bytes], sections: dict[str, str]) -> str:
    parts = ["<h2 id=clusters>Embedding clusters × predicted ethnicity</h2>"]
    if "cluster" not in master.columns or master["cluster"].drop_nulls().len() == 0:
        sections["clusters"] = "no clusters"
        return "".join(parts) + _note(
            "No clusters in the master table: materialize embedding_clusters and master_metadata."
        )
    ethnicity = "ethnicity_pred" if "ethnicity_pred" in master.columns else "ethnicity"
    rows = master.filter(pl.col("cluster").is_not_null())
    table = crosstab(
        rows["cluster"].to_numpy(),
        rows[ethnicity].to_list() if ethnicity in rows.columns else [None] * rows.height,
    )
    columns = [c for c in table.columns if c not in ("cluster", "total")]
    matrix = [[float(v) for v in row] for row in table.select(columns).iter_rows()]
    labels = [
        f"cluster {c} (n={t})"
        for c, t in zip(table["cluster"].to_list(), table["total"].to_list(), strict=True)
    ]
    png = heatmap("Images per cluster and predicted ethnicity", labels, columns, matrix)
    images["cluster_ethnicity.png"] = png
    vmax = max((max(r) for r in matrix if r), default=1.0) or 1.0
    body = []
    for cluster, row, total in zip(table["cluster"].to_list(), matrix, table["total"].to_list(), strict=True):
        cells = [
            f'<span style="display:block;background:rgba(78,121,167,{v / vmax:.2f})">{int(v)}</span>'
            for v in row
        ]
        body.append([_esc(cluster), *cells, str(total)])
    parts.append(
        "<p>k-means clusters of the CLIP embeddings (cluster 0 = largest) against the predicted "
        "ethnicity; a cluster dominated by one group shows what the embedding separates.</p>"
        f"<div class=row>{_img('cluster_ethnicity.png', png, 'cluster x ethnicity')}"
        + _table(["cluster", *columns, "total"], body)
        + "</div>"
    )
    sections["clusters"] = "ok"
    return "".join(parts)


def _composites_section(composites: Sequence[CompositeItem], sections: dict[str, str]) -> str:
    parts = ["<h2 id=composites>Composite faces</h2>"]
    if not composites:
        sections["composites"] = "no composites"
        return "".join(parts) + _note(
            "No composites built yet: add filter specs (config/composites.yaml or `facestats composites add`) "
            "and materialize composite."
        )
    cards = []
    for item in composites:
        picture = (
            _img(item.file, item.thumbnail, item.spec, mime="image/jpeg").replace(
                'class="chart"', 'class="thumb"'
            )
            if item.thumbnail
            else '<div class="thumb missing">image missing</div>'
        )
        relaxed = f"<br>relaxed: {_esc(', '.join(item.relaxed))}" if item.relaxed else ""
        cards.append(
            f"<figure>{picture}<figcaption><code>{_esc(item.spec)}</code><br>"
            f"{_num(item.used)} faces used of {_num(item.matched)} matched{relaxed}</figcaption></figure>"
        )
    sections["composites"] = "ok"
    return "".join(parts) + '<div class="gallery">' + "".join(cards) + "</div>"


def _overview(master: pl.DataFrame) -> tuple[str, dict[str, Any]]:
    def count(column: str) -> int | None:
        return int(master[column].fill_null(False).sum()) if column in master.columns else None

    summary: dict[str, Any] = {
        "images": master.height,
        "readable": count("readable"),
        "preprocessed": count("preproc_ok"),
        "aligned": count("aligned_ok"),
        "predicted": count("predicted"),
        "scored": int(master["attractiveness_raw"].is_not_null().sum())
        if "attractiveness_raw" in master.columns
        else 0,
        "low_confidence": count("low_confidence"),
    }
    rows = [[_esc(k), _num(v)] for k, v in summary.items()]
    return "<h2 id=overview>Overview</h2>" + _table(["images", "count"], rows), summary


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
    if (
        classifier_metrics
        and "metrics" in classifier_metrics
        and isinstance(classifier_metrics["metrics"], Mapping)
    ):
        classifier_metrics = classifier_metrics["metrics"]
    images: dict[str, bytes] = {}
    sections: dict[str, str] = {}
    overview, summary = _overview(master)
    body = [
        overview,
        _attributes_section(master, images, sections),
        _attractiveness_section(master, regressor, images, sections),
        _classifier_section(classifier_metrics, images, sections),
        _cluster_section(master, images, sections),
        _composites_section(composites, sections),
    ]
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in ("overview", *sections))
    page = (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1><p class=meta>Generated {_esc(when)} · {master.height} images · "
        f"charts are also saved as PNG files next to this page</p><nav>{nav}</nav>"
        + "".join(body)
        + "</body></html>\n"
    )
    summary["charts"] = len(images)
    summary["composites"] = len(composites)
    return Report(html=page, images=images, sections=sections, summary=summary)


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
