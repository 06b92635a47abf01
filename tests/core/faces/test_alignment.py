"""Face alignment: similarity fits, eyes landing on their targets, landmark readers, dlib."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.faces.alignment import (
    DEFAULT_EYE_TARGETS,
    AlignmentConfig,
    align_face,
    alignment_matrix,
    eye_target_pixels,
    read_landmarks_csv,
    similarity_transform,
    transform_points,
)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    t = math.radians(angle_deg)
    c, s = math.cos(t) * scale, math.sin(t) * scale
    return np.array([[c, -s, tx], [s, c, ty]])


def test_similarity_transform_two_points_exact() -> None:
    src = np.array([[30.0, 40.0], [70.0, 52.0]])
    dst = np.array([[89.1, 102.0], [166.1, 102.0]])
    m = similarity_transform(src, dst)
    assert np.allclose(transform_points(m, src), dst, atol=1e-9)
    # a similarity: equal-norm orthogonal columns, no reflection
    a = m[:, :2]
    assert np.isclose(a[0, 0], a[1, 1]) and np.isclose(a[0, 1], -a[1, 0])
    assert np.linalg.det(a) > 0


def test_similarity_transform_recovers_known_transform_least_squares() -> None:
    rng = np.random.default_rng(0)
    truth = _similarity(17.0, 1.7, 12.0, -5.0)
    src = rng.uniform(0, 200, size=(20, 2))
    dst = transform_points(truth, src) + rng.normal(0, 0.01, size=(20, 2))
    assert np.allclose(similarity_transform(src, dst), truth, atol=0.01)
    # a reflected target still yields a proper rotation (Umeyama's sign fix)
    mirrored = dst * np.array([-1.0, 1.0])
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :2]) > 0


def test_similarity_transform_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([[0.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError):
        similarity_transform(np.array([[0.0, np.nan], [1.0, 0.0]]), np.zeros((2, 2)))


def _face_with_dots(size: int, left: tuple[float, float], right: tuple[float, float]) -> Image.Image:
    """Grey textured square with a red Gaussian dot at ``left`` and a blue one at ``right``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    pixels = np.empty((size, size, 3))
    pixels[...] = 110.0 + 20.0 * np.sin(xx / 9.0)[..., None] * np.cos(yy / 13.0)[..., None]
    for (x, y), channel in ((left, 0), (right, 2)):
        blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0**2))
        pixels[..., channel] += 140.0 * blob
        for other in {0, 1, 2} - {channel}:
            pixels[..., other] -= 100.0 * blob
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def _dot_centre(image: Image.Image, channel: int) -> tuple[float, float]:
    arr = np.asarray(image, dtype=np.float64)
    others = [c for c in range(3) if c != channel]
    weight = np.clip(arr[..., channel] - arr[..., others].mean(axis=-1) - 60.0, 0, None)
    assert weight.sum() > 0, "dot not found"
    yy, xx = np.mgrid[0 : arr.shape[0], 0 : arr.shape[1]]
    return float((xx * weight).sum() / weight.sum()), float((yy * weight).sum() / weight.sum())


@pytest.mark.parametrize(
    ("size", "left", "right", "out"),
    [
        (256, (90.0, 110.0), (160.0, 110.0), 256),  # upright, shifted
        (256, (80.3, 130.7), (150.2, 101.9), 256),  # rotated ~-22°
        (200, (60.0, 60.0), (95.0, 80.0), 256),  # rotated +30°, upscaled
        (320, (100.5, 140.0), (230.0, 150.0), 128),  # downscaled
        (256, (150.0, 120.0), (100.0, 118.0), 256),  # "left" given on the right: 180° turn
    ],
)
def test_align_face_puts_eyes_on_targets(
    size: int, left: tuple[float, float], right: tuple[float, float], out: int
) -> None:
    image = _face_with_dots(size, left, right)
    aligned = align_face(image, left, right, output_size=out)
    assert aligned.size == (out, out) and aligned.mode == "RGB"
    targets = eye_target_pixels(out, DEFAULT_EYE_TARGETS)
    assert math.dist(_dot_centre(aligned, 0), targets[0]) < 1.5
    assert math.dist(_dot_centre(aligned, 2), targets[1]) < 1.5
    m = alignment_matrix(left, right, out)
    assert np.allclose(transform_points(m, np.array([left, right])), targets)


def test_align_face_custom_targets_and_mode() -> None:
    left, right = (70.0, 90.0), (140.0, 100.0)
    image = _face_with_dots(256, left, right).convert("RGBA")
    targets = ((0.3, 0.45), (0.7, 0.45))
    aligned = align_face(image, left, right, output_size=200, eye_targets=targets, fill=(255, 0, 255))
    expected = eye_target_pixels(200, targets)
    assert math.dist(_dot_centre(aligned, 0), expected[0]) < 1.5
    assert math.dist(_dot_centre(aligned, 2), expected[1]) < 1.5


def test_align_demo_face_with_truth_eyes() -> None:
    from facestats_demo.drawing import render_face

    image, (left, right) = render_face("female", "30-39", "white", np.random.default_rng(3), 128)
    aligned = align_face(image, left, right, output_size=128)
    assert aligned.size == (128, 128)
    assert np.asarray(aligned).std() > 10  # a picture, not a blank


def test_alignment_config_version() -> None:
    config = AlignmentConfig()
    assert config.version == "eyes256-350-400-650-400-q95-v1"
    assert AlignmentConfig(output_size=128).version != config.version
    with pytest.raises(ValueError):
        AlignmentConfig(eye_targets=((0.7, 0.4), (0.3, 0.4)))


def test_read_landmarks_demo_truth(tmp_path: Path) -> None:
    from facestats_demo.faces import DemoSpec, generate_demo_dataset

    dataset = generate_demo_dataset(tmp_path, DemoSpec(n_images=3, size=64))
    frame = read_landmarks_csv(dataset.truth)
    assert frame.columns == ["file", "left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y"]
    assert frame.height == 3 and frame["left_eye_x"].dtype == pl.Float64
    assert (frame["left_eye_x"] < frame["right_eye_x"]).all()


def test_read_landmarks_celeba_and_errors(tmp_path: Path) -> None:
    celeba = tmp_path / "list_landmarks_align_celeba.txt"
    celeba.write_text(
        "2\n"
        "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n"
        "000001.jpg    69  109  106  113   77  142   73  152  108  154\n"
        "000002.jpg    69  110  107  112   81  135   70  151  108  153\n"
    )
    frame = read_landmarks_csv(celeba)
    assert frame.row(0) == ("000001.jpg", 69.0, 109.0, 106.0, 113.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,left_eye_x,left_eye_y\na.jpg,1,2\n")
    with pytest.raises(ValueError, match="missing landmark columns"):
        read_landmarks_csv(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("file,left_eye_x,left_eye_y,right_eye_x,right_eye_y\na.jpg,1,2,,4\n")
    with pytest.raises(ValueError, match="missing landmarks"):
        read_landmarks_csv(empty)
