"""Face chips: cut from the original at full resolution, eyes level, landmarks mapped, cached."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.faces.chips import (
    ChipConfig,
    chip_geometry,
    chip_manifest,
    chip_to_source,
    decode_for_chips,
    draft_reduction,
    extract_chip,
    landmarks_in_chip,
)
from facestats_core.faces.face_table import DETECTIONS_SCHEMA, no_face_row
from facestats_core.faces.quality import QualityConfig


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1).astype(np.uint8))


def test_geometry_margin_and_eye_angle() -> None:
    cx, cy, side, angle = chip_geometry((100, 100, 200, 180), ((120, 130), (180, 150)), margin=0.25)
    assert (cx, cy, side) == (150, 140, 150) and angle == pytest.approx(math.atan2(20, 60))
    assert chip_geometry((0, 0, 64, 64), None, margin=0.25, whole_image=True) == (32, 32, 64, 0.0)


def test_chip_samples_the_original_where_the_matrix_says() -> None:
    image = _gradient(800, 600)
    geometry = (400.0, 300.0, 200.0, math.radians(10))
    chip = np.asarray(extract_chip(image, geometry, 64), dtype=np.float64)
    matrix = chip_to_source(*geometry, 64)
    source = np.asarray(image, dtype=np.float64)
    for x, y in ((10, 10), (32, 32), (50, 20)):
        sx, sy = matrix[:2, :2] @ [x, y] + matrix[:2, 2]
        assert chip[y, x] == pytest.approx(source[round(sy), round(sx)], abs=6)


def test_large_downscale_is_anti_aliased() -> None:
    stripes = np.zeros((2000, 2000, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: aliasing would give stripes or solid black/white
    chip = np.asarray(extract_chip(Image.fromarray(stripes), (1000.0, 1000.0, 1600.0, 0.0), 64), np.float64)
    assert chip[8:56, 8:56].std() < 8 and abs(chip[8:56, 8:56].mean() - 127.5) < 10


def test_landmarks_follow_the_chip() -> None:
    geometry = (150.0, 140.0, 150.0, math.radians(18))
    points = np.array([[120.0, 130.0], [180.0, 150.0], [150.0, 190.0]])
    mapped = landmarks_in_chip(points, geometry, 300)
    back = mapped @ chip_to_source(*geometry, 300)[:2, :2].T + chip_to_source(*geometry, 300)[:2, 2]
    assert back == pytest.approx(points)


def _detections(image_id: str, path: str, boxes: list[tuple[float, ...]]) -> pl.DataFrame:
    rows = []
    for i, box in enumerate(boxes):
        row = no_face_row(image_id, path, "x", "v")
        row.update(face_id=f"{image_id}_{i:03d}_000", reason=None, face_source="detector", faces_in_image=len(boxes),
                   box_x0=box[0], box_y0=box[1], box_x1=box[2], box_y1=box[3],
                   landmarks=[box[0] + 10, box[1] + 20, box[2] - 10, box[1] + 30], landmark_points=2)
        rows.append(row)
    rows.append(no_face_row("b" * 8, "none.jpg", "no_face", "v"))
    return pl.DataFrame(rows, schema=DETECTIONS_SCHEMA)


def _gradient_folder(tmp_path: Path, boxes: list[tuple[float, ...]]) -> tuple[Path, pl.DataFrame, ChipConfig]:
    """A raw folder with one gradient picture, detections of ``boxes`` in it, and small chip settings."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _gradient(1000, 700).save(raw / "a.png")
    return raw, _detections("a" * 8, "a.png", boxes), ChipConfig(embed_size=48, composite_size=96)


