"""Face detection on real photos: every face, boxes in original coordinates, a row for every image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.faces.detection import DetectedFace, detect_bounded, eye_centres, five_points
from facestats_core.faces.face_table import DetectionConfig, DetectionPool, detect_manifest
from facestats_core.images.scan import scan_shards
from facestats_core.io.hashing import shard_keys
from tests.core.faces.photos import grace_hopper, needs_cnn, needs_dlib, write_photo_folder


class Recorder:
    """A detector that reports one fixed face and remembers the sizes it was shown."""

    name = "recorder"

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def detect(self, image: Image.Image) -> list[DetectedFace]:
        self.sizes.append(image.size)
        w, h = image.size
        points = np.array([[0.4 * w, 0.4 * h], [0.6 * w, 0.4 * h]])
        return [DetectedFace(box=(0.3 * w, 0.3 * h, 0.7 * w, 0.7 * h), score=1.0, landmarks=points)]


def test_bounded_copy_maps_boxes_back_to_the_original() -> None:
    recorder = Recorder()
    faces = detect_bounded(Image.new("RGB", (4000, 2000)), recorder, max_side=1000)
    assert recorder.sizes == [(1000, 500)]
    assert faces[0].box == pytest.approx((1200, 600, 2800, 1400))
    assert faces[0].landmarks[1] == pytest.approx([2400, 800])
    small = detect_bounded(Image.new("RGB", (800, 600)), recorder, max_side=1000)
    assert recorder.sizes[-1] == (800, 600) and small[0].box == pytest.approx((240, 180, 560, 420))


def test_eye_centres_and_five_points_from_68() -> None:
    points = np.zeros((68, 2))
    points[36:42] = [30.0, 40.0]
    points[42:48] = [10.0, 42.0]  # the face's order (36-41 first), not the image's: an upside-down face
    points[30], points[48], points[54] = [20, 60], [12, 80], [28, 80]
    assert eye_centres(points) == ((30.0, 40.0), (10.0, 42.0))
    assert five_points(points)[2:].tolist() == [[20, 60], [12, 80], [28, 80]]
    assert eye_centres(None) is None and eye_centres(np.zeros((3, 2))) is None


@needs_dlib
@pytest.mark.parametrize("choice", ["dlib", pytest.param("retinaface", marks=needs_cnn)])
def test_real_photos_every_face_and_a_row_for_every_image(tmp_path: Path, choice: str) -> None:
    from facestats_core.faces.detectors import pick_face_detector

    expected = write_photo_folder(tmp_path / "raw")
    raw = scan_shards(tmp_path / "raw", shard_keys(1), 1)[0]["00"]
    detector, name = pick_face_detector(choice)
    table, stats = detect_manifest(raw, tmp_path / "raw", detector, DetectionConfig(detector_name=name))
    assert set(table["path"]) == set(expected)  # every image has a row
    faces = table.filter(pl.col("face_id").is_not_null())
    counts = dict(faces.group_by("path").len().iter_rows())
    assert {path: counts.get(path, 0) for path in expected} == expected
    assert table.filter(pl.col("path") == "coffee.jpg")["reason"].to_list() == ["no_face"]
    assert faces["face_id"].n_unique() == faces.height and (faces["landmark_points"] == 68).all()
    edge = faces.filter(pl.col("path") == "edge_face.jpg").row(0, named=True)
    assert edge["box_x0"] > 1300  # found in the original, where a centre crop would have cut it away
    large = faces.filter(pl.col("path") == "large_small_face.jpg").row(0, named=True)
    assert 2200 < large["box_x0"] < large["box_x1"] < 2712 and large["image_width"] == 3000
    assert stats.detector_runs == len(expected) and stats.reasons == {"no_face": 1}


@needs_dlib
def test_face_ids_are_stable_and_grace_hopper_has_one_face(tmp_path: Path) -> None:
    from facestats_core.faces.dlib_detector import DlibFaceDetector
    from facestats_core.faces.face_table import faces_of_image

    image = Image.open(grace_hopper()).convert("RGB")
    config = DetectionConfig(detector_name="dlib")
    first, ran = faces_of_image(image, "ab12", "g.jpg", DlibFaceDetector(), config)
    again, _ = faces_of_image(image, "ab12", "g.jpg", DlibFaceDetector(), config)
    assert ran and len(first) == 1 and first[0]["face_id"] == again[0]["face_id"]
    assert first[0]["face_id"].startswith("ab12_")
    (left, right) = eye_centres(np.asarray(first[0]["landmarks"]))
    assert 150 < left[0] < right[0] < 360 and abs(left[1] - right[1]) < 20


@needs_dlib
@pytest.mark.parametrize("choice", ["dlib", pytest.param("retinaface", marks=needs_cnn)])
def test_detection_in_worker_processes_gives_the_same_rows(tmp_path: Path, choice: str) -> None:
    from facestats_core.faces.detectors import pick_face_detector
    from facestats_core.faces.face_table import PARALLEL_MIN_IMAGES
    from tests.core.faces.photos import VENDORED

    raw = tmp_path / "raw"
    raw.mkdir()
    astronaut = Image.open(VENDORED / "astronaut.jpg").convert("RGB").resize((256, 256))
    for i in range(PARALLEL_MIN_IMAGES):  # distinct bytes, the same face
        copy = astronaut.copy()
        copy.putpixel((i, 0), (i, i, i))
        copy.save(raw / f"a{i:02d}.png")
    manifest = scan_shards(raw, shard_keys(1), 1)[0]["00"]
    detector, name = pick_face_detector(choice)  # a CNN uses every core here, one thread per worker there
    config = DetectionConfig(detector_name=name)
    alone, stats = detect_manifest(manifest, raw, detector, config)
    pooled, pooled_stats = detect_manifest(manifest, raw, detector, config, workers=2)
    assert pooled.equals(alone) and pooled_stats.detector_runs == stats.detector_runs == PARALLEL_MIN_IMAGES
    assert alone["face_id"].null_count() == 0
    with DetectionPool(detector, 2) as pool:  # one pool lent to two manifests: started once, the same rows
        first, _ = detect_manifest(manifest, raw, detector, config, pool=pool)
        executor = pool._executor
        second, _ = detect_manifest(manifest, raw, detector, config, pool=pool)
        assert executor is not None and pool._executor is executor
        other, _ = pick_face_detector(choice)
        with pytest.raises(ValueError, match="the detector it was made with"):
            detect_manifest(manifest, raw, other, config, pool=pool)
    assert pool._executor is None
    assert first.equals(alone) and second.equals(alone)
