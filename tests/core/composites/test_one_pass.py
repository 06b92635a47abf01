"""Composites built together in one pass equal those built one by one, and the compiled bilinear
sampler and piecewise-affine warp equal the plain numpy formulas bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.composites.average import WeightedMeanAccumulator
from facestats_core.composites.build import CompositeError, CompositeSettings, build_composite, build_composites
from facestats_core.composites.mesh import build_mesh, source_coordinates
from facestats_core.composites.warp import (
    bilinear_sample,
    eye_centres,
    face_vertices,
    frame_transform,
    packed_pixels,
    warp_face,
)
from facestats_core.faces.alignment import AlignmentConfig
from facestats_core.io.layout import Layout
from tests.core.composites.test_warp import _shape

SIZE = 80


def _master(root: Path) -> tuple[Layout, pl.DataFrame]:
    """Fourteen chips of both genders: most with 68 landmarks, two with eyes only, one with none,
    one unreadable."""
    layout = Layout.from_roots(root, root / "models")
    rng = np.random.default_rng(11)
    rows = []
    for i in range(14):
        face_id = f"img{i:02d}_500_500"
        chip = Path(layout.chips_dir / "c" / f"{face_id}.jpg")
        chip.parent.mkdir(parents=True, exist_ok=True)
        if i == 13:
            chip.write_bytes(b"not a jpeg")
        else:
            Image.fromarray(rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)).save(chip, quality=90)
        shape = _shape(rng, SIZE)
        points = shape if i not in (4, 9, 11) else (shape[[36, 45]] if i in (4, 9) else None)
        rows.append({"face_id": face_id, "image_id": f"img{i:02d}", "chip_ok": True,
                     "gender": "female" if i % 2 else "male", "composite_path": f"c/{face_id}.jpg",
                     "face_source": "detector", "chip_landmarks": None if points is None else points.ravel().tolist(),
                     "landmark_points": 0 if points is None else len(points)})
    return layout, pl.DataFrame(rows, schema_overrides={"chip_landmarks": pl.List(pl.Float64)})


KEYS = ["all", "gender=female", "gender=male,method=eyes", "method=none", "gender=male,n=5,seed=3"]


@pytest.mark.parametrize("background", ["average", "transparent"])
def test_one_pass_equals_one_spec_at_a_time(tmp_path: Path, background: str) -> None:
    settings = CompositeSettings(min_faces=3, alignment=AlignmentConfig(output_size=32), size=48,
                                 background=background)
    alone: dict[str, tuple[bytes, dict]] = {}
    layout, master = _master(tmp_path / "alone")
    for key in KEYS:
        built = build_composite(key, master, layout, settings)
        alone[key] = (Path(built.image_path).read_bytes(), json.loads(Path(built.json_path).read_text()))
    layout, master = _master(tmp_path / "together")
    run = build_composites([*KEYS, "attractiveness=top10"], master, layout, settings, workers=3)
    assert list(run.results) == [*KEYS, "attractiveness=top10"]
    assert set(run.profile) == {"select", "average", "write"}
    assert isinstance(run.results["attractiveness=top10"], CompositeError)
    for key in KEYS:
        built = run.results[key]
        assert not isinstance(built, CompositeError), built
        sidecar = json.loads(Path(built.json_path).read_text())
        assert Path(built.image_path).read_bytes() == alone[key][0], key
        assert sidecar == alone[key][1], key
    all_sidecar = alone["all"][1]
    assert all_sidecar["skipped"] == [["img13_500_500", all_sidecar["skipped"][0][1]]]
    assert all_sidecar["skipped"][0][1].startswith("read_error")
    assert [item[0] for item in all_sidecar["eyes_fallback"]] == ["img04_500_500", "img09_500_500"]


def test_a_spec_that_cannot_be_warped_does_not_stop_the_others(tmp_path: Path) -> None:
    layout, master = _master(tmp_path)
    master = master.with_columns(
        pl.when(pl.col("gender") == "female").then(pl.lit(None)).otherwise(pl.col("chip_landmarks"))
        .alias("chip_landmarks"),
        pl.when(pl.col("gender") == "female").then(0).otherwise(pl.col("landmark_points")).alias("landmark_points"))
    settings = CompositeSettings(min_faces=3, size=48)
    run = build_composites(["gender=female,method=warp", "gender=male"], master, layout, settings, workers=2)
    assert isinstance(run.results["gender=female,method=warp"], CompositeError)
    assert not isinstance(run.results["gender=male"], CompositeError)


def _plain_bilinear(pixels: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The textbook formula, in the same float32 operation order as :func:`bilinear_sample`."""
    height, width = pixels.shape[:2]
    x = np.clip(xs.astype(np.float32), 0.0, width - 1.0)
    y = np.clip(ys.astype(np.float32), 0.0, height - 1.0)
    x0 = np.minimum(x.astype(np.intp), width - 2)
    y0 = np.minimum(y.astype(np.intp), height - 2)
    fx, fy = x - x0.astype(np.float32), y - y0.astype(np.float32)
    flat = pixels.reshape(-1, 3)
    index = y0 * width + x0
    out = flat[index].astype(np.float32)
    out *= ((1.0 - fx) * (1.0 - fy))[:, None]
    out += flat[index + 1] * (fx * (1.0 - fy))[:, None]
    out += flat[index + width] * ((1.0 - fx) * fy)[:, None]
    out += flat[index + width + 1] * (fx * fy)[:, None]
    return out


