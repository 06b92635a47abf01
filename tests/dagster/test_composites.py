"""Face detections and chips (caching), composite partitions, the contact sheet and the specs sensor,
through dagster.materialize."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.analysis.master import build_master
from facestats_core.composites.build import CompositeSettings, build_composite
from facestats_core.composites.filter_spec import parse_spec
from facestats_core.faces.alignment import eye_target_pixels
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import Layout
from facestats_dagster.cli.dagster_runs import ANALYSIS_SELECTION, composite_runs, partition_blocks
from facestats_dagster.definitions import defs
from facestats_dagster.defs.composites import composite, composite_specs_sensor
from facestats_dagster.partitions import COMPOSITE_SPECS
from facestats_dagster.resources import CompositesResource, FacesResource, LabelsResource, PathsResource
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from tests.dagster.test_master import materialize_images, resources, write_analysis_tables


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# --------------------------------------------------------------------------- face detections and chips


class CountingDetector:
    """A stand-in face detector that finds nothing and counts its calls."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: Image.Image) -> list:
        self.calls += 1
        return []


def test_detections_and_chips_are_cached_and_faces_without_landmarks_are_excluded(tmp_path, monkeypatch) -> None:
    root = tmp_path / "data"
    generate_demo_dataset(root, DemoSpec(n_images=8, size=64, seed=2))
    truth = root / "labels" / "demo_truth.csv"
    lines = truth.read_text().splitlines()
    (root / "labels" / "eyes.csv").write_text("\n".join(lines[:-2]) + "\n")  # last two faces: no eyes
    detector = CountingDetector()
    monkeypatch.setattr(FacesResource, "face_detector", lambda self: (detector, detector.name))
    instance = dg.DagsterInstance.ephemeral()
    faces = {"landmarks": "labels/eyes.csv", "embed_size": 48}
    first = materialize_images(root, instance, **faces)
    meta = first.asset_materializations_for_node("face_detections")[0].metadata
    # whole-image faces: the file's 68 landmarks for six, the detector tried (and failed) for the other two
    assert (meta["images"].value, meta["faces"].value, meta["images_without_face"].value) == (8, 8, 0)
    assert (meta["detector_runs"].value, meta["reused"].value, detector.calls) == (2, 0, 2)
    assert "| whole_image | 8 |" in meta["face_source"].value
    layout = Layout.from_roots(root, "models")
    found = layout.read_partitions("face_detections")
    assert sorted(found["landmark_points"].to_list()) == [0, 0, 68, 68, 68, 68, 68, 68]
    meta = first.asset_materializations_for_node("face_chips")[0].metadata
    assert (meta["faces"].value, meta["ok"].value, meta["made"].value, meta["reused"].value) == (8, 8, 8, 0)
    # the drawn faces are judged good (the two without landmarks on sharpness and size alone)
    assert "| good | 8 |" in meta["quality"].value and meta["poor_by_reason"].value == "_none_"
    assert meta["yaw_histogram"].value.startswith("![yaw histogram](data:image/png;base64,")
    embed_files = sorted(layout.chips_dir.glob("*/48/*.jpg"))
    composite_files = sorted(layout.chips_dir.glob("*/64/*.jpg"))
    assert len(embed_files) == len(composite_files) == 8
    assert all(_pixels(f).shape == (48, 48, 3) for f in embed_files)
    assert all(_pixels(f).shape == (64, 64, 3) for f in composite_files)
    stamps = {f: f.stat().st_mtime_ns for f in embed_files + composite_files}

    second = materialize_images(root, instance, **faces)
    meta = second.asset_materializations_for_node("face_detections")[0].metadata
    assert (meta["detector_runs"].value, meta["reused"].value, detector.calls) == (0, 8, 2)
    meta = second.asset_materializations_for_node("face_chips")[0].metadata
    assert (meta["made"].value, meta["reused"].value, meta["ok"].value) == (0, 8, 8)
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps  # not rewritten
    chips = layout.read_partitions("face_chips")
    assert chips.filter(pl.col("chip_landmarks").is_null())["landmark_points"].to_list() == [0, 0]

    assert chips.filter(pl.col("chip_landmarks").is_not_null())["chip_landmarks"].list.len().to_list() == [136] * 6

    # the two faces without landmarks are left out of a warped composite, and counted
    no_eyes = set(found.filter(pl.col("landmark_points") == 0)["face_id"])
    write_analysis_tables(root)
    run = dg.materialize(list(defs.assets), resources=resources(root, {"embed_size": 48}, min_faces=2),
                         instance=instance, selection=["master_metadata"])
    assert run.success
    instance.add_dynamic_partitions(COMPOSITE_SPECS, ["all"])
    built = dg.materialize(list(defs.assets), resources=resources(root, {"embed_size": 48}, min_faces=2),
                           instance=instance, selection=["composite"], partition_key="all")
    assert built.success
    sidecar = json.loads((layout.composites_dir / f"{parse_spec('all').slug}.json").read_text())
    assert sidecar["matched"] == sidecar["used"] == 6 and not no_eyes & set(sidecar["face_ids"])
    assert sidecar["alignment"]["excluded_no_landmarks"] == 2
    assert (sidecar["quality"], sidecar["excluded_quality"], sidecar["excluded_quality_faces"]) == ("good", 0, [])
    assert sidecar["alignment"]["excluded_by_reason"] == {"no_landmarks": 2}
    assert sidecar["alignment"]["landmarks_source"] == {"whole_image": 6}
    assert (sidecar["method"], sidecar["warped"], sidecar["eyes_fallback"]) == ("warp", 6, [])
    assert sidecar["composite_size"] == 64 and len(sidecar["mean_shape"]) == 68


