"""The landmark warp: mesh, piecewise-affine warp, streaming mean shape, bounded memory, sidecar,
reproducibility, and a real photo (Grace Hopper, dlib's 68 landmarks)."""

from __future__ import annotations

import importlib.util
import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageOps

from facestats_core.composites.build import CompositeSettings, build_composite, composite_method
from facestats_core.composites.filter_spec import parse_spec
from facestats_core.composites.mean_shape import ShapeMean, frame_shape
from facestats_core.composites.mesh import N_LANDMARKS, build_mesh
from facestats_core.composites.warp import warp_face
from facestats_core.composites.warped import Member, WarpSettings, composite_from_members
from facestats_core.faces.alignment import AlignmentConfig, eye_target_pixels
from facestats_core.faces.dlib_detector import face_recognition_models_dir
from facestats_core.images.preprocess import laplacian_variance
from facestats_core.io.layout import Layout

SIZE = 64


def _shape(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """68 distinct points inside the frame whose eye groups are centred on the eye targets."""
    points = rng.uniform(0.2 * size, 0.8 * size, size=(N_LANDMARKS, 2))
    for group, centre in zip((slice(36, 42), slice(42, 48)), eye_target_pixels(size), strict=True):
        ring = rng.normal(0.0, 1.5, size=(6, 2))
        points[group] = ring - ring.mean(axis=0) + centre
    return points


def _linear_image(width: int, height: int) -> np.ndarray:
    """Channels linear in (x, y): bilinear interpolation reproduces them exactly."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.dstack([xs + 10, ys + 20, xs + ys + 5]).astype(np.uint8)


def test_identity_landmarks_reproduce_the_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "face.png")
    built = composite_from_members([Member("a", tmp_path / "face.png", _shape(rng))], "warp", WarpSettings(SIZE))
    np.testing.assert_array_equal(np.asarray(built.image), pixels)
    assert built.warped == ["a"] and built.skipped == [] and built.eyes_fallback == []


def test_known_affine_warp_gives_the_expected_pixels() -> None:
    rng = np.random.default_rng(2)
    mean = _shape(rng)
    mesh = build_mesh(mean, SIZE)
    affine = np.array([[1.3, 0.2, 7.0], [-0.1, 0.9, 11.0]])  # shear + scale + shift, not a similarity
    source = _linear_image(120, 110)
    values, inside = warp_face(source, mean @ affine[:, :2].T + affine[:, 2], mesh)
    face_only = (mesh.pixel_vertices < N_LANDMARKS).all(axis=0)  # triangles of landmarks only
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    where = np.column_stack([xs.ravel(), ys.ravel()]) @ affine[:, :2].T + affine[:, 2]
    expected = np.column_stack([where[:, 0] + 10, where[:, 1] + 20, where.sum(axis=1) + 5])
    assert face_only.sum() > 200 and inside[face_only].all()
    np.testing.assert_allclose(values[face_only], expected[face_only], atol=0.02)


def test_streaming_mean_shape_equals_the_numpy_mean() -> None:
    rng = np.random.default_rng(3)
    shapes = [frame_shape(_shape(rng) * rng.uniform(0.5, 2.0) + rng.uniform(-9, 9, 2), 256) for _ in range(50)]
    means = ShapeMean()
    for shape in shapes:
        means.add(shape)
    np.testing.assert_allclose(means.mean(), np.mean(shapes, axis=0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(means.mean()[36:42].mean(axis=0), eye_target_pixels(256)[0], atol=1e-9)


class _Cycle:
    """``count`` members over three images on disk, with jittered landmarks (re-iterable, lazy)."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder, self.count = folder, count

    def __iter__(self) -> Iterator[Member]:
        for i in range(self.count):
            rng = np.random.default_rng(i)
            yield Member(f"m{i:04d}", self.folder / f"{i % 3}.png", _shape(rng, 96))


def _peak_bytes(members: _Cycle) -> int:
    tracemalloc.start()
    try:
        composite_from_members(members, "warp", WarpSettings(64))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_faces(tmp_path: Path) -> None:
    for k in range(3):
        Image.fromarray(_linear_image(96, 96) + k).save(tmp_path / f"{k}.png")
    with pytest.raises(TypeError, match="re-iterable"):
        composite_from_members(iter(list(_Cycle(tmp_path, 2))), "warp", WarpSettings(64))
    small, large = _peak_bytes(_Cycle(tmp_path, 5)), _peak_bytes(_Cycle(tmp_path, 60))
    assert large < small + 256 * 1024, (small, large)


def _demo_master(tmp_path: Path) -> tuple[Layout, pl.DataFrame]:
    """Seven face chips: five with 68 landmarks, one with only its eyes, one with neither."""
    layout = Layout.from_roots(tmp_path, tmp_path / "models")
    rng = np.random.default_rng(5)
    rows = []
    for i in range(7):
        face_id = f"img{i}_500_500"
        chip = Path(layout.chips_dir / "c" / f"{face_id}.png")
        chip.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(80, 80, 3), dtype=np.uint8)).save(chip)
        shape = _shape(rng, 80)
        points = shape if i < 5 else (shape[[36, 45]] if i == 5 else None)
        rows.append({"face_id": face_id, "image_id": f"img{i}", "chip_ok": True, "gender": "female",
                     "composite_path": f"c/{face_id}.png", "face_source": "detector",
                     "chip_landmarks": None if points is None else points.ravel().tolist(),
                     "landmark_points": 0 if points is None else len(points)})
    return layout, pl.DataFrame(rows, schema_overrides={"chip_landmarks": pl.List(pl.Float64)})


