"""The stats report: matplotlib charts, the Jinja2 page, the face_statistics intervals (no Dagster).

``master()`` is also used by ``tests/dagster/test_report.py``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from PIL import Image

from facestats_core.attractiveness.evaluation import CrossValidation, Evaluation, HeldOutMetrics, RegressionMetrics
from facestats_core.report.build import REPORT_FILE, build_report, write_report
from facestats_core.report.inputs import CompositeItem, read_composites
from facestats_core.statistics.face_statistics import FACE_STATISTICS_SCHEMA

HOSTILE = "<script>alert(1)</script>"
FULL_SECTIONS = (
    "dataset",
    "faces",
    "attributes",
    "classifiers",
    "attractiveness",
    "clusters",
    "composites",
    "reproducibility",
)
ALL_CHARTS = {
    "attributes_gender.png",
    "attributes_age.png",
    "attributes_ethnicity.png",
    "attractiveness_histogram.png",
    "attractiveness_by_group.png",
    "classifier_accuracy.png",
    "fairness_gender.png",
    "cluster_ethnicity.png",
    "faces_per_image.png",
}


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decodes every pixel
        return image.size


def master(n: int = 12, scores: bool = True) -> pl.DataFrame:
    genders = ["male", "female"]
    ethnicities = ["white", "black", "east_asian"]
    rows = {
        "face_id": [f"{i:064x}_500_500" for i in range(n)],
        "image_id": [f"{i:064x}" for i in range(n)],
        "readable": [True] * n,
        "error": [None] * n,
        "reason": [None] * n,
        "chip_ok": [True] * n,
        "chip_error": [None] * n,
        "predicted": [i < n - 1 for i in range(n)],
        "gender": [genders[i % 2] if i < n - 1 else None for i in range(n)],
        "gender_source": ["manual" if i == 0 else "predicted" if i < n - 1 else "none" for i in range(n)],
        "gender_pred": [genders[i % 2] if i < n - 1 else None for i in range(n)],
        "age": ["20-29" if i % 3 else "70+" for i in range(n)],
        "age_source": ["predicted"] * n,
        "ethnicity": [ethnicities[i % 3] for i in range(n)],
        "ethnicity_source": ["predicted"] * n,
        "ethnicity_pred": [ethnicities[i % 3] for i in range(n)],
        "cluster": [i % 2 for i in range(n)],
        "low_confidence": [False] * n,
        "attractiveness_raw": [2.5 + 0.1 * i for i in range(n)] if scores else [None] * n,
    }
    return pl.DataFrame(
        rows,
        schema_overrides={
            "cluster": pl.Int32,
            "attractiveness_raw": pl.Float64,
            "error": pl.String,
            "reason": pl.String,
            "chip_error": pl.String,
        },
    )


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
REGRESSOR = Evaluation.from_dict({
    "metrics": {
        "mlp": {"pearson_r": 0.4, "mae": 0.5, "rmse": 0.6},
        "mean_baseline": {"pearson_r": None, "mae": 0.7, "rmse": 0.8},
        "ridge": {"pearson_r": 0.45, "mae": 0.48, "rmse": 0.59},
        "ridge_alpha": 1.0,
        "n_train": 40,
        "n_val": 10,
    }
})
"""A regressor file from before ``n_test``: its metrics were measured on the ``n_val`` rows."""
STATISTICS_SCHEMA = FACE_STATISTICS_SCHEMA


def _share(
    attr: str, key: str, slice_value: str, value: str, n: int, count: int, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in STATISTICS_SCHEMA}
    row.update(
        statistic="share",
        attribute=attr,
        slice_key=key,
        slice_value=slice_value,
        value=value,
        n=n,
        count=count,
        estimate=count / n,
        low=max(count / n - 0.1, 0),
        high=min(count / n + 0.1, 1),
        correction="none: no held-out confusion matrix",
        unstable=False,
    )
    row.update(extra)
    return row


def statistics_frame() -> pl.DataFrame:
    """A small hand-made face_statistics table: corrected gender (with true shares and one
    unstable row), uncorrected age, slices by age / cluster / a hostile composite, mean scores."""
    corrected = {"correction": "emq_bcts"}
    rows = [
        _share(
            "gender",
            "all",
            "all",
            "male",
            11,
            6,
            low=0.2468,
            high=0.8012,
            corrected=0.5731,
            corrected_low=0.3114,
            corrected_high=0.8342,
            true_n=8,
            true_share=0.625,
            **corrected,
        ),
        _share(
            "gender",
            "all",
            "all",
            "female",
            11,
            5,
            corrected=0.4269,
            corrected_low=0.1658,
            corrected_high=0.6886,
            true_n=8,
            true_share=0.375,
            unstable=True,
            note="confusion matrix nearly singular",
            **corrected,
        ),
        _share(
            "gender",
            "age",
            "20-29",
            "male",
            7,
            4,
            corrected=0.6,
            corrected_low=0.3,
            corrected_high=0.9,
            **corrected,
        ),
        _share(
            "gender",
            "age",
            "20-29",
            "female",
            7,
            3,
            corrected=0.4,
            corrected_low=0.1,
            corrected_high=0.7,
            **corrected,
        ),
        _share(
            "gender",
            "age",
            "70+",
            "male",
            4,
            2,
            corrected=0.5,
            corrected_low=0.2,
            corrected_high=0.8,
            **corrected,
        ),
        _share(
            "gender",
            "age",
            "70+",
            "female",
            4,
            2,
            corrected=0.5,
            corrected_low=0.2,
            corrected_high=0.8,
            **corrected,
        ),
        _share("gender", "composite", HOSTILE, "male", 2, 1, **corrected),
        _share("gender", "composite", HOSTILE, "female", 2, 1, **corrected),
        _share("age", "all", "all", "20-29", 12, 8),
        _share("age", "all", "all", "70+", 12, 4),
        _share("age", "cluster", "0", "20-29", 6, 4),
        _share("age", "cluster", "0", "70+", 6, 2),
        _share("ethnicity", "all", "all", "white", 12, 4),
        _share("ethnicity", "all", "all", "black", 12, 4),
        _share("ethnicity", "all", "all", "east_asian", 12, 4),
    ]
    means = [
        ("all", "all", 12, 3.05, 2.87, 3.23),
        ("gender", "male", 6, 3.0, 2.7, 3.3),
        ("gender", "female", 5, 3.1, 2.75, 3.42),
        ("cluster", "0", 6, 3.0, 2.8, 3.2),
    ]
    for grouping, value, n, mean, low, high in means:
        row: dict[str, Any] = {name: None for name in STATISTICS_SCHEMA}
        row.update(
            statistic="mean_score",
            attribute=grouping,
            slice_key="all",
            slice_value="all",
            value=value,
            n=n,
            count=n,
            estimate=mean,
            low=low,
            high=high,
            correction="none: mean",
            unstable=False,
        )
        rows.append(row)
    within = {**rows[-1], "attribute": "gender", "slice_key": "age", "slice_value": "70+", "value": "male"}
    rows.append({**within, "n": 2, "count": 2, "estimate": 2.9, "low": 2.1, "high": 3.7})
    return pl.DataFrame(rows, schema=STATISTICS_SCHEMA)


REPRODUCIBILITY = {"run id": "abc123", "CLIP model": "openai/clip-vit-base-patch32", "note": "<b>bold</b>"}


def _composites() -> list[CompositeItem]:
    thumb = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(thumb, format="JPEG")
    return [
        CompositeItem(
            spec="gender=female", file="gender.female.png", matched=5, used=5, thumbnail=thumb.getvalue()
        ),
        CompositeItem(spec=HOSTILE, file="x.png", matched=3, used=2, relaxed=("age",)),
    ]


def _section(page: str, key: str) -> str:
    match = re.search(rf'<section id="{key}">.*?</section>', page, re.DOTALL)
    assert match, key
    return match.group(0)


def _block(page: str, attr: str) -> str:
    match = re.search(rf'<h3 id="attribute-{attr}">.*?(?=<h3 id="attribute-|</section>)', page, re.DOTALL)
    assert match, attr
    return match.group(0)


@pytest.fixture(scope="module")
def full() -> Any:
    return build_report(
        master(), {"metrics": METRICS}, REGRESSOR, _composites(), statistics_frame(), REPRODUCIBILITY
    )


def test_full_report_has_every_section_and_chart(full: Any) -> None:
    assert full.sections == {k: "ok" for k in FULL_SECTIONS}
    assert list(full.sections) == list(FULL_SECTIONS)
    assert set(full.images) == ALL_CHARTS
    page = full.html
    assert "<title>FaceStats report</title>" in page
    assert page.count('<img class="chart" src="data:image/png;base64,') == len(full.images)
    for name, png in full.images.items():  # every PNG decodes, same width, and is the one inlined
        assert _png_size(png)[0] == 800, name
        assert base64.b64encode(png).decode() in page
    for uri in re.findall(r'src="data:image/(?:png|jpeg);base64,([^"]+)"', page):  # every <img> decodes
        _png_size(base64.b64decode(uri)) if uri.startswith("iVBOR") else Image.open(
            io.BytesIO(base64.b64decode(uri))
        ).load()
    assert page.count('<img class="thumb" src="data:image/jpeg;base64,') == 1
    assert "image missing" in page  # the second composite has no thumbnail
    assert full.summary["images"] == 12 and full.summary["scored"] == 12 and full.summary["predicted"] == 11
    assert full.summary["statistics_rows"] == statistics_frame().height and full.summary["charts"] == 9


def test_hostile_text_is_escaped_everywhere(full: Any) -> None:
    page = full.html
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page  # a classifier group name
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in _section(page, "reproducibility")
    # the hostile composite spec is also a slice of the statistics table
    assert "&lt;script&gt;" in _section(page, "attributes")


def test_shares_show_observed_and_corrected_intervals_and_true_share(full: Any) -> None:
    gender = _block(full.html, "gender")
    # observed share 6/11 with its Wilson interval; corrected with its bootstrap interval; true share
    assert re.search(r"<td class=\"num\">54\.5%</td>\s*<td class=\"num\">24\.7–80\.1%</td>", gender)
    assert re.search(r"<td class=\"num\">57\.3%</td><td class=\"num\">31\.1–83\.4%</td>", gender)
    assert "62.5%" in gender and "95% CI (Wilson)" in gender and "95% CI (bootstrap)" in gender
    assert "Correction: corrected for classifier errors and for the difference between this folder" in gender
    # the unstable row is marked, with its note
    assert re.search(r'<tr class="unstable">\s*<td>female \*</td>', gender)
    assert "unstable: confusion matrix nearly singular" in gender
    # the compact slice table: gender share by age, observed and corrected per cell
    table = re.search(r"gender share by age.*?</table>", gender, re.DOTALL).group(0)  # type: ignore[union-attr]
    assert ">20-29<" in table and ">70+<" in table and "57.1%" in table and "corr. 60.0%" in table
    assert "gender share by composite" in gender


def test_a_missing_correction_is_said_plainly(full: Any) -> None:
    age = _block(full.html, "age")
    assert "Correction: no correction for classifier errors: no held-out confusion matrix." in age
    assert "95% CI (bootstrap)" not in age and "true (labelled)" not in age
    assert "age share by cluster" in age


def test_fairness_view_has_wilson_intervals(full: Any) -> None:
    classifiers = _section(full.html, "classifiers")
    # female: accuracy 0.8 on 5 → Wilson 0.376–0.964; overall 0.9 on 10 → 0.596–0.982
    assert re.search(
        r"<td>female</td><td class=\"num\">5</td><td class=\"num\">0\.800</td>\s*"
        r"<td class=\"num\">0\.376–0\.964</td>",
        classifiers,
    )
    assert "0.596–0.982" in classifiers and "fairness_gender.png" in classifiers


def test_mean_scores_come_from_the_statistics_with_bootstrap_intervals(full: Any) -> None:
    section = _section(full.html, "attractiveness")
    assert "intervals: 95 % bootstrap" in section
    assert re.search(
        r"<td>gender</td><td>female</td><td class=\"num\">5</td>\s*<td class=\"num\">3\.100</td>"
        r"<td class=\"num\">2\.750–3\.420</td>",
        section,
    )
    # a mean within a slice: its own compact table
    table = re.search(r"mean score by gender within each age.*?</table>", section, re.DOTALL)
    assert (
        table and ">70+<" in table.group(0) and "2.900" in table.group(0) and "2.100–3.700" in table.group(0)
    )


def test_reproducibility_and_dataset_tables(full: Any) -> None:
    assert "<td>run id</td><td><code>abc123</code></td>" in _section(full.html, "reproducibility")
    dataset = _section(full.html, "dataset")
    assert "No failures recorded" in dataset and "<td>faces</td>" in dataset
    assert "<td>images without a face</td>" in dataset


def test_failures_are_counted_by_stage_and_reason() -> None:
    frame = master().with_columns(
        pl.when(pl.col("image_id").str.ends_with("1"))
        .then(pl.lit("cannot identify image file"))
        .alias("error"),
        pl.when(pl.col("image_id").str.ends_with("2") | pl.col("image_id").str.ends_with("3"))
        .then(pl.lit("no_face"))
        .alias("reason"),
    )
    dataset = _section(build_report(frame).html, "dataset")
    assert re.search(
        r"<td>decode</td><td class=\"reason\">cannot identify image file</td><td class=\"num\">1</td>",
        dataset,
    )
    assert re.search(
        r"<td>no usable face</td><td class=\"reason\">no_face</td><td class=\"num\">2</td>", dataset
    )


def test_without_statistics_the_shares_are_observed_only() -> None:
    report = build_report(master(), {"metrics": METRICS}, REGRESSOR)
    assert report.sections["attributes"] == "observed only (no face_statistics)"
    assert report.sections["attractiveness"] == "ok"
    assert report.sections["reproducibility"] == "no reproducibility record"
    assert set(report.images) == ALL_CHARTS
    attributes = _section(report.html, "attributes")
    assert "No face_statistics table" in attributes and "95% CI" not in attributes
    gender = _block(report.html, "gender")
    assert "Counted on the predicted values (gender_pred); 1 image without one is not counted." in gender
    assert re.search(
        r"<td>male</td><td class=\"num\">6</td><td class=\"num\">11</td>\s*"
        r"<td class=\"num\">54\.5%</td>",
        gender,
    )
    assert "Final values: 1 manual · 10 predicted · 1 none" in gender
    # mean scores computed from the master, with a bootstrap interval computed by the report
    section = _section(report.html, "attractiveness")
    assert "95 % bootstrap (computed here)" in section and re.search(
        r"<td>all</td><td>all</td><td class=\"num\">12</td>", section
    )


def _fold(mlp_rmse: float, ridge_rmse: float) -> HeldOutMetrics:
    return HeldOutMetrics(RegressionMetrics(0.4, 0.5, mlp_rmse), RegressionMetrics(float("nan"), 0.7, 0.8),
                          RegressionMetrics(0.43, 0.49, ridge_rmse), 1.0, 34, 6, 10)


def test_regressor_split_sizes_and_cross_validation_table() -> None:
    held_out = HeldOutMetrics(REGRESSOR.held_out.mlp, REGRESSOR.held_out.mean_baseline, REGRESSOR.held_out.ridge,
                              1.0, 34, 6, 10)
    cv = CrossValidation(tuple(_fold(m, r) for m, r in ((0.6, 0.61), (0.62, 0.6), (0.64, 0.6), (0.58, 0.6),
                                                         (0.62, 0.61))), seed=0)
    page = build_report(master(), None, Evaluation(held_out, cv)).html
    assert "held-out test: n = 10; fitted on 34, early stopping on 6" in page
    table = re.search(r"<h3>5-fold cross-validation.*?</p>", page, re.DOTALL).group(0)  # type: ignore[union-attr]
    rmse = cv.summary("mlp", "rmse")
    assert f"{rmse.mean:.3f} ± {rmse.std:.3f}" in table and "0.800 ± 0.000" in table  # the mean baseline
    assert "beats ridge in 2 of 5 folds" in table and cv.mlp_wins("ridge") == 2
    assert f"MLP − ridge RMSE {cv.mlp_minus_ridge_rmse().mean:.3f}" in table
    # files written before n_test existed scored on n_val rows
    old = build_report(master(), None, REGRESSOR).html
    assert "held-out test: n = 10; fitted on 40" in old and "cross-validation" not in old


def test_missing_inputs_leave_a_note_in_their_section() -> None:
    frame = master(scores=False).drop("cluster")
    report = build_report(frame, None, None, [])
    assert report.sections == {
        "dataset": "ok",
        "faces": "ok",
        "attributes": "observed only (no face_statistics)",
        "classifiers": "no classifier metrics",
        "attractiveness": "no attractiveness scores",
        "clusters": "no clusters",
        "composites": "no composites",
        "reproducibility": "no reproducibility record",
    }
    assert "No attractiveness regressor" in report.html and "No attractiveness scores" in report.html
    assert "No classifier metrics" in report.html and "No reproducibility record" in report.html
    assert set(report.images) == {"attributes_gender.png", "attributes_age.png", "attributes_ethnicity.png",
                                  "faces_per_image.png"}
    empty = build_report(pl.DataFrame({"image_id": []}, schema={"image_id": pl.String}))
    assert (
        empty.sections["attributes"] == "no attribute columns in the master table" and "<title>" in empty.html
    )
    assert empty.images == {}


def test_statistics_without_a_required_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="estimate"):
        build_report(master(), statistics=statistics_frame().drop("estimate"))


def test_statistics_with_only_the_required_columns_render() -> None:
    slim = statistics_frame().select(
        "statistic", "attribute", "slice_key", "slice_value", "value", "n", "estimate"
    )
    report = build_report(master(), statistics=slim)
    assert report.sections["attributes"] == "ok" and "attributes_gender.png" in report.images


def test_write_report_is_atomic_and_drops_stale_charts(tmp_path: Path) -> None:
    folder = tmp_path / "report"
    first = write_report(build_report(master(), {"metrics": METRICS}, REGRESSOR), folder)
    assert (folder / "attractiveness_histogram.png").exists() and first[REPORT_FILE] == folder / REPORT_FILE
    write_report(build_report(master(scores=False)), folder)  # no scores now: the histogram goes
    names = sorted(p.name for p in folder.iterdir())
    assert "attractiveness_histogram.png" not in names and REPORT_FILE in names
    assert not [n for n in names if n.startswith(".")]  # no temporary files left


def test_charts_are_reproducible() -> None:
    first = build_report(master(), {"metrics": METRICS}, REGRESSOR, statistics=statistics_frame())
    second = build_report(master(), {"metrics": METRICS}, REGRESSOR, statistics=statistics_frame())
    assert first.images == second.images


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


def _jpeg_side(data: bytes | None) -> int:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        return max(image.size)


def test_missing_columns_do_not_break_the_report() -> None:
    dropped = ["gender_source", "gender_pred", "cluster", "attractiveness_raw", "error", "ethnicity_pred"]
    report = build_report(master().drop(dropped), {"metrics": METRICS}, REGRESSOR)
    assert "<title>FaceStats report</title>" in report.html
    assert "Counted on the final (manual, else predicted) values (gender)" in report.html
    assert report.sections["clusters"] == "no clusters"


def test_importing_the_report_does_not_import_matplotlib() -> None:
    code = (
        "import sys, facestats_core.report.build, facestats_core.report.figures; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_reason_shared_by_every_unstable_row_is_said_once() -> None:
    reason = "fewer than 20 held-out faces of true class male (7)"
    corrected = {"correction": "emq_bcts", "corrected": 0.5, "corrected_low": 0.1,
                 "corrected_high": 0.9, "unstable": True, "note": reason}
    rows = [_share("gender", "all", "all", value, 12, 6, **corrected) for value in ("male", "female")]
    stats = pl.DataFrame(rows, schema=STATISTICS_SCHEMA)
    gender = _block(build_report(master(), statistics=stats).html, "gender")
    assert gender.count(reason) == 1 and f"Every row is unstable: {reason}." in gender
    assert "<th>note</th>" not in gender and '<td>male *</td>' in gender
    assert f'<p class="unstable-note">Every row is unstable: {reason}.</p>' in gender


def test_out_of_domain_share_of_scored_faces() -> None:
    from facestats_core.report.sections.attractiveness import out_of_domain_note

    scored = pl.DataFrame({"ethnicity": ["white", "east_asian", "black", "indian", None]})
    note = out_of_domain_note(scored)
    assert note is not None and note.startswith("Out of domain: 2 of 4 scored faces (50.0%")
    assert out_of_domain_note(pl.DataFrame({"ethnicity": [None]}, schema={"ethnicity": pl.String})) is None
    assert out_of_domain_note(pl.DataFrame({"x": [1]})) is None
    section = _section(build_report(master()).html, "attractiveness")
    assert "Out of domain: 4 of 12 scored faces" in section  # master(): ethnicities cycle white, black, east_asian


def test_faces_section_counts_faces_per_image_and_shows_the_busiest_photo(tmp_path) -> None:
    from facestats_core.report.face_previews import read_face_previews

    raw, chips = tmp_path / "raw", tmp_path / "chips"
    raw.mkdir()
    chips.mkdir()
    Image.new("RGB", (300, 200), (90, 90, 90)).save(raw / "group.jpg")
    for i in range(3):
        Image.new("RGB", (40, 40), (40 * i, 0, 0)).save(chips / f"c{i}.jpg")
    frame = pl.DataFrame({
        "face_id": ["g_1", "g_2", "s_1", None], "image_id": ["g", "g", "s", "n"],
        "path": ["group.jpg", "group.jpg", "single.jpg", "none.jpg"], "readable": [True] * 4,
        "chip_path": ["c0.jpg", "c1.jpg", "c2.jpg", None], "box_x0": [10.0, 150.0, 5.0, None],
        "box_y0": [10.0, 20.0, 5.0, None], "box_x1": [90.0, 250.0, 30.0, None], "box_y1": [90.0, 120.0, 30.0, None],
    })
    previews = read_face_previews(frame, chips, raw)
    assert previews.busiest_caption == "group.jpg: 2 faces"
    assert Image.open(io.BytesIO(previews.busiest)).size == (300, 200)  # outlined, not enlarged
    from facestats_core.report.sections.faces import faces_section

    section = faces_section(frame, previews)
    assert (section.view.faces, section.view.images, section.view.multi_face_images) == (3, 3, 1)
    assert section.view.chips_uri.startswith("data:image/jpeg;base64,") and section.status == "ok"



def test_faces_section_counts_quality_verdicts_and_reasons() -> None:
    from facestats_core.report.sections.faces import faces_section

    frame = pl.DataFrame({
        "face_id": ["a", "b", "c", None], "image_id": ["a", "b", "c", "n"], "readable": [True] * 4,
        "quality": ["good", "poor", "poor", None],
        "quality_reasons": pl.Series([[], ["profile", "blurry"], ["profile"], None], dtype=pl.List(pl.String)),
    })
    view = faces_section(frame).view
    assert view.quality == (("good", 1), ("poor", 2)) and view.poor_reasons == (("profile", 2), ("blurry", 1))
    faces = _section(build_report(frame).html, "faces")
    assert "1 good, 2 poor" in faces and "(poor: profile 2, blurry 1)" in faces and "quality=any" in faces
    assert "Face quality" not in _section(build_report(frame.drop("quality", "quality_reasons")).html, "faces")
