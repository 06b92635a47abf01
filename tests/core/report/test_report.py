"""The stats report: PIL charts and the self-contained HTML page (no Dagster)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from facestats_core.report.build import REPORT_FILE, build_report, write_report
from facestats_core.report.charts import BarGroup, BarRow, hbar_chart, heatmap, histogram, nice_ticks
from facestats_core.report.inputs import CompositeItem, read_composites, read_json


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def master(n: int = 12, scores: bool = True) -> pl.DataFrame:
    genders = ["male", "female"]
    ethnicities = ["white", "black", "east_asian"]
    rows = {
        "image_id": [f"{i:064x}" for i in range(n)],
        "readable": [True] * n,
        "preproc_ok": [True] * n,
        "aligned_ok": [True] * n,
        "predicted": [i < n - 1 for i in range(n)],
        "gender": [genders[i % 2] if i < n - 1 else None for i in range(n)],
        "gender_source": ["manual" if i == 0 else "predicted" if i < n - 1 else "none" for i in range(n)],
        "age": ["20-29" if i % 3 else "70+" for i in range(n)],
        "age_source": ["predicted"] * n,
        "ethnicity": [ethnicities[i % 3] for i in range(n)],
        "ethnicity_source": ["predicted"] * n,
        "ethnicity_pred": [ethnicities[i % 3] for i in range(n)],
        "cluster": [i % 2 for i in range(n)],
        "low_confidence": [False] * n,
        "attractiveness_raw": [2.5 + 0.1 * i for i in range(n)] if scores else [None] * n,
    }
    return pl.DataFrame(rows, schema_overrides={"cluster": pl.Int32, "attractiveness_raw": pl.Float64})


METRICS = {
    "gender": {
        "accuracy": 0.9,
        "balanced_accuracy": 0.88,
        "majority_baseline_accuracy": 0.5,
        "n_train": 40,
        "n_val": 10,
        "C": 1.0,
        "per_group": {
            "gender": {"male": {"accuracy": 1.0, "n": 5}, "female": {"accuracy": 0.8, "n": 5}},
            "ethnicity": {"white": {"accuracy": 0.5, "n": 4}, "<b>x</b>": {"accuracy": 1.0, "n": 6}},
        },
    },
}
REGRESSOR = {
    "metrics": {
        "mlp": {"pearson_r": 0.4, "mae": 0.5, "rmse": 0.6},
        "mean_baseline": {"pearson_r": None, "mae": 0.7, "rmse": 0.8},
        "n_train": 40,
        "n_val": 10,
    }
}


def test_charts_are_pngs_of_sensible_size() -> None:
    bars = hbar_chart("t", [BarGroup("g", [BarRow("a", [3, 2]), BarRow("b", [0, 1])])], series=("x", "y"))
    width, height = _png_size(bars)
    assert width == 760 and 100 < height < 400
    side = hbar_chart(
        "t",
        [BarGroup(None, [BarRow("a", [0.5, 0.2])])],
        series=("x", "y"),
        stacked=False,
        x_max=1.0,
        reference=0.4,
        reference_label="overall",
    )
    assert _png_size(side)[0] == 760
    assert _png_size(histogram("h", [1.0, 2.0, 2.5, float("nan")], bins=5))[1] == 320
    assert _png_size(histogram("empty", []))[0] == 760  # no values: empty axes, no error
    assert _png_size(heatmap("m", ["r0", "r1"], ["c0", "c1", "c2"], [[1, 2, 3], [0, 0, 9]]))[1] > 100
    assert nice_ticks(7) == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert nice_ticks(2, integer=True) == [0.0, 1.0, 2.0]
    assert nice_ticks(0) == [0.0, 1.0]


def test_report_has_every_section_with_charts_and_escapes_text() -> None:
    thumb = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(thumb, format="JPEG")
    items = [
        CompositeItem(
            spec="gender=female", file="gender.female.png", matched=5, used=5, thumbnail=thumb.getvalue()
        ),
        CompositeItem(spec="<script>alert(1)</script>", file="x.png", matched=3, used=2, relaxed=("age",)),
    ]
    report = build_report(master(), {"metrics": METRICS}, REGRESSOR, items)
    assert report.sections == {
        k: "ok" for k in ("attributes", "attractiveness", "classifiers", "clusters", "composites")
    }
    assert set(report.images) == {
        "attributes_gender.png",
        "attributes_age.png",
        "attributes_ethnicity.png",
        "attractiveness_histogram.png",
        "attractiveness_by_group.png",
        "classifier_accuracy.png",
        "fairness_gender.png",
        "cluster_ethnicity.png",
    }
    page = report.html
    assert "<title>FaceStats report</title>" in page
    assert page.count('<img class="chart" src="data:image/png;base64,') == len(report.images)
    assert page.count('<img class="thumb" src="data:image/jpeg;base64,') == 1
    assert "image missing" in page  # the second composite has no thumbnail
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert (
        report.summary["images"] == 12
        and report.summary["scored"] == 12
        and report.summary["predicted"] == 11
    )
    # manual and predicted sources are counted apart; the image without a value is "(none)"
    gender_table = re.search(r"<h3>gender</h3>.*?</table>", page, re.DOTALL).group(0)  # type: ignore[union-attr]
    assert re.search(r"<td[^>]*>male</td><td[^>]*>1</td><td[^>]*>5</td>", gender_table)
    assert "(none)" in gender_table


def test_regressor_split_sizes_and_cross_validation_table() -> None:
    regressor = {
        "metrics": {**REGRESSOR["metrics"], "n_train": 34, "n_val": 6, "n_test": 10},
        "cross_validation": {
            "k": 5,
            "summary": {
                "mlp": {"pearson_r": {"mean": 0.41, "std": 0.05}, "mae": {"mean": 0.5, "std": 0.01},
                        "rmse": {"mean": 0.612, "std": 0.02}},
                "ridge": {"pearson_r": {"mean": 0.43, "std": 0.04}, "mae": {"mean": 0.49, "std": 0.01},
                          "rmse": {"mean": 0.605, "std": 0.02}},
                "mean_baseline": {"pearson_r": {"mean": None, "std": None}, "mae": {"mean": 0.7, "std": 0.03},
                                  "rmse": {"mean": 0.8, "std": 0.04}},
            },
            "mlp_minus_ridge_rmse": {"mean": 0.007, "std": 0.003},
            "mlp_wins_vs_ridge": 1,
        },
    }
    page = build_report(master(), {"metrics": METRICS}, regressor, []).html
    assert "held-out test: n = 10; fitted on 34, early stopping on 6" in page
    cv = re.search(r"<h3>5-fold cross-validation.*?</p>", page, re.DOTALL).group(0)  # type: ignore[union-attr]
    assert "0.612 ± 0.020" in cv and "0.605 ± 0.020" in cv and "beats ridge in 1 of 5 folds" in cv
    # files written before n_test existed scored on n_val rows
    old = build_report(master(), {"metrics": METRICS}, REGRESSOR, []).html
    assert "held-out test: n = 10; fitted on 40" in old and "cross-validation" not in old


def test_missing_inputs_leave_a_note_in_their_section() -> None:
    frame = master(scores=False).drop("cluster")
    report = build_report(frame, None, None, [])
    assert report.sections["attributes"] == "ok"
    assert report.sections["attractiveness"] == "no attractiveness scores"
    assert report.sections["classifiers"] == "no classifier metrics"
    assert report.sections["clusters"] == "no clusters"
    assert report.sections["composites"] == "no composites"
    assert "No attractiveness regressor" in report.html and "No attractiveness scores" in report.html
    assert set(report.images) == {"attributes_gender.png", "attributes_age.png", "attributes_ethnicity.png"}
    empty = build_report(pl.DataFrame({"image_id": []}, schema={"image_id": pl.String}))
    assert empty.sections["attributes"] != "ok" and "<title>" in empty.html


def test_write_report_is_atomic_and_drops_stale_charts(tmp_path: Path) -> None:
    folder = tmp_path / "report"
    first = write_report(build_report(master(), {"metrics": METRICS}, REGRESSOR), folder)
    assert (folder / "attractiveness_histogram.png").exists() and first[REPORT_FILE] == folder / REPORT_FILE
    write_report(build_report(master(scores=False)), folder)  # no scores now: the histogram goes
    names = sorted(p.name for p in folder.iterdir())
    assert "attractiveness_histogram.png" not in names and REPORT_FILE in names
    assert not [n for n in names if n.startswith(".")]  # no temporary files left


def test_read_composites_skips_foreign_json_and_paths_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "composites"
    folder.mkdir()
    Image.new("RGB", (300, 300), "gray").save(folder / "all.png")
    (folder / "all.json").write_text(
        json.dumps({"spec": "all", "image_file": "all.png", "matched": 9, "used": 9})
    )
    (folder / "evil.json").write_text(json.dumps({"spec": "evil", "image_file": "../secret.png"}))
    (folder / "other.json").write_text(json.dumps({"not": "a composite"}))
    (folder / "broken.json").write_text("{")
    items = read_composites(folder)
    assert [i.spec for i in items] == ["all", "evil"]
    assert _jpeg_side(items[0].thumbnail) == 192 and items[1].thumbnail is None
    assert read_composites(tmp_path / "missing") == []
    assert read_json(tmp_path / "missing.json") is None


def _jpeg_side(data: bytes | None) -> int:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        return max(image.size)


@pytest.mark.parametrize("column", ["gender_source", "cluster", "attractiveness_raw"])
def test_missing_columns_do_not_break_the_report(column: str) -> None:
    report = build_report(master().drop(column), {"metrics": METRICS}, REGRESSOR)
    assert "<title>FaceStats report</title>" in report.html
