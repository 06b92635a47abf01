"""The default path (face_mode `detect`, the default detector) through every asset on real photos: a
six-person group photo, a small face in a large photo, a face at the edge, a grayscale portrait, a
photo without a face and the hostile files; faces per file, reasons, a master row for every file,
every face embedded by CLIP, a composite averaged from real detected faces, the report.

The other Dagster tests force `face_mode=whole` (their demo faces are pre-cropped); this one does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl

from facestats_core.composites.filter_spec import parse_spec
from facestats_core.io.layout import Layout
from facestats_dagster.definitions import defs
from facestats_dagster.partitions import ALL_SHARDS_RANGE, COMPOSITE_SPECS
from facestats_dagster.resources import ClipResource, CompositesResource
from tests.core.faces.photos import needs_cnn, needs_dlib, write_detect_set
from tests.dagster.resources import make_resources

ALL_BUT_COMPOSITES = dg.AssetSelection.all() - dg.AssetSelection.assets("composite", "contact_sheet")
FIRST, LAST = ALL_SHARDS_RANGE.split("...")


def faces_per_file(table: pl.DataFrame) -> dict[str, int]:
    """Path -> number of face rows (0 for a file whose one row has no face)."""
    return {path: int(n) for path, n in table.group_by("path").agg(pl.col("face_id").count()).iter_rows()}


@needs_dlib
@needs_cnn
def test_default_detect_path_on_real_photos_reaches_master_composite_and_report(
    tmp_path: Path, tiny_clip_dir: Path
) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    faces, reasons, errors = write_detect_set(data / "raw")
    resources = make_resources(data, models, clip=ClipResource(model=str(tiny_clip_dir), batch_size=8),
                               face_mode="detect", composites=CompositesResource(min_faces=2))
    assert resources["faces"].face_mode == "detect"
    instance = dg.DagsterInstance.ephemeral()
    run = dg.materialize(list(defs.assets), resources=resources, instance=instance, selection=ALL_BUT_COMPOSITES,
                         tags={"dagster/asset_partition_range_start": FIRST,
                               "dagster/asset_partition_range_end": LAST}, raise_on_error=False)
    assert run.success
    layout = Layout.from_roots(data, models)

    # detection: every file has a row, the right number of faces, and files without one their reason
    detections = layout.read_partitions("face_detections")
    assert faces_per_file(detections) == faces
    found = detections.filter(pl.col("face_id").is_not_null())
    assert found.height == sum(faces.values()) and found["face_id"].n_unique() == found.height
    assert (found["face_source"] == "detector").all() and (found["landmark_points"] == 68).all()
    faceless = detections.filter(pl.col("face_id").is_null())
    assert dict(faceless.select("path", "reason").iter_rows()) == reasons

    # CLIP embedded every detected face (and nothing else); the checks of every asset passed
    embedded = layout.read_artifact("embeddings_clip")
    assert embedded is not None and set(embedded["face_id"]) == set(found["face_id"])
    evaluations = {e.check_name: e for e in run.get_asset_check_evaluations()}
    failed = {name: e.metadata for name, e in evaluations.items() if not e.passed}
    assert not failed, failed  # no labels: zero-shot attributes, no probes, no regressor; nothing below a floor
    assert {"every_face_embedded", "predictions_cover_embeddings", "master_one_row_per_face"} <= set(evaluations)

    # the master table: one row per face and one per faceless file, the same counts and reasons
    master = layout.read_artifact("master_metadata")
    assert master is not None and master.height == sum(faces.values()) + len(reasons)
    assert faces_per_file(master) == faces
    assert dict(master.filter(pl.col("face_id").is_null()).select("path", "reason").iter_rows()) == reasons
    assert dict(master.filter(pl.col("error").is_not_null()).select("path", "error").iter_rows()) == errors
    with_face = master.filter(pl.col("face_id").is_not_null())
    assert with_face["gender"].null_count() == 0 and set(with_face["gender_method"]) == {"zero_shot"}
    assert with_face.filter(pl.col("path") == "photos/group_six.jpg")["faces_in_image"].to_list() == [6] * 6

    # a composite of every face, built from the detected faces' chips, and the report
    instance.add_dynamic_partitions(COMPOSITE_SPECS, ["all"])
    built = dg.materialize(list(defs.assets), resources=resources, instance=instance,
                           selection=["composite"], partition_key="all", raise_on_error=False)
    assert built.success
    assert all(e.passed for e in built.get_asset_check_evaluations())
    sidecar = json.loads((layout.composites_dir / f"{parse_spec('all').slug}.json").read_text())
    assert set(sidecar["face_ids"]) <= set(found["face_id"])
    # every face is matched or left out for its quality (the tiny one at least), with its reasons
    assert sidecar["matched"] + sidecar["excluded_quality"] == found.height and sidecar["used"] >= 6, sidecar
    tiny = found.filter(pl.col("path") == "photos/tiny_face.jpg")["face_id"].to_list()
    assert [[face, ["tiny"]] for face in tiny] == [f for f in sidecar["excluded_quality_faces"] if f[0] in tiny], sidecar
    assert (layout.composites_dir / f"{parse_spec('all').slug}.png").exists()
    report = layout.processed_dir / "report" / "index.html"
    assert report.exists() and "group_six" in report.read_text(errors="replace")