def test_warped_composite_sidecar_and_same_spec_same_bytes(tmp_path: Path) -> None:
    layout, master = _demo_master(tmp_path)
    settings = CompositeSettings(min_faces=2, alignment=AlignmentConfig(output_size=32), size=48)
    built = build_composite("n=6,seed=4", master, layout, settings)
    first = Path(built.image_path).read_bytes()
    sidecar = json.loads(Path(built.json_path).read_text())
    assert (sidecar["method"], sidecar["method_requested"], sidecar["seed"]) == ("warp", "warp", 4)
    assert sidecar["members"] == sorted(sidecar["face_ids"]) and len(sidecar["members"]) == 6
    assert sidecar["alignment"]["excluded_no_landmarks"] == 1 and "img6_500_500" not in sidecar["members"]
    assert sidecar["warped"] == 5 and sidecar["eyes_fallback"] == [["img5_500_500", "no 68-point landmarks"]]
    assert sidecar["skipped"] == [] and sidecar["used"] == 6
    assert np.asarray(sidecar["mean_shape"]).shape == (68, 2) and sidecar["composite_size"] == 48
    assert Image.open(built.image_path).size == (48, 48)
    again = build_composite("n=6,seed=4", master, layout, settings)
    assert Path(again.image_path).read_bytes() == first
    assert composite_method(parse_spec("method=none"), settings, True) == ("none", "none", "")
    requested, used, note = composite_method(parse_spec("all"), settings, False)
    assert (requested, used) == ("warp", "eyes") and "no 68-point landmarks" in note


def _grace_hopper() -> Path:
    import matplotlib  # noqa: PLC0415

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or face_recognition_models_dir() is None,
    reason="needs dlib and face-recognition-models (the detect extra)",
)
def test_real_photo_warped_with_dlib_landmarks(tmp_path: Path) -> None:
    from facestats_core.faces.dlib_detector import DlibFaceDetector  # noqa: PLC0415

    detector = DlibFaceDetector()
    photo = _grace_hopper()
    flipped = tmp_path / "flipped.png"
    with Image.open(photo) as opened:
        ImageOps.mirror(opened.convert("RGB")).save(flipped)
    members = []
    for member_id, path in (("original", photo), ("flipped", flipped)):
        with Image.open(path) as opened:
            found = detector.detect(opened.convert("RGB"))
        assert found and found[0].landmarks.shape == (68, 2)
        members.append(Member(member_id, path, found[0].landmarks))
    built = composite_from_members(members, "warp", WarpSettings(256))
    pixels = np.asarray(built.image)
    assert built.image.size == (256, 256) and sorted(built.warped) == ["flipped", "original"]
    assert pixels.std() > 20 and 40 < pixels.mean() < 220
    face = laplacian_variance(built.image, mask=built.face_mask)
    eyes = composite_from_members(members, "eyes", WarpSettings(256))
    assert face > 20 and face > laplacian_variance(eyes.image, mask=built.face_mask)


@pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or face_recognition_models_dir() is None,
    reason="needs dlib and face-recognition-models (the detect extra)",
)
def test_group_photo_faces_detected_chipped_and_warped(tmp_path: Path) -> None:
    """The real six-person photo: detection -> chips with 68 landmarks -> a warped composite of all six."""
    from facestats_core.composites.build import chip_members
    from facestats_core.faces.chips import ChipConfig, chip_manifest
    from tests.core.faces.photos import group_photo_detections

    _, raw, detections = group_photo_detections(tmp_path)
    layout = Layout.from_roots(tmp_path, tmp_path / "models")
    chips, _ = chip_manifest(detections, raw, layout.chips_dir, ChipConfig(embed_size=64, composite_size=128))
    rows = chips.join(detections.select("face_id", "face_source", "landmark_points"), on="face_id")
    members = chip_members(rows, layout)
    assert len(members) == 6 and all(m.landmarks is not None and m.landmarks.shape == (68, 2) for m in members)
    warped = composite_from_members(members, "warp", WarpSettings(128))
    eyes = composite_from_members(members, "eyes", WarpSettings(128))
    assert sorted(warped.warped) == sorted(m.member_id for m in members)
    assert laplacian_variance(warped.image, mask=warped.face_mask) > laplacian_variance(eyes.image, mask=warped.face_mask)


def test_method_comparison_averages_the_same_faces_three_ways(tmp_path: Path) -> None:
    from facestats_core.composites.method_comparison import method_comparison

    layout, master = _demo_master(tmp_path)
    png, numbers = method_comparison(master, layout, n=4, size=48)
    assert numbers["faces"] == 4  # sampled among the five faces with 68 landmarks
    with Image.open(io.BytesIO(png)) as sheet:
        assert sheet.size == (3 * 48 + 16, 48 + 22)
    assert set(numbers) == {"faces", "none", "eyes", "warp"}
    assert method_comparison(master.filter(pl.col("landmark_points") < 68), layout) is None