def test_chips_are_cut_again_when_the_landmarks_of_their_face_change(tmp_path) -> None:
    root = tmp_path / "data"
    generate_demo_dataset(root, DemoSpec(n_images=4, size=64, seed=2))
    lines = (root / "labels" / "demo_truth.csv").read_text().splitlines()
    (root / "labels" / "eyes.csv").write_text("\n".join(lines[:-1]) + "\n")  # the last face: no eyes yet
    instance = dg.DagsterInstance.ephemeral()
    materialize_images(root, instance, landmarks="labels/eyes.csv")
    second = materialize_images(root, instance)  # the full truth file: now every face has its eyes
    meta = second.asset_materializations_for_node("face_detections")[0].metadata
    assert (meta["reused"].value, meta["detector_runs"].value) == (3, 0)  # the changed image was looked at again
    meta = second.asset_materializations_for_node("face_chips")[0].metadata
    assert (meta["made"].value, meta["reused"].value) == (1, 3)
    chips = Layout.from_roots(root, "models").read_partitions("face_chips")
    assert chips["chip_landmarks"].is_not_null().all() and (chips["landmark_points"] == 68).all()


# --------------------------------------------------------------------------- composites on a known set

SIDE = 32
EYES = eye_target_pixels(SIDE)  # chips whose eyes already sit on the targets: aligning them changes nothing
# (eye landmarks only: the default method, warp, falls back to aligning on the eyes)
FACES = {  # face id -> (image id, gender, constant colour)
    "face_a": ("img_a", "female", (10, 20, 30)),
    "face_b": ("img_b", "female", (40, 80, 120)),
    "face_c": ("img_cd", "female", (100, 50, 0)),  # two faces of one image, in different composites
    "face_d": ("img_cd", "male", (200, 200, 200)),
    "face_e": ("img_e", "female", (255, 255, 255)),  # no landmarks: excluded from aligned composites
}