def test_chip_manifest_writes_both_sizes_and_reuses_them(tmp_path: Path) -> None:
    raw, detections, config = _gradient_folder(tmp_path, [(100, 100, 300, 300), (600, 200, 700, 300)])
    chips, stats = chip_manifest(detections, raw, tmp_path / "chips", config)
    assert chips.height == 2 and stats.made == 2 and chips["ok"].all()  # the faceless row has no chip
    for row in chips.iter_rows(named=True):
        assert Image.open(tmp_path / "chips" / row["chip_path"]).size == (48, 48)
        assert Image.open(tmp_path / "chips" / row["composite_path"]).size == (96, 96)
        left, right = np.asarray(row["chip_landmarks"]).reshape(2, 2)
        assert left[1] == pytest.approx(right[1], abs=1e-6)  # eyes level in the chip
    again, stats2 = chip_manifest(detections, raw, tmp_path / "chips", config, previous=chips)
    assert stats2.made == 0 and stats2.reused == 2 and again.equals(chips)
    (tmp_path / "chips" / chips["composite_path"][0]).unlink()
    _, stats3 = chip_manifest(detections, raw, tmp_path / "chips", config, previous=chips)
    assert stats3.made == 1 and stats3.reused == 1
    (raw / "a.png").write_bytes(b"gone")
    failed, stats4 = chip_manifest(detections, raw, tmp_path / "chips", ChipConfig(margin=0.5), previous=chips)
    assert stats4.failed == 2 and not failed["ok"].any() and failed["error"][0].startswith("unreadable")


def test_chip_rows_carry_the_quality_verdict_judged_again_when_reused(tmp_path: Path) -> None:
    raw, detections, config = _gradient_folder(tmp_path, [(100, 100, 300, 300), (600, 200, 640, 240)])
    chips, _ = chip_manifest(detections, raw, tmp_path / "chips", config)
    big, small = chips.sort("face_px", descending=True).iter_rows(named=True)
    # a smooth gradient is blurry; two eye points give roll but no yaw/pitch
    assert big["quality"] == "poor" and big["quality_reasons"] == ["blurry"] and big["flags"] == ["blurry"]
    assert small["quality_reasons"] == ["blurry", "tiny"] and small["flags"] == ["blurry", "tiny"]
    assert big["yaw"] is None and big["pose_note"] == "no_68_landmarks" and big["roll"] == pytest.approx(
        math.degrees(math.atan2(10, 180)), abs=0.01)
    lenient = QualityConfig(blur_threshold=0.0, tiny_px=10)
    again, stats = chip_manifest(detections, raw, tmp_path / "chips", config, previous=chips, quality=lenient)
    assert stats.reused == 2 and again["quality"].to_list() == ["good", "good"] and again["flags"].to_list() == [[], []]


