"""Face quality: head pose from landmarks (known geometry, drawn and real faces), sharpness, the verdict."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageFilter

from facestats_core.faces.chips import chip_geometry, extract_chip
from facestats_core.faces.detection import eye_centres, five_points
from facestats_core.faces.face_table import centred_square
from facestats_core.faces.pose import MODEL_POINTS, head_pose, roll_degrees
from facestats_core.faces.quality import QUALITY_REASONS, QualityConfig, face_quality, quality_reasons
from facestats_core.images.preprocess import laplacian_variance
from tests.core.faces.photos import VENDORED, group_photo_detections, needs_dlib


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Model → camera rotation: yaw turns the nose to the image's right, pitch lifts it, roll turns the image."""
    y, p, r = map(math.radians, (yaw, pitch, roll))
    turn = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    lift = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    spin = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return spin @ lift @ turn


def projected_face(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, scale: float = 2.0) -> np.ndarray:
    """68 landmarks in pixels: the model points seen under the rotation (orthographic), eyes from their corners."""
    points = np.zeros((68, 2))
    for index, xyz in MODEL_POINTS.items():
        points[index] = (rotation(yaw, pitch, roll) @ np.asarray(xyz))[:2] * scale + 300.0
    for outer, inner, lids in ((36, 39, [37, 38, 40, 41]), (45, 42, [43, 44, 46, 47])):
        points[lids] = (points[outer] + points[inner]) / 2.0
    return points


@pytest.mark.parametrize(("yaw", "pitch"), [(0, 0), (30, 0), (-45, 0), (60, 0), (0, 20), (0, -25), (20, 10)])
def test_pose_of_the_model_seen_from_known_angles(yaw: float, pitch: float) -> None:
    pose = head_pose(projected_face(yaw, pitch))
    assert pose.yaw == pytest.approx(yaw, abs=1.0) and pose.pitch == pytest.approx(pitch, abs=1.0)
    # the eye line tilts a little when the head is both turned and lifted (roll is the line's angle)
    assert pose.roll == pytest.approx(0.0, abs=1.0 if yaw * pitch == 0 else 5.0) and pose.reason is None


def test_roll_is_the_eye_line_angle_and_does_not_change_yaw() -> None:
    for roll in (15.0, -40.0, 90.0, 180.0):
        pose = head_pose(projected_face(25.0, 0.0, roll))
        assert abs((pose.roll - roll + 180.0) % 360.0 - 180.0) < 1.0
        assert pose.yaw == pytest.approx(25.0, abs=1.0)
    assert roll_degrees(np.array([[0.0, 0.0], [10.0, 10.0]])) == pytest.approx(45.0)


def test_compressing_one_half_of_a_frontal_face_reads_as_a_turn_towards_it() -> None:
    frontal = projected_face()
    centre = frontal[30, 0]
    turned = frontal.copy()
    right = turned[:, 0] > centre
    turned[right, 0] = centre + (turned[right, 0] - centre) * 0.6  # the image-right half recedes
    left = frontal.copy()
    away = left[:, 0] < centre
    left[away, 0] = centre + (left[away, 0] - centre) * 0.6
    assert head_pose(turned).yaw > 10.0 and head_pose(left).yaw < -10.0


def test_without_68_landmarks_pose_is_null_with_a_reason() -> None:
    assert head_pose(None).reason == "no_landmarks" and head_pose(None).roll is None
    five = head_pose(five_points(projected_face(0.0, 0.0, 20.0)))
    assert five.yaw is None and five.pitch is None and five.roll == pytest.approx(20.0, abs=1.0)
    assert five.reason == "no_68_landmarks"
    assert head_pose(np.zeros((68, 2))).reason == "degenerate"
    assert head_pose(np.ones((3, 2))).reason == "no_landmarks"


def test_the_drawn_demo_faces_are_frontal_and_good() -> None:
    from facestats_demo.faces import demo_face
    from facestats_demo.geometry import face_landmarks68

    for index in range(12):
        face = demo_face(0, index, 256)
        landmarks = face_landmarks68(face.traits, 256)
        geometry = chip_geometry(centred_square(256, 256), eye_centres(landmarks), 0.25, whole_image=True)
        sharpness = laplacian_variance(extract_chip(face.image, geometry, 224))
        judged = face_quality(landmarks, sharpness, 256.0, 1.0, QualityConfig())
        assert abs(judged["yaw"]) < 6.0, index
        assert judged["quality"] == "good" and judged["quality_reasons"] == [], (index, judged)