@pytest.fixture
def known_set(tmp_path) -> Path:
    """A master table of five constant-colour faces (two in one image) with their composite chips,
    and an image without a face."""
    root = tmp_path / "data"
    layout = Layout.from_roots(root, tmp_path / "models")
    folder = layout.chips_dir / "v1" / str(SIDE)
    folder.mkdir(parents=True, exist_ok=True)
    for face_id, (_image, _gender, colour) in FACES.items():
        Image.new("RGB", (SIDE, SIDE), colour).save(folder / f"{face_id}.png")
    images = ["img_a", "img_b", "img_cd", "img_e", "img_x"]
    raw = pl.DataFrame({"image_id": images, "path": [f"{i}.jpg" for i in images], "readable": True})
    with_eyes = [f != "face_e" for f in FACES]
    detections = pl.DataFrame({
        "image_id": [image for image, _, _ in FACES.values()] + ["img_x"],
        "face_id": [*FACES, None],
        "faces_in_image": [1, 1, 2, 2, 1, 0],
        "face_source": ["whole_image"] * 5 + [None],
        "landmark_points": [2 if eyes else 0 for eyes in with_eyes] + [None],
        "reason": [None] * 5 + ["no_face"],
    })
    chips = pl.DataFrame({
        "face_id": list(FACES),
        "ok": [True] * 5,
        "composite_path": [f"v1/{SIDE}/{f}.png" for f in FACES],
        "chip_landmarks": [EYES.ravel().tolist() if eyes else None for eyes in with_eyes],
    }, schema_overrides={"chip_landmarks": pl.List(pl.Float64)})
    attrs = pl.DataFrame({"face_id": list(FACES), "gender_pred": [g for _, g, _ in FACES.values()]})
    master, _ = build_master(raw, detections=detections, chips=chips, attributes=attrs)
    atomic_write_parquet(layout.artifact("master_metadata"), master)
    return root


def _instance_with(*specs: str) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(COMPOSITE_SPECS, list(specs))
    return instance


