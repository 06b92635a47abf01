"""The face-detections table: modes, the multi-face policy, reasons, caching per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.faces.detection import DetectedFace
from facestats_core.faces.face_ids import is_face_id, make_face_id
from facestats_core.faces.face_table import DetectionConfig, apply_policy, detect_manifest
from facestats_core.images.scan import scan_shards
from facestats_core.io.hashing import shard_keys


class Boxes:
    """Finds the given boxes (fractions of the image) in every image; counts its calls."""

    def __init__(self, *boxes: tuple[float, float, float, float]) -> None:
        self.boxes, self.calls = boxes, 0

    @property
    def name(self) -> str:
        return f"boxes{len(self.boxes)}"

    def detect(self, image: Image.Image) -> list[DetectedFace]:
        self.calls += 1
        w, h = image.size
        return [DetectedFace(box=(x0 * w, y0 * h, x1 * w, y1 * h), score=0.5) for x0, y0, x1, y1 in self.boxes]


def _manifest(raw: Path) -> pl.DataFrame:
    return scan_shards(raw, shard_keys(1), 1)[0]["00"]


def _photos(raw: Path, n: int, size: tuple[int, int] = (400, 300)) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (20 * i, 100, 50)).save(raw / f"p{i}.jpg")


def test_face_id_is_position_based_and_checked() -> None:
    assert make_face_id("abc", (100, 50, 300, 250), 400, 300) == "abc_500_500"
    assert make_face_id("abc", (0, 0, 4, 4), 400, 300) == "abc_005_006"
    assert is_face_id("abc_500_500") and not is_face_id("abc")
    with pytest.raises(ValueError):
        make_face_id("abc", (0, 0, 1, 1), 0, 10)


def test_policy_size_floor_and_multi_face() -> None:
    big = DetectedFace((0, 0, 100, 100), 1.0)
    small = DetectedFace((0, 0, 10, 10), 1.0)
    bigger = DetectedFace((0, 0, 120, 120), 1.0)
    assert apply_policy([], DetectionConfig()) == ([], "no_face")
    assert apply_policy([small], DetectionConfig()) == ([], "face_too_small")
    assert apply_policy([big, small, bigger], DetectionConfig())[0] == [big, bigger]
    assert apply_policy([big, bigger], DetectionConfig(multi_face="largest"))[0] == [bigger]
    assert apply_policy([big, bigger], DetectionConfig(multi_face="skip_multi")) == ([], "skipped_multi")
    with pytest.raises(ValueError, match="face_mode"):
        DetectionConfig(face_mode="faces")


def test_every_image_keeps_a_row_and_unreadable_files_have_a_reason(raw_folder: Path) -> None:
    raw = _manifest(raw_folder)
    detector = Boxes((0.1, 0.1, 0.4, 0.5), (0.6, 0.1, 0.9, 0.5))
    table, stats = detect_manifest(raw, raw_folder, detector, DetectionConfig(detector_name=detector.name))
    assert set(table["image_id"]) == set(raw["image_id"])  # nothing lost
    unreadable = raw.filter(~pl.col("readable"))["image_id"]
    rows = table.filter(pl.col("image_id").is_in(unreadable.implode()))
    assert rows["reason"].to_list() == ["unreadable"] * unreadable.len() and rows["face_id"].null_count() == rows.height
    faces = table.filter(pl.col("face_id").is_not_null())
    assert faces.height == 2 * (raw.height - unreadable.len()) and faces["face_id"].n_unique() == faces.height
    assert (faces["faces_in_image"] == 2).all() and sorted(set(faces["face_index"])) == [0, 1]
    assert stats.faces == faces.height and stats.reasons["unreadable"] == unreadable.len()


def test_only_new_images_are_detected_again(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _photos(raw, 3)
    detector = Boxes((0.2, 0.2, 0.6, 0.8))
    config = DetectionConfig(detector_name=detector.name)
    first, _ = detect_manifest(_manifest(raw), raw, detector, config)
    assert detector.calls == 3
    _photos(raw, 4)  # one more photo; the others unchanged
    second, stats = detect_manifest(_manifest(raw), raw, detector, config, previous=first)
    assert detector.calls == 4 and stats.detector_runs == 1 and stats.reused == 3
    assert second.height == 4
    other = Boxes((0.1, 0.1, 0.5, 0.5), (0.5, 0.5, 0.9, 0.9))
    detect_manifest(_manifest(raw), raw, other, DetectionConfig(detector_name=other.name), previous=second)
    assert other.calls == 4  # another detector (its name is in the version): every image again


def test_whole_mode_uses_known_landmarks_and_no_detector(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _photos(raw, 2, size=(200, 240))
    eyes = np.array([[70.0, 100.0], [130.0, 104.0]])
    detector = Boxes((0.2, 0.2, 0.6, 0.8))
    table, stats = detect_manifest(_manifest(raw), raw, detector, DetectionConfig(face_mode="whole"),
                                   landmarks={"p0.jpg": eyes})
    rows = {r["path"]: r for r in table.iter_rows(named=True)}
    assert rows["p0.jpg"]["face_source"] == "whole_image" and rows["p0.jpg"]["landmark_points"] == 2
    assert rows["p0.jpg"]["landmarks"] == eyes.ravel().tolist()
    assert (rows["p0.jpg"]["box_x0"], rows["p0.jpg"]["box_y0"], rows["p0.jpg"]["box_x1"]) == (0.0, 20.0, 200.0)
    assert stats.detector_runs == 1 and detector.calls == 1  # only p1 (no landmarks) asked the detector


def test_auto_mode_falls_back_to_the_whole_portrait_only(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    Image.new("RGB", (220, 240)).save(raw / "portrait.jpg")
    Image.new("RGB", (1200, 400)).save(raw / "landscape.jpg")
    nothing = Boxes()
    table, _ = detect_manifest(_manifest(raw), raw, nothing, DetectionConfig(face_mode="auto", detector_name="n"))
    rows = {r["path"]: r for r in table.iter_rows(named=True)}
    assert rows["portrait.jpg"]["face_source"] == "whole_image" and rows["portrait.jpg"]["face_id"]
    assert rows["landscape.jpg"]["face_id"] is None and rows["landscape.jpg"]["reason"] == "no_face"
    table, _ = detect_manifest(_manifest(raw), raw, None, DetectionConfig(face_mode="detect"))
    assert table["reason"].to_list() == ["no_detector", "no_detector"]


def test_a_failing_detector_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    class Broken:
        name = "broken"

        def detect(self, image: Image.Image) -> list[DetectedFace]:
            raise RuntimeError("boom")

    raw = tmp_path / "raw"
    _photos(raw, 2)
    table, stats = detect_manifest(_manifest(raw), raw, Broken(), DetectionConfig(detector_name="broken"))
    assert table["reason"].to_list() == ["detector_error"] * 2 and stats.detector_runs == 2