@pytest.mark.parametrize("shape", [(2, 2), (37, 91), (120, 64)])
def test_bilinear_sample_is_bit_identical_to_the_plain_formula(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    xs = rng.uniform(-3, shape[1] + 3, 5000).astype(np.float32)
    ys = rng.uniform(-3, shape[0] + 3, 5000).astype(np.float32)
    values, inside = bilinear_sample(pixels, xs, ys)
    assert values.dtype == np.float32 and values.shape == (5000, 3)
    np.testing.assert_array_equal(values, _plain_bilinear(pixels, xs, ys))
    packed = packed_pixels(pixels)  # what the composites sample: packed once per image
    assert packed.shape == shape and packed.dtype == np.uint32
    from_packed, inside_packed = bilinear_sample(packed, xs, ys)
    np.testing.assert_array_equal(from_packed, values)
    np.testing.assert_array_equal(inside_packed, inside)
    expected_inside = (xs >= -0.5) & (xs <= shape[1] - 0.5) & (ys >= -0.5) & (ys <= shape[0] - 0.5)
    np.testing.assert_array_equal(inside, expected_inside)
    assert 0 < inside.sum() < 5000


@pytest.mark.parametrize(("seed", "scale"), [(5, 1.0), (6, 2.7), (7, 0.4)])
def test_warp_face_is_bit_identical_to_coordinates_then_the_plain_formula(seed: int, scale: float) -> None:
    """The compiled warp (one loop: barycentric source point, then bilinear sample) gives the same float32
    values and coverage as numpy's `source_coordinates` followed by the textbook bilinear formula, for
    faces smaller and larger than the frame and partly outside their image (scale 2.7: the frame's
    border points fall outside the 90×70 source)."""
    rng = np.random.default_rng(seed)
    mesh = build_mesh(_shape(rng, 96), 96)
    pixels = rng.integers(0, 256, size=(70, 90, 3), dtype=np.uint8)
    landmarks = _shape(rng, 96) * scale / 96 * 60 + rng.uniform(0, 20, 2)
    values, inside = warp_face(pixels, landmarks, mesh)
    vertices = face_vertices(landmarks, frame_transform(eye_centres(landmarks), 96), 96)
    xs, ys = source_coordinates(mesh, vertices)
    np.testing.assert_array_equal(values, _plain_bilinear(pixels, xs, ys))
    np.testing.assert_array_equal(inside, (xs >= -0.5) & (xs <= 89.5) & (ys >= -0.5) & (ys <= 69.5))
    assert values.shape == (96 * 96, 3) and values.dtype == np.float32
    if scale > 2:
        assert 0 < inside.sum() < inside.size


def test_weighted_accumulator_equals_the_masked_product_sum() -> None:
    rng = np.random.default_rng(4)
    acc = WeightedMeanAccumulator(8)
    total, weight = np.zeros((64, 3)), np.zeros(64)
    for _ in range(5):
        values = rng.uniform(0, 255, size=(64, 3)).astype(np.float32)
        inside = rng.random(64) < 0.7
        given = values.copy()
        acc.add(values, inside)
        np.testing.assert_array_equal(values, given)  # the caller's samples are left as they were
        total += values * inside.astype(np.float64)[:, None]
        weight += inside
    mean, covered = acc.mean()
    np.testing.assert_array_equal(covered.ravel(), weight > 0)
    expected = np.zeros_like(total)
    expected[weight > 0] = total[weight > 0] / weight[weight > 0, None]
    np.testing.assert_array_equal(mean.reshape(-1, 3), expected)