def _materialize(root: Path, instance: dg.DagsterInstance, selection: list[str], partition: str | None = None,
                 size: int = SIDE, **composites: object) -> dg.ExecuteInJobResult:
    settings = {"min_faces": 2, **composites}
    return dg.materialize(
        list(defs.assets), resources=resources(root, {"composite_size": size}, **settings), instance=instance,
        selection=selection,
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
    expected = np.rint(np.mean([FACES[i][2] for i in ("face_a", "face_b", "face_c")], axis=0))
    assert picture.shape == (SIDE, SIDE, 3) and (picture == expected).all()
    sidecar = json.loads((layout.composites_dir / f"{slug}.json").read_text())
    assert sidecar["spec"] == spec and sidecar["face_ids"] == ["face_a", "face_b", "face_c"]
    assert sidecar["used"] == len(sidecar["face_ids"]) == 3 and sidecar["matched"] == 3
    assert sidecar["alignment"]["excluded_no_landmarks"] == 1
    assert sidecar["alignment"]["excluded_by_reason"] == {"no_landmarks": 1}
    assert sidecar["alignment"]["source_images"] == "composite chips" and sidecar["alignment"]["aligned"] is True
    assert sidecar["alignment"]["landmarks_source"] == {"whole_image": 3}
    assert (sidecar["method_requested"], sidecar["method"]) == ("warp", "eyes") and "eye alignment" in sidecar[
        "method_note"]
    meta = result.asset_materializations_for_node("composite")[0].metadata
    assert meta["used"].value == 3 and meta["excluded_no_landmarks"].value == 1
    assert meta["excluded_low_confidence"].value == 0  # predictions without a probability all count
    assert meta["aligned"].value is True and meta["method"].value == "eyes" and meta["warped"].value == 0
    assert meta["preview"].value.endswith(f"composites/{slug}.png")
    assert "data:image/jpeg;base64," in meta["picture"].value
    [check] = result.get_asset_check_evaluations()  # evaluated by the composite step itself
    assert check.check_name == "composite_json_matches_image" and check.passed
    assert check.metadata["composites"].value == 1
    assert {e.step_key for e in result.all_events if e.step_key} == {"composite"}
    # deterministic: the same spec and data give the same bytes
    before = (layout.composites_dir / f"{slug}.png").read_bytes()
    assert _materialize(known_set, instance, ["composite"], spec).success
    assert (layout.composites_dir / f"{slug}.png").read_bytes() == before


def test_method_none_averages_every_chip_as_cut(known_set) -> None:
    """`method=none` (in the spec) averages every matching chip as cut, faces without landmarks included."""
    spec = "gender=female,method=none"
    result = _materialize(known_set, _instance_with(spec), ["composite"], spec)
    assert result.success
    layout = Layout.from_roots(known_set, "models")
    sidecar = json.loads((layout.composites_dir / f"{parse_spec(spec).slug}.json").read_text())
    assert sidecar["used"] == 4 and sidecar["face_ids"] == ["face_a", "face_b", "face_c", "face_e"]
    assert sidecar["method"] == "none" and sidecar["alignment"]["aligned"] is False
    assert sidecar["alignment"]["excluded_no_landmarks"] == 0
    picture = _pixels(layout.composites_dir / f"{parse_spec(spec).slug}.png")
    colours = [FACES[i][2] for i in ("face_a", "face_b", "face_c", "face_e")]
    assert (picture == np.rint(np.mean(colours, axis=0))).all()
    # the core does the same with alignment switched off in its settings
    master = pl.read_parquet(layout.artifact("master_metadata"))
    built = build_composite("gender=female", master, layout, CompositeSettings(min_faces=2, align=False, size=SIDE))
    assert built.meta["method"] == "none" and built.meta["face_ids"] == sidecar["face_ids"]
    assert (_pixels(built.image_path) == picture).all()


def test_chips_are_aligned_on_the_eyes_of_their_landmarks(tmp_path) -> None:
    """`method=eyes`: two chips with white eye dots in different places (one with 2 landmark points,
    one with 68): the composite has its eyes on the targets."""
    root = tmp_path / "data"
    layout = Layout.from_roots(root, tmp_path / "models")
    side = 64
    folder = layout.chips_dir / "v1" / str(side)
    folder.mkdir(parents=True, exist_ok=True)
    eyes = {"face_p": ((14.0, 30.0), (38.0, 22.0)), "face_q": ((24.0, 20.0), (44.0, 20.0))}
    landmarks = {}
    for face_id, ((lx, ly), (rx, ry)) in eyes.items():
        pixels = np.zeros((side, side, 3), np.uint8)
        for x, y in ((lx, ly), (rx, ry)):
            pixels[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 255
        Image.fromarray(pixels).save(folder / f"{face_id}.png")
        points = np.zeros((68, 2)) if face_id == "face_q" else np.zeros((2, 2))
        if face_id == "face_q":
            points[36:42], points[42:48] = (lx, ly), (rx, ry)
        else:
            points[:] = [(lx, ly), (rx, ry)]
        landmarks[face_id] = points
    raw = pl.DataFrame({"image_id": ["img_p", "img_q"], "path": ["p.jpg", "q.jpg"], "readable": True})
    detections = pl.DataFrame({"image_id": ["img_p", "img_q"], "face_id": list(eyes), "faces_in_image": [1, 1],
                               "face_source": ["detector", "detector"], "landmark_points": [2, 68]})
    chips = pl.DataFrame({"face_id": list(eyes), "ok": [True, True],
                          "composite_path": [f"v1/{side}/{f}.png" for f in eyes],
                          "chip_landmarks": [landmarks[f].ravel().tolist() for f in eyes]})
    master, _ = build_master(raw, detections=detections, chips=chips)
    atomic_write_parquet(layout.artifact("master_metadata"), master)
    spec = "method=eyes"
    result = _materialize(root, _instance_with(spec), ["composite"], spec, size=side)
    assert result.success
    sidecar = json.loads((layout.composites_dir / f"{parse_spec(spec).slug}.json").read_text())
    assert sidecar["used"] == 2 and sidecar["alignment"]["landmarks_source"] == {"detector": 2}
    assert sidecar["method"] == "eyes" and sidecar["skipped"] == []
    grey = _pixels(layout.composites_dir / f"{parse_spec(spec).slug}.png").astype(float).mean(axis=2)
    for x, y in eye_target_pixels(side):
        assert grey[round(y) - 1:round(y) + 2, round(x) - 1:round(x) + 2].max() > 150  # both dots land here
    assert grey[side // 2:, :].max() < 30  # nothing else is bright


def test_too_few_matches_are_recorded_with_the_count_not_failed(known_set) -> None:
    spec = "gender=male"
    result = _materialize(known_set, _instance_with(spec), ["composite"], spec, min_faces=3)
    assert result.success  # a spec that cannot be built is a recorded reason, not a red run
    meta = result.asset_materializations_for_node("composite")[0].metadata
    assert meta["status"].value == "not built"
    assert "'gender=male' matched 1 faces" in meta["reason"].value and "at least 3" in meta["reason"].value
    folder = Layout.from_roots(known_set, "m").composites_dir
    assert not (folder / "gender.male.png").exists()
    sidecar = json.loads((folder / "gender.male.json").read_text())
    assert sidecar["status"] == "not_built" and sidecar["matched"] == 1 and sidecar["min_faces"] == 3
    # excluded faces are counted in the reason too (an explicit method does not fall back)
    result = _materialize(known_set, _instance_with("method=eyes"), ["composite"], "method=eyes", min_faces=5)
    reason = result.asset_materializations_for_node("composite")[0].metadata["reason"].value
    assert "matched 5 faces, 1 of them without eye landmarks" in reason and "leaving 4" in reason


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
        list(defs.assets), resources=resources(known_set, {"composite_size": SIDE}, min_faces=1), instance=instance,
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


def test_purity_against_true_labels_only_when_they_are_configured(known_set) -> None:
    layout = Layout.from_roots(known_set, "m")
    layout.labels_dir.mkdir(parents=True)
    # img_b's face is truly male; img_cd has two faces, so its label reaches neither
    (layout.labels_dir / "truth.csv").write_text(
        "file,age,gender,race\nimg_a.jpg,20-29,Female,White\nimg_b.jpg,20-29,Male,White\n"
        "img_cd.jpg,20-29,Female,White\nimg_e.jpg,20-29,Female,White\n")
    spec = "gender=female"
    instance = _instance_with(spec, "gender=male")
    plain = _materialize(known_set, instance, ["composite"], spec)
    assert "purity_vs_truth" not in plain.asset_materializations_for_node("composite")[0].metadata
    run = dg.materialize(
        list(defs.assets), instance=instance, selection=["composite"], partition_key=spec,
        resources={**resources(known_set, {"composite_size": SIDE}, min_faces=2),
                   "labels": LabelsResource(truth_labels="labels/truth.csv")},
    )
    meta = run.asset_materializations_for_node("composite")[0].metadata
    assert meta["purity_vs_truth"].value == "gender=female 50.0% (1/2 of 3)"  # face_a pure, face_b not, face_c ?
    both = dg.materialize(
        list(defs.assets), instance=instance, selection=["composite"],
        resources={**resources(known_set, {"composite_size": SIDE}, min_faces=1),
                   "labels": LabelsResource(truth_labels="labels/truth.csv")},
        tags={"dagster/asset_partition_range_start": spec, "dagster/asset_partition_range_end": "gender=male"},
    )
    summary = both.asset_materializations_for_node("composite")[0].metadata["summary"].value
    assert summary.splitlines()[0].endswith("| purity vs truth |")
    assert "| gender.male.png | gender=male - (0/0 of 1) |" in summary  # face_d shares img_cd: no truth


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
    runs = composite_runs(registered, ["all", "a", "d"])
    assert [(run.select, run.partitions) for run in runs] == [("composite", ("all", "a")), ("composite", ("d", "d"))]
    assert runs[1].tags == {"dagster/asset_partition_range_start": "d", "dagster/asset_partition_range_end": "d"}


def test_analysis_selection_leaves_out_partitioned_composites() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in dg.AssetSelection.from_string(ANALYSIS_SELECTION).resolve(graph)}
    assert "embeddings_clip" in keys and "attributes" in keys and "attractiveness_scores" in keys
    assert not keys & {"composite", "contact_sheet", "master_metadata", "face_detections", "face_chips"}
