"""The `face_statistics` asset: shares with intervals, corrected with the stored classifiers'
held-out confusion matrices, true shares from the data set's labels, composite slices."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl

from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import Layout
from facestats_core.labels.vocab import FAIRFACE_AGE, FAIRFACE_GENDER, FAIRFACE_RACE
from facestats_core.statistics.face_statistics import FACE_STATISTICS_SCHEMA
from facestats_dagster.definitions import defs
from facestats_dagster.resources import LabelsResource
from facestats_core.statistics.face_statistics import METHOD, MIN_CORRECTED_N, NO_CALIBRATION, SMALL_SLICE
from tests.core.statistics.synthetic_master import synthetic_master
from tests.dagster.models import save_small_models
from tests.dagster.resources import make_resources


def _prepare(tmp_path: Path, models: bool) -> tuple[Layout, pl.DataFrame, pl.DataFrame]:
    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    master, _, truth = synthetic_master(n=300, seed=3)
    master = master.with_columns(pl.col("face_id").alias("image_id"), (pl.col("face_id") + ".jpg").alias("path"),
                                 pl.lit(None, pl.String).alias("reason"))
    # images without a face are rows of the master table too (face_id null, a reason): never counted
    faceless = pl.DataFrame({"face_id": [None, None], "image_id": ["noface1", "noface2"],
                             "path": ["noface1.jpg", "noface2.jpg"], "reason": ["no_face", "unreadable"]},
                            schema_overrides={"face_id": pl.String})
    atomic_write_parquet(layout.artifact("master_metadata"), pl.concat([master, faceless], how="diagonal_relaxed"))
    if models:
        save_small_models(layout.model_root)
    layout.composites_dir.mkdir(parents=True)
    members = master["face_id"].head(40).to_list()
    (layout.composites_dir / "all.json").write_text(json.dumps({"spec": "all", "face_ids": members}))
    return layout, master, truth


def _materialize(tmp_path: Path, labels: LabelsResource) -> dg.ExecuteInJobResult:
    resources = make_resources(tmp_path / "data", tmp_path / "models", labels=labels)
    return dg.materialize(list(defs.assets), resources=resources, selection=["face_statistics"],
                          instance=dg.DagsterInstance.ephemeral())


def test_face_statistics_corrects_with_the_stored_classifiers(tmp_path: Path) -> None:
    layout, _, _ = _prepare(tmp_path, models=True)
    result = _materialize(tmp_path, LabelsResource(fairface_labels=""))
    assert result.success
    table = pl.read_parquet(layout.artifact("face_statistics"))
    assert dict(table.schema) == FACE_STATISTICS_SCHEMA
    shares = table.filter(pl.col("statistic") == "share")
    large = shares.filter(pl.col("n") >= MIN_CORRECTED_N)
    assert set(large["correction"]) == {METHOD} and large["corrected"].is_not_null().all()
    small = shares.filter(pl.col("n") < MIN_CORRECTED_N)
    assert small.height and set(small["correction"]) == {SMALL_SLICE} and small["corrected"].is_null().all()
    assert shares["true_share"].is_null().all()
    whole = shares.filter((pl.col("attribute") == "gender") & (pl.col("slice_key") == "all"))
    assert whole["value"].to_list() == ["male", "female"] and whole["n"].to_list() == [300, 300]
    assert (whole["low"] <= whole["estimate"]).all() and (whole["estimate"] <= whole["high"]).all()
    assert shares.filter(pl.col("slice_key") == "composite")["n"].max() == 40
    assert table.filter(pl.col("statistic") == "mean_score").height > 0
    metadata = result.asset_materializations_for_node("face_statistics")[0].metadata
    assert metadata["shares_gender"].value.startswith("| value | n | observed (95 % CI) |")
    assert metadata["composites"].value == 1 and metadata["corrected_rows"].value == large.height


def test_face_statistics_without_classifiers_is_green_and_says_why(tmp_path: Path) -> None:
    layout, _, _ = _prepare(tmp_path, models=False)
    assert _materialize(tmp_path, LabelsResource(fairface_labels="")).success
    shares = pl.read_parquet(layout.artifact("face_statistics")).filter(pl.col("statistic") == "share")
    assert shares["corrected"].is_null().all()
    assert set(shares["correction"]) == {NO_CALIBRATION}


def test_face_statistics_reports_true_shares_from_the_labels(tmp_path: Path) -> None:
    layout, master, truth = _prepare(tmp_path, models=True)
    layout.labels_dir.mkdir(parents=True)
    labels = truth.join(master.select("face_id", "path"), on="face_id").select(
        pl.col("path").alias("file"),
        pl.col("age").replace_strict(FAIRFACE_AGE),
        pl.col("gender").replace_strict(FAIRFACE_GENDER),
        pl.col("ethnicity").replace_strict(FAIRFACE_RACE).alias("race"),
    )
    # labels of the images without a face are not truth about any face
    labels = pl.concat([labels, pl.DataFrame({"file": ["noface1.jpg", "noface2.jpg"], "age": ["20-29"] * 2,
                                              "gender": ["Male"] * 2, "race": ["White"] * 2})])
    labels.write_csv(layout.labels_dir / "fairface_labels.csv")
    assert _materialize(tmp_path, LabelsResource(fairface_labels="labels/fairface_labels.csv")).success
    table = pl.read_parquet(layout.artifact("face_statistics")).filter(pl.col("statistic") == "share")
    whole = table.filter((pl.col("attribute") == "gender") & (pl.col("slice_key") == "all"))
    expected = truth["gender"].value_counts(normalize=True)
    share = dict(zip(expected["gender"], expected["proportion"], strict=True))
    for row in whole.iter_rows(named=True):
        assert row["true_n"] == 300
        assert abs(row["true_share"] - share.get(row["value"], 0.0)) < 1e-9
