"""Master metadata: the pure join (precedence, one row per face, one per faceless image) and the asset with its check."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from facestats_core.analysis.master import MASTER_COLUMNS, REQUIRED_COLUMNS, build_master, check_master
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import ARTIFACTS, Layout
from facestats_dagster.definitions import defs
from facestats_dagster.partitions import ALL_SHARDS_RANGE
from facestats_dagster.resources import CompositesResource, FacesResource
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from tests.dagster.resources import make_resources

AGE_BINS = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"]


def image_of(face_id: str) -> str:
    """The image id of a face id ``<image>_<x>_<y>``."""
    return face_id.split("_")[0]


def predictions(ids: list[str], gender: list[str], age: list[str], ethnicity: list[str]) -> pl.DataFrame:
    """An ``attributes`` table as the pipeline writes it (one row per face id, probability vectors included)."""
    n = len(ids)
    return pl.DataFrame(
        {
            "face_id": ids,
            "image_id": [image_of(i) for i in ids],
            "path": [f"demo/{image_of(i)}.jpg" for i in ids],
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
    """A ``manual_labels`` table: ``face_id, image_id, gender, age, ethnicity``."""
    frame = pl.DataFrame(
        rows, schema={"face_id": pl.String, "gender": pl.String, "age": pl.String, "ethnicity": pl.String},
        orient="row",
    )
    return frame.with_columns(pl.col("face_id").map_elements(image_of, return_dtype=pl.String).alias("image_id"))


def detections(faces: dict[str, list[str]], reasons: dict[str, str]) -> pl.DataFrame:
    """A ``face_detections`` table: ``faces`` maps an image id to its face ids, ``reasons`` an image without one
    to its reason."""
    rows = []
    for image_id, face_ids in faces.items():
        for index, face_id in enumerate(face_ids):
            rows.append({"image_id": image_id, "path": f"{image_id}.jpg", "face_id": face_id, "face_index": index,
                         "faces_in_image": len(face_ids), "faces_found": len(face_ids), "face_source": "detector",
                         "box_x0": 4.0 + 20 * index, "box_y0": 4.0, "box_x1": 20.0 + 20 * index, "box_y1": 20.0,
                         "score": 1.5, "landmarks": [5.0, 8.0, 15.0, 8.0], "landmark_points": 2, "reason": None})
    for image_id, reason in reasons.items():
        rows.append({"image_id": image_id, "path": f"{image_id}.jpg", "face_id": None, "face_index": None,
                     "faces_in_image": 0, "faces_found": 0, "face_source": None, "box_x0": None, "box_y0": None,
                     "box_x1": None, "box_y1": None, "score": None, "landmarks": None, "landmark_points": None,
                     "reason": reason})
    return pl.DataFrame(rows, schema_overrides={"landmarks": pl.List(pl.Float64)})


def chips(face_ids: list[str], failed: tuple[str, ...] = ()) -> pl.DataFrame:
    """A ``face_chips`` table of ``face_ids``; those in ``failed`` are ``ok = false`` rows."""
    return pl.DataFrame({
        "face_id": face_ids,
        "image_id": [image_of(i) for i in face_ids],
        "ok": [i not in failed for i in face_ids],
        "chip_path": [None if i in failed else f"v/224/{i}.jpg" for i in face_ids],
        "composite_path": [None if i in failed else f"v/64/{i}.jpg" for i in face_ids],
        "chip_landmarks": [None if i in failed else [22.0, 26.0, 42.0, 26.0] for i in face_ids],
        "sharpness": [None if i in failed else 100.0 for i in face_ids],
        "flags": [["unreadable"] if i in failed else [] for i in face_ids],
        "error": ["unreadable: gone" if i in failed else None for i in face_ids],
    }, schema_overrides={"chip_landmarks": pl.List(pl.Float64), "sharpness": pl.Float64})


# --------------------------------------------------------------------------- core


def test_build_master_one_row_per_face_and_manual_beats_predicted() -> None:
    raw = pl.DataFrame(
        {
            "image_id": ["d", "a", "b", "c", "m", "n"],
            "path": ["d.jpg", "a.jpg", "b.jpg", "c.txt", "m.jpg", "n.jpg"],
            "readable": [True, True, True, False, True, True],
            "error": [None, None, None, "not_an_image", None, None],
            "width": [64, 64, 64, None, 64, 64],
            "height": [64, 64, 64, None, 64, 64],
        }
    )
    found = detections({"a": ["a_1_1"], "b": ["b_1_1"], "d": ["d_1_1"], "m": ["m_1_1", "m_2_1"],
                        "ghost": ["ghost_1_1"]}, {"c": "unreadable", "n": "no_face"})
    chipped = chips(["a_1_1", "b_1_1", "d_1_1", "m_1_1", "m_2_1"], failed=("d_1_1",))
    attrs = predictions(["a_1_1", "b_1_1", "m_1_1", "m_2_1", "ghost_1_1"], ["male", "female", "male", "female", "male"],
                        ["20-29", "30-39", "70+", "3-9", "0-2"], ["white", "east_asian", "black", "white", "indian"])
    overrides = manual([("a_1_1", "female", None, None), ("b_1_1", None, "40-49", "indian"),
                        ("a_1_1", "male", None, None), ("m_2_1", "male", None, None)])
    flags = pl.DataFrame({"face_id": ["a_1_1", "d_1_1"], "flags": [["blurry"], ["unreadable"]],
                          "low_confidence": [False, None], "near_duplicate_of": [None, None]})
    clusters = pl.DataFrame({"face_id": ["a_1_1", "b_1_1", "m_1_1", "m_2_1"], "cluster": [0, 1, 1, 0]},
                            schema_overrides={"cluster": pl.Int32})
    scores = pl.DataFrame({"face_id": ["a_1_1", "b_1_1"], "attractiveness_raw": [3.0, 2.0],
                           "attractiveness_percentile": [75.0, 25.0], "attractiveness_decile": [8, 3]},
                          schema_overrides={"attractiveness_decile": pl.Int8})
    table, stats = build_master(raw, detections=found, chips=chipped, attributes=attrs, manual=overrides,
                                flags=flags, clusters=clusters, scores=scores)

    assert table.columns == list(MASTER_COLUMNS)
    # every raw image, sorted; one row per face (m has two) and one per faceless image; no ghost
    assert table.select("image_id", "face_id").rows() == [
        ("a", "a_1_1"), ("b", "b_1_1"), ("c", None), ("d", "d_1_1"), ("m", "m_1_1"), ("m", "m_2_1"), ("n", None)]
    rows = {row["face_id"] or row["image_id"]: row for row in table.iter_rows(named=True)}
    # manual > predicted, per attribute, with the source and the raw prediction kept
    assert (rows["a_1_1"]["gender"], rows["a_1_1"]["gender_source"], rows["a_1_1"]["gender_pred"]) == (
        "female", "manual", "male")
    assert (rows["a_1_1"]["age"], rows["a_1_1"]["age_source"]) == ("20-29", "predicted")
    assert (rows["b_1_1"]["gender"], rows["b_1_1"]["gender_source"]) == ("female", "predicted")
    assert (rows["b_1_1"]["age"], rows["b_1_1"]["age_source"], rows["b_1_1"]["age_pred"]) == ("40-49", "manual", "30-39")
    assert (rows["b_1_1"]["ethnicity"], rows["b_1_1"]["race4"], rows["b_1_1"]["race4_pred"]) == (
        "indian", "indian", "other")
    # the faces of one image are joined by face id, each with its own prediction and override
    assert (rows["m_1_1"]["gender"], rows["m_1_1"]["gender_source"], rows["m_1_1"]["age"]) == ("male", "predicted", "70+")
    assert (rows["m_2_1"]["gender"], rows["m_2_1"]["gender_source"], rows["m_2_1"]["gender_pred"]) == (
        "male", "manual", "female")
    assert rows["m_1_1"]["faces_in_image"] == rows["m_2_1"]["faces_in_image"] == 2
    assert (rows["m_1_1"]["cluster"], rows["m_2_1"]["cluster"]) == (1, 0)
    # the unreadable file and the faceless image are there, with their reason and nothing predicted
    assert rows["c"]["readable"] is False and rows["c"]["chip_ok"] is False and rows["c"]["reason"] == "unreadable"
    assert (rows["c"]["gender"], rows["c"]["gender_source"], rows["c"]["predicted"]) == (None, "none", False)
    assert rows["n"]["readable"] is True and rows["n"]["reason"] == "no_face" and rows["n"]["faces_in_image"] == 0
    assert rows["c"]["flags"] == [] and rows["d_1_1"]["flags"] == ["unreadable"] and rows["b_1_1"]["flags"] == []
    # chips: ok faces carry their files and composite-chip landmarks; a failed chip says why
    assert (rows["a_1_1"]["chip_ok"], rows["a_1_1"]["composite_path"]) == (True, "v/64/a_1_1.jpg")
    assert rows["a_1_1"]["chip_landmarks"] == [22.0, 26.0, 42.0, 26.0] and rows["a_1_1"]["landmark_points"] == 2
    assert (rows["d_1_1"]["chip_ok"], rows["d_1_1"]["chip_error"]) == (False, "unreadable: gone")
    assert rows["d_1_1"]["attractiveness_decile"] is None and rows["a_1_1"]["attractiveness_decile"] == 8
    assert stats.orphans == {"attributes": 1, "detections": 1} and stats.duplicates == {"manual": 1}
    assert (stats.images, stats.readable, stats.faces, stats.images_without_face) == (6, 5, 5, 2)
    assert stats.reasons == {"unreadable": 1, "no_face": 1} and stats.chipped == 4 and stats.predicted == 4
    assert {s: stats.sources["gender"][s] for s in ("manual", "predicted", "none")} == {"manual": 2, "predicted": 2,
                                                                                        "none": 3}
    assert check_master(table) == {"rows": 7, "missing_columns": [], "duplicated_ids": 0, "null_ids": 0,
                                   "faceless_without_reason": 0, "bad_sources": {}}


def test_images_missing_from_the_detections_are_kept_with_a_reason() -> None:
    raw = pl.DataFrame({"image_id": ["a", "b", "c"], "path": ["a", "b", "c"], "readable": [True, True, False]})
    table, stats = build_master(raw, detections=detections({"a": ["a_1_1"]}, {}))
    assert table.select("image_id", "face_id", "reason").rows() == [
        ("a", "a_1_1", None), ("b", None, "not_detected"), ("c", None, "unreadable")]
    assert stats.reasons == {"not_detected": 1, "unreadable": 1} and stats.faces == 1


def test_check_master_reports_problems() -> None:
    raw = pl.DataFrame({"image_id": ["a", "b", "c"], "path": ["a", "b", "c"], "readable": [True, True, True]})
    table, _ = build_master(raw, detections=detections({"a": ["a_1_1"], "b": ["b_1_1"]}, {"c": "no_face"}))
    assert check_master(table)["duplicated_ids"] == 0
    report = check_master(pl.concat([table, table.head(1), table.tail(1)]).drop("cluster"))
    # a repeated face id and a repeated faceless image are both duplicates
    assert report["duplicated_ids"] == 4 and report["missing_columns"] == ["cluster"]
    no_reason = check_master(table.with_columns(pl.lit(None, dtype=pl.String).alias("reason")))
    assert no_reason["faceless_without_reason"] == 1
    null_image = check_master(table.with_columns(pl.when(pl.col("face_id") == "a_1_1").then(None)
                                                 .otherwise(pl.col("image_id")).alias("image_id")))
    assert null_image["null_ids"] == 1
    assert set(REQUIRED_COLUMNS) <= set(table.columns)


# --------------------------------------------------------------------------- asset


def resources(root: Path, faces: dict[str, object] | None = None, **composites: object
              ) -> dict[str, dg.ConfigurableResource]:
    """The test resources with whole-image 64 px faces and no detector (landmarks from the truth file
    only, so the results do not depend on dlib), plus any `faces` and `composites` fields."""
    face_fields = {"face_mode": "whole", "detector": "none", "composite_size": 64, "embed_size": 64, **(faces or {})}
    return make_resources(
        root, root.parent / "models",
        faces=FacesResource(**face_fields),  # type: ignore[arg-type]
        composites=CompositesResource(**composites),  # type: ignore[arg-type]
    )


def materialize_images(root: Path, instance: dg.DagsterInstance, **faces: object) -> dg.ExecuteInJobResult:
    """raw_images, face_detections and face_chips over all shards, in one run (`faces`: FacesResource fields)."""
    first, last = ALL_SHARDS_RANGE.split("...")
    result = dg.materialize(
        list(defs.assets), resources=resources(root, faces), instance=instance,
        selection=["raw_images", "face_detections", "face_chips"],
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
    assert result.success
    return result


def write_analysis_tables(root: Path, overrides: pl.DataFrame | None = None) -> list[str]:
    """Stand-ins for the CLIP-based tables (attributes … scores) of every detected face; returns the face ids."""
    layout = Layout.from_roots(root, root.parent / "models")
    found = layout.read_partitions("face_detections").filter(pl.col("face_id").is_not_null()).sort("path")
    ids = found["face_id"].to_list()
    image_ids = found["image_id"].to_list()
    n = len(ids)
    genders = ["female" if i % 2 else "male" for i in range(n)]
    attrs = predictions(ids, genders, [AGE_BINS[3 + i % 3] for i in range(n)], ["white"] * n).with_columns(
        pl.Series("image_id", image_ids), pl.Series("path", found["path"]))
    atomic_write_parquet(layout.artifact("attributes"), attrs)
    empty = pl.DataFrame(schema={"face_id": pl.String, "image_id": pl.String, "gender": pl.String,
                                 "age": pl.String, "ethnicity": pl.String})
    atomic_write_parquet(layout.artifact("manual_labels"), overrides if overrides is not None else empty)
    if dg.AssetKey("dataset_labels") in defs.resolve_asset_graph().get_all_asset_keys():
        # no labels or ratings of the data set itself (where the IO manager reads that table)
        target = layout.artifact("dataset_labels") if "dataset_labels" in ARTIFACTS else (
            layout.processed_dir / "dataset_labels.parquet")
        atomic_write_parquet(target, empty.with_columns(pl.lit(None, pl.Float64).alias("score")))
    atomic_write_parquet(layout.artifact("attribute_flags"), pl.DataFrame(
        {"face_id": ids, "image_id": image_ids, "flags": [[]] * n, "low_confidence": [False] * n,
         "near_duplicate_of": [None] * n},
        schema_overrides={"flags": pl.List(pl.String), "near_duplicate_of": pl.String}))
    atomic_write_parquet(layout.artifact("embedding_clusters"), pl.DataFrame(
        {"face_id": ids, "cluster": [i % 2 for i in range(n)]}, schema_overrides={"cluster": pl.Int32}))
    pct = np.linspace(0, 100, n)
    atomic_write_parquet(layout.artifact("attractiveness_scores"), pl.DataFrame(
        {"face_id": ids, "image_id": image_ids, "attractiveness_raw": pct / 25 + 1, "attractiveness_percentile": pct,
         "attractiveness_decile": np.minimum(pct // 10 + 1, 10).astype(np.int8)}))
    return ids


def _table_row(markdown: str, first_cell: str) -> dict[str, str]:
    """The row of a markdown table starting with ``first_cell``, keyed by the header."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown.splitlines()]
    header = rows[0]
    [row] = [r for r in rows[2:] if r[0] == first_cell]
    return dict(zip(header, row, strict=True))


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
    assert sorted(table["image_id"].unique().to_list()) == sorted(raw["image_id"].to_list())  # unreadable included
    faces = table.filter(pl.col("face_id").is_not_null())
    assert faces["face_id"].is_unique().all() and sorted(faces["face_id"].to_list()) == sorted(ids)
    assert faces["image_id"].is_unique().all()  # whole-image faces: one per demo image
    unreadable = table.filter(~pl.col("readable"))
    assert unreadable.height == 1 and unreadable["path"][0] == "notes.txt"
    assert unreadable["face_id"][0] is None and unreadable["reason"][0] == "unreadable"
    assert unreadable["chip_ok"][0] is False
    first = table.filter(pl.col("face_id") == ids[0]).row(0, named=True)
    assert (first["gender"], first["gender_source"], first["gender_pred"]) == ("female", "manual", "male")
    assert (first["age"], first["age_source"]) == ("70+", "manual")
    assert (first["ethnicity"], first["ethnicity_source"]) == ("white", "predicted")
    # the demo's truth file gives every demo face its 68 landmarks: every chip has them, in chip pixels
    assert faces["chip_ok"].all() and set(faces["face_source"]) == {"whole_image"}
    assert (faces["landmark_points"] == 68).all() and faces["chip_landmarks"].list.len().eq(136).all()
    assert all((layout.chips_dir / p).exists() for p in faces["composite_path"])
    # every face is judged: the drawn demo faces are frontal and sharp, so good
    assert faces["yaw"].abs().max() < 6.0 and faces["roll"].is_not_null().all() and faces["pose_note"].is_null().all()
    assert set(faces["quality"]) == {"good"} and faces["quality_reasons"].list.len().eq(0).all(), faces.select(
        "sharpness", "face_px", "yaw", "pitch", "quality_reasons")
    assert table.filter(pl.col("face_id").is_null())["quality"].is_null().all()
    meta = result.asset_materializations_for_node("master_metadata")[0].metadata
    assert (meta["rows"].value, meta["images"].value, meta["faces"].value) == (13, 13, 12)
    assert meta["images_without_face"].value == 1 and meta["chipped"].value == 12
    assert "| unreadable | 1 |" in meta["without_face_by_reason"].value
    assert "| good | 12 |" in meta["quality"].value and meta["poor_by_reason"].value == "_none_"
    gender = _table_row(meta["attribute_sources"].value, "gender")
    assert (gender["manual"], gender["predicted"], gender["none"]) == ("1", "11", "1")
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "master_one_row_per_face" and check.passed
    assert check.metadata["rows"].value == 13 and check.metadata["faceless_without_reason"].value == 0
