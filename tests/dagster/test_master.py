"""Master metadata: the pure join (precedence, one row per image) and the asset with its check."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from facestats_core.analysis.master import MASTER_COLUMNS, REQUIRED_COLUMNS, build_master, check_master
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import Layout
from facestats_dagster.definitions import defs
from facestats_dagster.partitions import ALL_SHARDS_RANGE
from facestats_dagster.resources import CompositesResource
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from tests.dagster.resources import make_resources

AGE_BINS = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"]


def predictions(ids: list[str], gender: list[str], age: list[str], ethnicity: list[str]) -> pl.DataFrame:
    """An ``attributes`` table as the pipeline writes it (probability vectors included)."""
    n = len(ids)
    return pl.DataFrame(
        {
            "image_id": ids,
            "path": [f"demo/{i}.jpg" for i in ids],
            "gender_pred": gender,
            "gender_prob": [0.9] * n,
            "gender_probs": [[0.1, 0.9]] * n,
            "age_pred": age,
            "age_prob": [0.5] * n,
            "age_probs": [[0.5] + [0.0625] * 8] * n,
            "ethnicity_pred": ethnicity,
            "ethnicity_prob": [0.4] * n,
            "ethnicity_probs": [[0.4] + [0.1] * 6] * n,
            "race4_pred": ["other"] * n,
        },
        schema_overrides={
            "gender_prob": pl.Float32, "age_prob": pl.Float32, "ethnicity_prob": pl.Float32,
            "gender_probs": pl.Array(pl.Float32, 2), "age_probs": pl.Array(pl.Float32, 9),
            "ethnicity_probs": pl.Array(pl.Float32, 7),
        },
    )


def manual(rows: list[tuple[str, str | None, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"image_id": pl.String, "gender": pl.String, "age": pl.String, "ethnicity": pl.String},
        orient="row",
    )


# --------------------------------------------------------------------------- core


def test_build_master_one_row_per_raw_image_and_manual_beats_predicted() -> None:
    raw = pl.DataFrame(
        {
            "image_id": ["d", "a", "b", "c"],
            "path": ["d.jpg", "a.jpg", "b.jpg", "c.txt"],
            "readable": [True, True, True, False],
            "error": [None, None, None, "not_an_image"],
            "width": [64, 64, 64, None],
            "height": [64, 64, 64, None],
        }
    )
    pre = pl.DataFrame(
        {"image_id": ["a", "b", "c", "d"], "ok": [True, True, False, True],
         "output_path": ["a.jpg", "b.jpg", None, "d.jpg"], "flags": [[], [], ["unreadable"], []]}
    )
    attrs = predictions(["a", "b", "d", "ghost"], ["male", "female", "male", "male"],
                        ["20-29", "30-39", "70+", "0-2"], ["white", "east_asian", "black", "indian"])
    overrides = manual([("a", "female", None, None), ("b", None, "40-49", "indian"), ("a", "male", None, None)])
    flags = pl.DataFrame({"image_id": ["a", "c"], "flags": [["blurry"], ["unreadable"]],
                          "low_confidence": [False, None], "near_duplicate_of": [None, None]})
    clusters = pl.DataFrame({"image_id": ["a", "b", "d"], "cluster": [0, 1, 1]}, schema_overrides={"cluster": pl.Int32})
    scores = pl.DataFrame({"image_id": ["a", "b"], "attractiveness_raw": [3.0, 2.0],
                           "attractiveness_percentile": [75.0, 25.0], "attractiveness_decile": [8, 3]},
                          schema_overrides={"attractiveness_decile": pl.Int8})
    table, stats = build_master(raw, pre, None, attrs, overrides, flags, clusters, scores)

    assert table.columns == list(MASTER_COLUMNS)
    assert table["image_id"].to_list() == ["a", "b", "c", "d"]  # every raw image, sorted, no ghost
    rows = {row["image_id"]: row for row in table.iter_rows(named=True)}
    # manual > predicted, per attribute, with the source and the raw prediction kept
    assert (rows["a"]["gender"], rows["a"]["gender_source"], rows["a"]["gender_pred"]) == ("female", "manual", "male")
    assert (rows["a"]["age"], rows["a"]["age_source"]) == ("20-29", "predicted")
    assert (rows["b"]["gender"], rows["b"]["gender_source"]) == ("female", "predicted")
    assert (rows["b"]["age"], rows["b"]["age_source"], rows["b"]["age_pred"]) == ("40-49", "manual", "30-39")
    assert (rows["b"]["ethnicity"], rows["b"]["race4"], rows["b"]["race4_pred"]) == ("indian", "indian", "other")
    # the unreadable file is there, with nothing predicted
    assert rows["c"]["readable"] is False and rows["c"]["preproc_ok"] is False
    assert (rows["c"]["gender"], rows["c"]["gender_source"], rows["c"]["predicted"]) == (None, "none", False)
    assert rows["c"]["flags"] == ["unreadable"] and rows["d"]["flags"] == []
    assert rows["d"]["attractiveness_decile"] is None and rows["a"]["attractiveness_decile"] == 8
    assert rows["d"]["aligned_ok"] is False  # no aligned manifest given
    assert stats.orphans == {"attributes": 1} and stats.duplicates == {"manual": 1}
    assert stats.sources["gender"] == {"manual": 1, "predicted": 2, "none": 1}
    assert check_master(table) == {"rows": 4, "missing_columns": [], "duplicated_ids": 0, "null_ids": 0,
                                   "bad_sources": {}}


def test_check_master_reports_problems() -> None:
    table, _ = build_master(pl.DataFrame({"image_id": ["a", "b"], "path": ["a", "b"], "readable": [True, True]}))
    report = check_master(pl.concat([table, table.head(1)]).drop("cluster"))
    assert report["duplicated_ids"] == 2 and report["missing_columns"] == ["cluster"]
    assert set(REQUIRED_COLUMNS) <= set(table.columns)


# --------------------------------------------------------------------------- asset


def resources(root: Path, **composites: object) -> dict[str, dg.ConfigurableResource]:
    return make_resources(
        root, root.parent / "models",
        composites=CompositesResource(**{"detector": "none", "output_size": 64, **composites}),  # type: ignore[arg-type]
    )


def materialize_images(root: Path, instance: dg.DagsterInstance, **composites: object) -> dg.ExecuteInJobResult:
    """raw_images, preprocessed_images and aligned_faces over all shards, in one run."""
    first, last = ALL_SHARDS_RANGE.split("...")
    result = dg.materialize(
        list(defs.assets), resources=resources(root, **composites), instance=instance,
        selection=["raw_images", "preprocessed_images", "aligned_faces"],
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
    assert result.success
    return result


def write_analysis_tables(root: Path, overrides: pl.DataFrame | None = None) -> list[str]:
    """Stand-ins for the CLIP-based tables (attributes … scores) of every readable image."""
    layout = Layout.from_roots(root, root.parent / "models")
    raw = layout.read_partitions("raw_images").filter(pl.col("readable")).sort("path")
    ids = raw["image_id"].to_list()
    n = len(ids)
    genders = ["female" if i % 2 else "male" for i in range(n)]
    attrs = predictions(ids, genders, [AGE_BINS[3 + i % 3] for i in range(n)], ["white"] * n)
    atomic_write_parquet(layout.artifact("attributes"), attrs)
    atomic_write_parquet(layout.artifact("manual_labels"), overrides if overrides is not None else manual([]))
    atomic_write_parquet(layout.artifact("attribute_flags"), pl.DataFrame(
        {"image_id": ids, "flags": [[]] * n, "low_confidence": [False] * n, "near_duplicate_of": [None] * n},
        schema_overrides={"flags": pl.List(pl.String), "near_duplicate_of": pl.String}))
    atomic_write_parquet(layout.artifact("embedding_clusters"), pl.DataFrame(
        {"image_id": ids, "cluster": [i % 2 for i in range(n)]}, schema_overrides={"cluster": pl.Int32}))
    pct = np.linspace(0, 100, n)
    atomic_write_parquet(layout.artifact("attractiveness_scores"), pl.DataFrame(
        {"image_id": ids, "attractiveness_raw": pct / 25 + 1, "attractiveness_percentile": pct,
         "attractiveness_decile": np.minimum(pct // 10 + 1, 10).astype(np.int8)}))
    return ids


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("master") / "data"
    generate_demo_dataset(root, DemoSpec(n_images=12, size=64, seed=1))
    (root / "raw" / "notes.txt").write_text("not an image")
    materialize_images(root, dg.DagsterInstance.ephemeral())
    return root


def test_master_asset_joins_everything_and_passes_its_check(small_demo) -> None:
    ids = write_analysis_tables(small_demo)
    overrides = manual([(ids[0], "female", "70+", None)])
    write_analysis_tables(small_demo, overrides)
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks], resources=resources(small_demo), selection=["master_metadata"],
    )
    assert result.success
    layout = Layout.from_roots(small_demo, "models")
    table = pl.read_parquet(layout.artifact("master_metadata"))
    assert layout.artifact("master_metadata").path.endswith("processed/metadata/master.parquet")
    raw = layout.read_partitions("raw_images")
    assert sorted(table["image_id"].to_list()) == sorted(raw["image_id"].to_list())  # unreadable included
    assert table["image_id"].is_unique().all()
    unreadable = table.filter(~pl.col("readable"))
    assert unreadable.height == 1 and unreadable["path"][0] == "notes.txt"
    assert unreadable["alignment_error"][0] == "not_preprocessed"
    first = table.filter(pl.col("image_id") == ids[0]).row(0, named=True)
    assert (first["gender"], first["gender_source"], first["gender_pred"]) == ("female", "manual", "male")
    assert (first["age"], first["age_source"]) == ("70+", "manual")
    assert (first["ethnicity"], first["ethnicity_source"]) == ("white", "predicted")
    # the demo's truth file gives every demo face its eyes: all aligned
    assert table.filter(pl.col("readable"))["aligned_ok"].all()
    assert set(table.filter(pl.col("readable"))["eyes_source"]) == {"landmarks"}
    meta = result.asset_materializations_for_node("master_metadata")[0].metadata
    assert meta["images"].value == 13 and meta["aligned"].value == 12
    assert "| gender | 1 | 11 | 1 |" in meta["attribute_sources"].value
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "master_one_row_per_image" and check.passed
    assert check.metadata["rows"].value == 13
