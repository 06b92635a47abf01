"""The default CNN detector on real photos: every face of a group, turned and tiny faces, none on
non-face photos, 68 landmarks on the face, upright chips, and a cache key that names the detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facestats_core.faces.chips import chip_geometry, landmarks_in_chip
from facestats_core.faces.cnn_detector import CnnFaceDetector, unrotate_points, windows
from facestats_core.faces.detection import detect_bounded, eye_centres, nms
from facestats_core.faces.face_table import DetectionConfig, faces_of_image
from tests.core.faces.photos import VENDORED, group_photo, needs_cnn

pytestmark = needs_cnn


@pytest.fixture(scope="module")
def detector() -> CnnFaceDetector:
    return CnnFaceDetector(threads=1)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.open(VENDORED / "astronaut.jpg").convert("RGB")


def _inside(points: np.ndarray, box: tuple[float, ...], slack: float) -> bool:
    side = box[2] - box[0]
    return bool(((points >= np.array(box[:2]) - slack * side) & (points <= np.array(box[2:]) + slack * side)).all())


def test_six_faces_of_the_group_photo_with_68_landmarks_on_each(tmp_path: Path, detector: CnnFaceDetector) -> None:
    image = Image.open(group_photo(tmp_path / "t1.jpg")).convert("RGB")
    faces = detect_bounded(image, detector)
    assert len(faces) == 6
    for face in faces:
        assert face.landmarks.shape == (68, 2) and face.points5.shape == (5, 2)
        assert _inside(face.landmarks, face.box, 0.3) and _inside(face.points5, face.box, 0.0)  # the jaw passes the HOG box
        assert face.rotation_pass == 0 and abs(face.rotation) < 35
        # the 68-point eyes sit on the detector's own eye points (within a fifth of the eye distance)
        (l68, r68), (l5, r5) = eye_centres(face.landmarks), eye_centres(face.points5)
        ocular = np.hypot(r5[0] - l5[0], r5[1] - l5[1])
        assert np.hypot(l68[0] - l5[0], l68[1] - l5[1]) < 0.2 * ocular
        assert np.hypot(r68[0] - r5[0], r68[1] - r5[1]) < 0.2 * ocular


@pytest.mark.parametrize("angle", [90, 45, 180])
def test_a_turned_face_is_found_and_its_chip_is_upright(astronaut: Image.Image, detector: CnnFaceDetector,
                                                        angle: int) -> None:
    turned = astronaut.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    faces = detect_bounded(turned, detector)
    assert len(faces) == 1
    face = faces[0]
    # PIL turns counter-clockwise: the face's eye line then points up by `angle` (rotation = -angle)
    assert abs((face.rotation + angle + 180) % 360 - 180) < 20
    geometry = chip_geometry(face.box, eye_centres(face.landmarks), 0.25)
    chip = landmarks_in_chip(face.landmarks, geometry, 512)
    left, right = chip[36:42].mean(axis=0), chip[42:48].mean(axis=0)
    mouth = chip[48:68].mean(axis=0)
    assert left[0] < right[0] and abs(left[1] - right[1]) < 8 and mouth[1] > left[1] + 60


def test_a_30_px_face_in_a_3000_px_photo_is_found(astronaut: Image.Image, detector: CnnFaceDetector) -> None:
    head = astronaut.crop((120, 0, 320, 220)).resize((66, 73), Image.Resampling.LANCZOS)  # face ~30 px wide
    canvas = Image.new("RGB", (3000, 2000), (90, 110, 130))
    canvas.paste(head, (2400, 1500))
    faces = detect_bounded(canvas, detector)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    assert 2400 < x0 < x1 < 2466 and 1500 < y0 < y1 < 1573 and x1 - x0 >= 24


def test_no_face_on_real_non_face_photos(detector: CnnFaceDetector) -> None:
    import skimage.data

    assert detect_bounded(Image.open(VENDORED / "coffee.jpg").convert("RGB"), detector) == []
    false = 0
    for crop in skimage.data.lfw_subset()[100:150]:  # half of the non-face half: at most 1 false face per 100
        face = Image.fromarray((crop * 255).round().astype(np.uint8)).resize((100, 100)).convert("RGB")
        canvas = Image.new("RGB", (200, 200), (128, 128, 128))
        canvas.paste(face, (50, 50))
        false += len(detect_bounded(canvas, detector))
    assert false <= 1


def test_rows_record_the_detector_points_and_rotation(astronaut: Image.Image, detector: CnnFaceDetector) -> None:
    config = DetectionConfig(detector_name=detector.name)
    rows, ran = faces_of_image(astronaut.rotate(90, expand=True), "ab12", "a.jpg", detector, config)
    assert ran and len(rows) == 1
    row = rows[0]
    assert row["landmark_points"] == 68 and len(row["landmarks5"]) == 10
    assert row["rotation_pass"] in (90, 270) and abs(abs(row["rotation"]) - 90) < 20


def test_the_detection_version_names_the_detector_and_its_version() -> None:
    from facestats_core.faces.detectors import pick_face_detector
    from facestats_core.faces.retinaface import package_version

    retina, name = pick_face_detector("auto")
    assert isinstance(retina, CnnFaceDetector) and name.startswith(f"retinaface-{package_version()}-")
    versions = {DetectionConfig(detector_name=pick_face_detector(choice)[1]).version
                for choice in ("retinaface", "yunet", "dlib")}
    versions.add(DetectionConfig(detector_name=pick_face_detector("retinaface", min_score=0.7)[1]).version)
    assert len(versions) == 4
    assert pick_face_detector("hog")[1] == pick_face_detector("dlib")[1]


def test_windows_bound_every_call_and_cover_small_faces() -> None:
    assert windows(1280, 886, 1600, 24, 24) == [(1.0, (0, 0, 1280, 886))]
    regions = windows(6000, 4000, 1600, 24, 24)
    scale, whole = regions[0]
    assert whole == (0, 0, 6000, 4000) and scale == pytest.approx(1600 / 6000)
    tiles = [box for s, box in regions[1:]]
    assert all(s == 1.0 for s, _ in regions[1:]) and all(x1 - x0 <= 1600 and y1 - y0 <= 1600 for x0, y0, x1, y1 in tiles)
    needed = 24 / scale  # faces the whole-image copy can miss are at most this wide
    for x in range(0, 6000 - int(needed), 97):  # every such face lies wholly inside one tile
        for y in range(0, 4000 - int(needed), 89):
            assert any(x0 <= x and x + needed <= x1 and y0 <= y and y + needed <= y1 for x0, y0, x1, y1 in tiles)


def test_points_of_a_turned_image_map_back_to_the_original() -> None:
    image = Image.new("RGB", (7, 4))
    image.putpixel((5, 1), (255, 0, 0))
    for turn, transpose in ((90, Image.Transpose.ROTATE_90), (180, Image.Transpose.ROTATE_180),
                            (270, Image.Transpose.ROTATE_270)):
        turned = np.asarray(image.transpose(transpose))
        v, u = np.argwhere(turned[:, :, 0] == 255)[0]
        assert unrotate_points(np.array([u, v], dtype=float), turn, 7, 4).tolist() == [5.0, 1.0]


def test_nms_drops_overlapping_and_contained_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [2, 2, 6, 6], [20, 20, 30, 30]], dtype=float)
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), iou=0.4).tolist() == [0, 2, 3]
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), iou=0.4, contained=0.6).tolist() == [0, 3]