def _reference_chip(image: Image.Image, geometry: tuple[float, float, float, float], size: int) -> Image.Image:
    """The chip by the plain recipe: whole image box-reduced to twice the chip's resolution, one
    bicubic affine resample (what ``extract_chip`` does for a whole decode)."""
    cx, cy, side, angle = geometry
    factor = max(1, int(side / size / 2.0))
    source = image if factor == 1 else image.reduce(factor)
    shift = (factor - 1) / 2.0
    matrix = chip_to_source((cx - shift) / factor, (cy - shift) / factor, side / factor, angle, size)
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    coeffs = (half @ matrix @ np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]]))[:2, :].ravel()
    return source.transform((size, size), Image.Transform.AFFINE, tuple(float(v) for v in coeffs),
                            resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


def _reference_composite_chip(image: Image.Image, geometry: tuple[float, float, float, float], size: int
                              ) -> Image.Image:
    """The composite chip by the plain recipe: the same box reduction, OpenCV's bicubic inverse-mapped warp
    (edges repeated), black wherever a chip pixel's centre falls outside the image."""
    import cv2

    cx, cy, side, angle = geometry
    factor = max(1, int(side / size / 2.0))
    source = np.asarray(image if factor == 1 else image.reduce(factor))
    shift = (factor - 1) / 2.0
    matrix = chip_to_source((cx - shift) / factor, (cy - shift) / factor, side / factor, angle, size)
    chip = cv2.warpAffine(source, matrix[:2], (size, size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    sx, sy = (matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2], matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2])
    h, w = source.shape[:2]
    chip[(sx < -0.5) | (sx >= w - 0.5) | (sy < -0.5) | (sy >= h - 0.5)] = 0
    return Image.fromarray(chip)


def _photo(width: int, height: int) -> Image.Image:
    """Smooth gradient plus seeded texture (JPEG-like content, not flat)."""
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 18, size=(height // 8 + 1, width // 8 + 1, 3))
    texture = np.asarray(Image.fromarray(np.clip(noise + 128, 0, 255).astype(np.uint8)).resize((width, height),
                                                                                              Image.Resampling.BICUBIC))
    return Image.fromarray(np.clip(np.asarray(_gradient(width, height), np.float64) * 0.7 + texture * 0.3 - 20,
                                   0, 255).astype(np.uint8))


def test_whole_decodes_give_the_reference_chips_and_threads_change_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    image = _photo(1400, 1000)
    image.save(raw / "a.png")
    boxes = [(100, 100, 400, 420), (600, 200, 700, 300), (800, 300, 1300, 900)]
    detections = _detections("a" * 8, "a.png", boxes)
    config = ChipConfig(embed_size=48, composite_size=96)
    one, _ = chip_manifest(detections, raw, tmp_path / "one", config, workers=1)
    two, _ = chip_manifest(detections, raw, tmp_path / "two", config, workers=2)
    assert one.equals(two)
    for face, row in zip(detections.filter(pl.col("face_id").is_not_null()).iter_rows(named=True),
                         one.iter_rows(named=True), strict=True):
        points = np.asarray(face["landmarks"]).reshape(-1, 2)
        geometry = chip_geometry((face["box_x0"], face["box_y0"], face["box_x1"], face["box_y1"]),
                                 (tuple(points[0]), tuple(points[1])), config.margin)
        for rel, size, reference in ((row["chip_path"], 48, _reference_chip),
                                     (row["composite_path"], 96, _reference_composite_chip)):
            assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
            expected = io.BytesIO()
            reference(image, geometry, size).save(expected, format="JPEG", quality=config.jpeg_quality)
            assert (tmp_path / "one" / rel).read_bytes() == expected.getvalue()
        # OpenCV's bicubic against Pillow's on the same chip: within JPEG-q95 noise on average
        cv_chip = np.asarray(_reference_composite_chip(image, geometry, 96), dtype=np.float64)
        pil_chip = np.asarray(_reference_chip(image, geometry, 96), dtype=np.float64)
        assert np.abs(cv_chip - pil_chip).mean() < 1.0 and np.abs(cv_chip - pil_chip).max() <= 40


def test_large_jpeg_faces_are_draft_decoded_within_tolerance(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    image = _photo(2400, 1800)
    image.save(raw / "big.jpg", quality=92)
    detections = _detections("c" * 8, "big.jpg", [(700, 400, 1700, 1400)])
    config = ChipConfig(embed_size=64, composite_size=128)
    face = detections.row(0, named=True)
    assert draft_reduction([face], config) == 8  # side 1500: 11x the 128 chip
    copies = decode_for_chips((raw / "big.jpg").read_bytes(), [face], config)
    assert copies.reduced_by == 8 and copies.image.size == (300, 225)
    chips, stats = chip_manifest(detections, raw, tmp_path / "chips", config)
    assert stats.made == 1
    with Image.open(raw / "big.jpg") as opened:
        whole = opened.convert("RGB")
    points = np.asarray(face["landmarks"]).reshape(-1, 2)
    geometry = chip_geometry((700, 400, 1700, 1400), (tuple(points[0]), tuple(points[1])), config.margin)
    for rel, size in ((chips["chip_path"][0], 64), (chips["composite_path"][0], 128)):
        drafted = np.asarray(Image.open(tmp_path / "chips" / rel), np.float64)
        reference = np.asarray(_reference_chip(whole, geometry, size), np.float64)
        assert np.abs(drafted - reference).mean() < 4.0, rel  # of 255, on fine synthetic texture
    image.crop((0, 0, 2396, 1800)).save(raw / "odd.jpg", quality=92)  # 2396 = 4 × 599: drafted by 4, not 8
    odd = decode_for_chips((raw / "odd.jpg").read_bytes(), [face], config)
    assert odd.reduced_by == 4 and odd.image.size == (599, 450)
    small = _detections("d" * 8, "big.jpg", [(700, 400, 800, 500)])  # a small face: decoded whole
    assert draft_reduction(list(small.filter(pl.col("face_id").is_not_null()).iter_rows(named=True)), config) == 1
