"""Aligned faces, composite partitions, the contact sheet and the specs sensor, through dagster.materialize."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.analysis.master import build_master
from facestats_core.composites.filter_spec import parse_spec
from facestats_core.faces.aligned_faces import map_landmarks, raw_to_preprocessed
from facestats_core.images.preprocess import PreprocessConfig, preprocess_image
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import Layout
from facestats_dagster.cli.composites import build_commands, partition_blocks
from facestats_dagster.cli.dagster_runs import ANALYSIS_SELECTION
from facestats_dagster.definitions import defs
from facestats_dagster.defs.composites import composite, composite_specs_sensor
from facestats_dagster.partitions import COMPOSITE_SPECS
from facestats_dagster.resources import CompositesResource, PathsResource
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from tests.dagster.test_master import materialize_images, resources


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# --------------------------------------------------------------------------- aligned faces


def test_raw_landmarks_map_through_resize_and_centre_crop(tmp_path) -> None:
    """A dot drawn in a non-square raw image lands where raw_to_preprocessed says."""
    raw = np.full((120, 200, 3), 200, np.uint8)
    raw[37:44, 147:154] = (255, 0, 0)  # dot centred on pixel (150, 40)
    buffer = tmp_path / "raw.png"
    Image.fromarray(raw).save(buffer)
    result = preprocess_image(buffer.read_bytes(), "x", tmp_path, PreprocessConfig(size=60, jpeg_quality=100))
    square = _pixels(tmp_path / str(result.output_path)).astype(float)
    redness = np.clip(square[..., 0] - square[..., 1], 0, None)
    ys, xs = np.nonzero(redness > 60)
    weights = redness[ys, xs]
    found = (np.average(xs, weights=weights), np.average(ys, weights=weights))
    expected = raw_to_preprocessed(150, 40, 200, 120, 60)
    assert abs(found[0] - expected[0]) < 0.75 and abs(found[1] - expected[1]) < 0.75
    assert raw_to_preprocessed(10.0, 20.0, 256, 256, 256) == pytest.approx((10.0, 20.0))
    landmarks = pl.DataFrame({"file": ["a.png", "missing.png"], "left_eye_x": [150.0, 1.0],
                              "left_eye_y": [40.0, 1.0], "right_eye_x": [160.0, 2.0], "right_eye_y": [40.0, 1.0]})
    manifest = pl.DataFrame({"image_id": ["id"], "path": ["b.png"], "alias_paths": [["a.png"]],
                             "width": [200], "height": [120], "readable": [True]})
    eyes, unmatched = map_landmarks(landmarks, manifest, 60)
    assert unmatched == 1 and eyes["image_id"].to_list() == ["id"]
    assert eyes.row(0)[1:3] == pytest.approx(expected)


def test_aligned_faces_cache_is_reused_and_faces_without_eyes_are_counted(tmp_path) -> None:
    root = tmp_path / "data"
    generate_demo_dataset(root, DemoSpec(n_images=8, size=64, seed=2))
    truth = root / "labels" / "demo_truth.csv"
    lines = truth.read_text().splitlines()
    (root / "labels" / "eyes.csv").write_text("\n".join(lines[:-2]) + "\n")  # last two faces: no eyes
    instance = dg.DagsterInstance.ephemeral()
    first = materialize_images(root, instance, landmarks="labels/eyes.csv")
    meta = first.asset_materializations_for_node("aligned_faces")[0].metadata
    assert (meta["aligned_ok"].value, meta["aligned_new"].value, meta["reused"].value) == (6, 6, 0)
    assert meta["excluded"].value == 2 and "| no_landmarks | 2 |" in meta["excluded_by_reason"].value
    layout = Layout.from_roots(root, "models")
    files = sorted((layout.aligned_dir).glob("*/*.jpg"))
    assert len(files) == 6 and all(_pixels(f).shape == (64, 64, 3) for f in files)
    stamps = {f: f.stat().st_mtime_ns for f in files}

    second = materialize_images(root, instance, landmarks="labels/eyes.csv")
    meta = second.asset_materializations_for_node("aligned_faces")[0].metadata
    assert (meta["aligned_new"].value, meta["reused"].value) == (0, 6)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # not rewritten
    manifest = layout.read_partitions("aligned_faces")
    assert manifest.filter(~pl.col("aligned_ok"))["error"].to_list() == ["no_landmarks"] * 2


# --------------------------------------------------------------------------- composites on a known set

COLOURS = {  # image id -> (gender, constant colour)
    "img_a": ("female", (10, 20, 30)),
    "img_b": ("female", (40, 80, 120)),
    "img_c": ("female", (100, 50, 0)),
    "img_d": ("male", (200, 200, 200)),
    "img_e": ("female", (255, 255, 255)),  # no eyes: excluded from aligned composites
}


@pytest.fixture
def known_set(tmp_path) -> Path:
    """A master table of five constant-colour faces with aligned and preprocessed files."""
    root = tmp_path / "data"
    layout = Layout.from_roots(root, tmp_path / "models")
    rows = []
    for image_id, (_gender, colour) in COLOURS.items():
        aligned = image_id != "img_e"
        for folder in (layout.preproc_dir, layout.aligned_dir / "v1"):
            folder.mkdir(parents=True, exist_ok=True)
            shade = colour if folder == layout.aligned_dir / "v1" else tuple(255 - c for c in colour)
            Image.new("RGB", (32, 32), shade).save(folder / f"{image_id}.png")
        rows.append({"image_id": image_id, "ok": True, "output_path": f"{image_id}.png"})
    raw = pl.DataFrame({"image_id": list(COLOURS), "path": [f"{i}.jpg" for i in COLOURS], "readable": True})
    aligned = pl.DataFrame({
        "image_id": list(COLOURS),
        "aligned_ok": [i != "img_e" for i in COLOURS],
        "aligned_path": [f"v1/{i}.png" if i != "img_e" else None for i in COLOURS],
        "eyes_source": ["landmarks" if i != "img_e" else None for i in COLOURS],
        "error": [None if i != "img_e" else "no_landmarks" for i in COLOURS],
    })
    attrs = pl.DataFrame({"image_id": list(COLOURS), "gender_pred": [g for g, _ in COLOURS.values()]})
    master, _ = build_master(raw, pl.DataFrame(rows), aligned, attrs)
    atomic_write_parquet(layout.artifact("master_metadata"), master)
    return root


def _instance_with(*specs: str) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(COMPOSITE_SPECS, list(specs))
    return instance


def _materialize(root: Path, instance: dg.DagsterInstance, selection: list[str], partition: str | None = None,
                 **composites: object) -> dg.ExecuteInJobResult:
    settings = {"min_faces": 2, "output_size": 32, **composites}
    return dg.materialize(
        list(defs.assets), resources=resources(root, **settings), instance=instance, selection=selection,
        partition_key=partition, raise_on_error=False,
    )


def test_composite_is_the_mean_of_the_aligned_faces(known_set) -> None:
    spec = "gender=female"
    instance = _instance_with(spec)
    result = _materialize(known_set, instance, ["composite"], spec)
    assert result.success
    layout = Layout.from_roots(known_set, "models")
    slug = parse_spec(spec).slug
    picture = _pixels(layout.composites_dir / f"{slug}.png")
    expected = np.rint(np.mean([COLOURS[i][1] for i in ("img_a", "img_b", "img_c")], axis=0))
    assert picture.shape == (32, 32, 3) and (picture == expected).all()
    sidecar = json.loads((layout.composites_dir / f"{slug}.json").read_text())
    assert sidecar["spec"] == spec and sidecar["image_ids"] == ["img_a", "img_b", "img_c"]
    assert sidecar["used"] == len(sidecar["image_ids"]) == 3 and sidecar["matched"] == 3
    assert sidecar["alignment"]["excluded_no_landmarks"] == 1
    assert sidecar["alignment"]["excluded_by_reason"] == {"no_landmarks": 1}
    meta = result.asset_materializations_for_node("composite")[0].metadata
    assert meta["used"].value == 3 and meta["excluded_no_landmarks"].value == 1
    assert meta["preview"].value.endswith(f"composites/{slug}.png")
    assert "data:image/jpeg;base64," in meta["picture"].value
    # deterministic: the same spec and data give the same bytes
    before = (layout.composites_dir / f"{slug}.png").read_bytes()
    assert _materialize(known_set, instance, ["composite"], spec).success
    assert (layout.composites_dir / f"{slug}.png").read_bytes() == before


def test_composite_without_alignment_uses_preprocessed_squares(known_set) -> None:
    spec = "gender=female"
    result = _materialize(known_set, _instance_with(spec), ["composite"], spec, align=False)
    assert result.success
    layout = Layout.from_roots(known_set, "models")
    sidecar = json.loads((layout.composites_dir / f"{parse_spec(spec).slug}.json").read_text())
    assert sidecar["used"] == 4 and sidecar["alignment"]["aligned"] is False
    assert sidecar["alignment"]["source_images"].startswith("preprocessed")
    picture = _pixels(layout.composites_dir / f"{parse_spec(spec).slug}.png")
    inverted = [tuple(255 - c for c in COLOURS[i][1]) for i in ("img_a", "img_b", "img_c", "img_e")]
    assert (picture == np.rint(np.mean(inverted, axis=0))).all()


def test_too_few_matches_fail_the_partition_with_the_count(known_set) -> None:
    spec = "gender=male"
    result = _materialize(known_set, _instance_with(spec), ["composite"], spec, min_faces=3)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "'gender=male' matched 1 faces" in message and "at least 3" in message
    assert not (Layout.from_roots(known_set, "m").composites_dir / "gender.male.png").exists()
    # excluded faces are counted in the message too
    result = _materialize(known_set, _instance_with("all"), ["composite"], "all", min_faces=5)
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "matched 5 faces, 1 of them without eye landmarks" in message and "leaving 4" in message


def test_relax_is_explicit_and_reported(known_set) -> None:
    spec = "gender=male,cluster=0"
    result = _materialize(known_set, _instance_with(spec), ["composite"], spec, min_faces=3, relax=True)
    # the master has no clusters: relaxing drops cluster, then gender, and says so
    assert result.success
    meta = result.asset_materializations_for_node("composite")[0].metadata
    assert meta["relaxed"].value == "cluster=0, gender=male" and meta["used"].value == 4


def test_partition_range_builds_every_spec_then_contact_sheet(known_set) -> None:
    specs = ["all", "gender=female", "gender=male"]
    instance = _instance_with(*specs)
    result = dg.materialize(
        list(defs.assets), resources=resources(known_set, min_faces=1, output_size=32), instance=instance,
        selection=["composite"],
        tags={"dagster/asset_partition_range_start": specs[0], "dagster/asset_partition_range_end": specs[-1]},
    )
    assert result.success
    assert "| `gender=male` | 1 | 1 | 0 |" in result.asset_materializations_for_node("composite")[0].metadata[
        "summary"].value
    sheet = _materialize(known_set, instance, ["contact_sheet"])
    assert sheet.success
    meta = sheet.asset_materializations_for_node("contact_sheet")[0].metadata
    assert meta["composites"].value == 3 and meta["missing"].value == []
    assert _pixels(Layout.from_roots(known_set, "m").composites_dir / "contact_sheet.png").shape[1] > 3 * 192


def test_non_canonical_partition_key_is_refused(known_set) -> None:
    key = "Gender=Female"
    result = _materialize(known_set, _instance_with(key), ["composite"], key)
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "not in canonical form" in message and "'gender=female'" in message


# --------------------------------------------------------------------------- sensor


def _evaluate(instance: dg.DagsterInstance, specs_file: Path, cursor: str | None, master: bool = True):
    data_root = specs_file.parent / "sensor_data"
    master_file = data_root / "processed" / "metadata" / "master.parquet"
    if master:
        master_file.parent.mkdir(parents=True, exist_ok=True)
        master_file.touch()
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor,
        resources={
            "composites": CompositesResource(specs_file=str(specs_file)),
            "paths": PathsResource(data_root=str(data_root), model_root=str(specs_file.parent / "models")),
        },
        definitions=defs,
    )
    return composite_specs_sensor(context)


def test_sensor_registers_specs_but_waits_for_the_master_table(tmp_path) -> None:
    config = tmp_path / "composites.yaml"
    config.write_text("specs: [all]\n")
    instance = dg.DagsterInstance.ephemeral()
    early = _evaluate(instance, config, None, master=False)
    assert list(early.dynamic_partitions_requests[0].partition_keys) == ["all"]
    assert early.run_requests == []
    instance.add_dynamic_partitions(COMPOSITE_SPECS, ["all"])
    later = _evaluate(instance, config, early.cursor, master=True)
    assert [r.partition_key for r in later.run_requests] == ["all"]


def test_sensor_adds_yaml_specs_as_partitions_once(tmp_path) -> None:
    config = tmp_path / "composites.yaml"
    config.write_text("specs:\n  - all\n  - Gender=Female, age=20-39\n  - gender=robot\n  - sex=female,age=20-39\n"
                      "  - 42\n")
    instance = dg.DagsterInstance.ephemeral()
    result = _evaluate(instance, config, None)
    assert isinstance(result, dg.SensorResult)
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == COMPOSITE_SPECS and list(add.partition_keys) == ["all", "gender=female,age=20-39"]
    assert [r.partition_key for r in result.run_requests] == ["all", "gender=female,age=20-39"]
    assert result.run_requests[1].run_key.startswith("gender=female,age=20-39#")
    instance.add_dynamic_partitions(COMPOSITE_SPECS, list(add.partition_keys))  # what the daemon does

    again = _evaluate(instance, config, result.cursor)
    assert isinstance(again, dg.SkipReason)  # the cursor remembers: nothing re-requested

    config.write_text(config.read_text() + "  - gender=male,attractiveness=top10\n")
    third = _evaluate(instance, config, result.cursor)
    assert [r.partition_key for r in third.run_requests] == ["gender=male,attractiveness=top10"]
    assert list(third.dynamic_partitions_requests[0].partition_keys) == ["gender=male,attractiveness=top10"]

    config.write_text("specs: [unclosed\n")  # broken YAML: logged, no crash, nothing requested
    assert isinstance(_evaluate(instance, config, third.cursor), dg.SkipReason)
    assert isinstance(_evaluate(instance, tmp_path / "missing.yaml", None), dg.SkipReason)


def test_sensor_does_not_rerun_partitions_already_built(tmp_path) -> None:
    config = tmp_path / "composites.yaml"
    config.write_text("specs: [all]\n")
    instance = _instance_with("all")
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=composite.key, partition="all"))
    result = _evaluate(instance, config, None)
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert "all#" in result.cursor


def test_default_yaml_is_valid_and_definitions_include_the_sensor() -> None:
    from facestats_core.composites.spec_config import read_spec_config

    config = read_spec_config(Path(__file__).parents[2] / "config" / "composites.yaml")
    assert not config.errors and not config.duplicates and "all" in config.canonical
    assert len(config.canonical) >= 10
    assert defs.get_sensor_def("composite_specs_sensor").name == "composite_specs_sensor"


# --------------------------------------------------------------------------- demo commands


def test_partition_blocks_never_span_foreign_specs() -> None:
    registered = ["all", "a", "x", "b", "c", "y", "d"]
    assert partition_blocks(registered, ["d", "a", "all", "b", "c"]) == [("all", "a"), ("b", "c"), ("d", "d")]
    commands = build_commands("dagster", registered, ["all", "a", "d"])
    assert commands[0][-2:] == ["--partition-range", "all...a"] and commands[1][-2:] == ["--partition", "d"]


def test_analysis_selection_leaves_out_partitioned_composites() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in dg.AssetSelection.from_string(ANALYSIS_SELECTION).resolve(graph)}
    assert "embeddings_clip" in keys and "attributes" in keys and "attractiveness_scores" in keys
    assert not keys & {"composite", "contact_sheet", "master_metadata", "aligned_faces"}