def test_sharpness_tells_a_photo_from_its_blurred_copy() -> None:
    face = Image.open(VENDORED / "astronaut.jpg").convert("RGB").crop((150, 50, 290, 190))
    sharp = laplacian_variance(face.resize((224, 224), Image.Resampling.BICUBIC))
    blurred = laplacian_variance(face.filter(ImageFilter.GaussianBlur(3)).resize((224, 224), Image.Resampling.BICUBIC))
    config = QualityConfig()
    assert sharp > config.blur_threshold > blurred
    assert "blurry" in quality_reasons(None, None, blurred, 140.0, 1.0, config)
    assert quality_reasons(None, None, sharp, 140.0, 1.0, config) == []


def test_each_reason_comes_from_its_threshold() -> None:
    config = QualityConfig(max_yaw=30, max_pitch=45, blur_threshold=20, tiny_px=48, min_quality_score=0.5)
    assert quality_reasons(35, -50, 5, 30, 0.2, config) == list(QUALITY_REASONS)
    assert quality_reasons(-29, 44, 21, 48, 0.5, config) == []
    assert quality_reasons(None, None, None, None, None, config) == []  # nothing measured: nothing wrong
    profile = face_quality(projected_face(50.0), 100.0, 120.0, 1.0, config)
    assert profile["quality"] == "poor" and profile["quality_reasons"] == ["profile"]
    unknown = face_quality(None, 100.0, 120.0, 1.0, config)
    assert unknown["quality"] == "good" and unknown["pose_note"] == "no_landmarks" and unknown["yaw"] is None
    with pytest.raises(ValueError, match="max_yaw"):
        QualityConfig(max_yaw=0)


@needs_dlib
def test_a_composite_of_the_real_group_photo_takes_its_near_frontal_faces(tmp_path: Path) -> None:
    """Detection -> chips (judged) -> master -> composite: the two faces turned clearly towards the image's
    left (about 40°) read as profile and are left out with their reasons; ``quality=any`` takes all six."""
    from facestats_core.analysis.master import build_master
    from facestats_core.composites.build import CompositeSettings, build_composite
    from facestats_core.faces.chips import ChipConfig, chip_manifest
    from facestats_core.io.layout import Layout

    manifest, raw, detections = group_photo_detections(tmp_path)
    layout = Layout.from_roots(tmp_path, tmp_path / "models")
    chips, _ = chip_manifest(detections, raw, layout.chips_dir, ChipConfig(composite_size=128))
    master, _ = build_master(manifest, detections, chips)
    faces = master.filter(pl.col("face_id").is_not_null()).sort("box_x0")
    assert faces.height == 6 and faces["yaw"].is_not_null().all() and (faces["yaw"] < 5.0).all()
    profile = [abs(yaw) > QualityConfig().max_yaw for yaw in faces["yaw"]]
    # left to right: frontal (head tilted), turned ~40°, frontal, turned ~20°, turned ~40°, turned ~15°
    assert profile == [False, True, False, False, True, False], faces["yaw"].to_list()
    assert faces["sharpness"].min() > QualityConfig().blur_threshold  # a sharp photo: none is blurry
    settings = CompositeSettings(min_faces=2, size=128)
    built = build_composite("all", master, layout, settings)
    turned = sorted(faces.filter(pl.Series(profile))["face_id"].to_list())
    assert built.meta["used"] == 4 and not set(turned) & set(built.meta["face_ids"])
    assert [face for face, _ in built.meta["excluded_quality_faces"]] == turned
    assert all("profile" in reasons for _, reasons in built.meta["excluded_quality_faces"])
    assert built.meta["excluded_quality"] == 2 and built.meta["excluded_quality_by_reason"]["profile"] == 2
    every = build_composite("quality=any", master, layout, settings)
    assert every.meta["used"] == 6 and every.meta["excluded_quality"] == 0


def test_the_score_threshold_is_the_detectors_own_scale() -> None:
    from facestats_core.faces.detectors import quality_score, resolved_choice

    assert quality_score("retinaface") == quality_score("yunet") == 0.8  # probabilities
    assert quality_score("dlib") == quality_score("hog") == 0.5  # dlib HOG's SVM margin
    assert quality_score("auto") == quality_score(resolved_choice("auto"))
    assert resolved_choice("HOG") == "dlib" and resolved_choice("none") == "none"
    with pytest.raises(ValueError, match="detector must be one of"):
        resolved_choice("mtcnn")
    unset = QualityConfig()  # no score threshold: a score is never a reason
    assert quality_reasons(None, None, None, None, 0.01, unset) == []
    assert quality_reasons(None, None, None, None, 0.7, QualityConfig(min_quality_score=quality_score("retinaface"))) \
        == ["low_score"]
