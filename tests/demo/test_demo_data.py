"""Tests for facestats_demo.faces (small sets: 36 images at 128 px)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facestats_core.faces.landmarks68 import LANDMARK68_COLUMNS
from facestats_core.labels.attribute_labels import read_fairface_labels
from facestats_core.labels.ratings import read_ratings
from facestats_demo.drawing import draw_traits, render_face
from facestats_demo.faces import FAIRFACE_HEADER, DemoDataset, DemoSpec, generate_demo_dataset
from facestats_demo.traits import attractiveness_score, sample_traits

N = 36  # one full age deck: every age bin, gender and ethnicity present
SIZE = 128
RAW_AGES = {"0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"}
RAW_GENDERS = {"Male", "Female"}
RAW_RACES = {"White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoDataset:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo0"), DemoSpec(n_images=N, size=SIZE, seed=0))


def _root(ds: DemoDataset) -> Path:
    return ds.images_dir.parent.parent


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _truth(ds: DemoDataset) -> list[dict[str, str]]:
    return _rows(ds.truth)


def _pixels(ds: DemoDataset, row: dict[str, str]) -> np.ndarray:
    with Image.open(_root(ds) / "raw" / row["file"]) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def _eyes(row: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    left = np.array([float(row["left_eye_x"]), float(row["left_eye_y"])])
    right = np.array([float(row["right_eye_x"]), float(row["right_eye_y"])])
    return left, right


def _patch(pixels: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """RGB pixels within ``radius`` of ``centre`` (x, y)."""
    ys, xs = np.mgrid[: pixels.shape[0], : pixels.shape[1]]
    mask = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2
    patch: np.ndarray = pixels[mask]
    return patch


# --------------------------------------------------------------------------- layout and formats


def test_layout_and_headers(demo: DemoDataset) -> None:
    root = _root(demo)
    assert demo.n_images == N
    assert demo.images_dir == root / "raw" / "demo"
    assert demo.fairface_labels == root / "labels" / "fairface_labels.csv"
    assert demo.ratings == root / "labels" / "scut_ratings.csv"
    assert demo.truth == root / "labels" / "demo_truth.csv"
    images = sorted(demo.images_dir.iterdir())
    assert [p.name for p in images] == [f"face_{i:05d}.jpg" for i in range(N)]
    for path in images[:5]:
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (SIZE, SIZE))
    first_lines = {
        p: p.read_text(encoding="utf-8").splitlines()[0]
        for p in (demo.fairface_labels, demo.ratings, demo.truth)
    }
    assert first_lines[demo.fairface_labels] == "file,age,gender,race,service_test"
    assert first_lines[demo.ratings] == "filename,score"
    assert first_lines[demo.truth] == (
        "file,gender,age,ethnicity,score,left_eye_x,left_eye_y,right_eye_x,right_eye_y,"
        + ",".join(LANDMARK68_COLUMNS)
    )
    assert FAIRFACE_HEADER == ("file", "age", "gender", "race", "service_test")


def test_fairface_labels_use_raw_vocabularies(demo: DemoDataset) -> None:
    rows = _rows(demo.fairface_labels)
    assert [r["file"] for r in rows] == [f"demo/face_{i:05d}.jpg" for i in range(N)]
    assert all((_root(demo) / "raw" / r["file"]).is_file() for r in rows)
    assert {r["age"] for r in rows} == RAW_AGES
    assert {r["gender"] for r in rows} == RAW_GENDERS
    assert {r["race"] for r in rows} == RAW_RACES
    assert {r["service_test"] for r in rows} <= {"True", "False"}


def test_labels_round_trip_through_readers(demo: DemoDataset) -> None:
    truth = _truth(demo)
    result = read_fairface_labels(demo.fairface_labels)
    assert result.issues == []
    got = [(r["file"], r["gender"], r["age"], r["ethnicity"]) for r in result.labels.iter_rows(named=True)]
    assert got == [(t["file"], t["gender"], t["age"], t["ethnicity"]) for t in truth]
    ratings = read_ratings(demo.ratings)
    assert ratings.issues == []
    assert ratings.ratings.rows() == [(t["file"], float(t["score"])) for t in truth]


def test_scores_in_range_with_three_decimals(demo: DemoDataset) -> None:
    rows = _rows(demo.ratings)
    assert [r["filename"] for r in rows] == [f"demo/face_{i:05d}.jpg" for i in range(N)]
    for row in rows:
        assert re.fullmatch(r"\d\.\d{3}", row["score"]), row
        assert 1.0 <= float(row["score"]) <= 5.0
    assert len({r["score"] for r in rows}) > N // 2  # not constant


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_differs(demo: DemoDataset, tmp_path: Path) -> None:
    again = generate_demo_dataset(tmp_path / "again", DemoSpec(n_images=N, size=SIZE, seed=0))
    first, second = _tree_hashes(_root(demo)), _tree_hashes(_root(again))
    assert len(first) == N + 3
    assert first == second
    other = _tree_hashes(
        _root(generate_demo_dataset(tmp_path / "other", DemoSpec(n_images=N, size=SIZE, seed=1)))
    )
    assert other.keys() == first.keys()
    assert sum(other[k] != first[k] for k in first) == len(first)


def test_image_i_does_not_depend_on_n_images(demo: DemoDataset, tmp_path: Path) -> None:
    small = generate_demo_dataset(tmp_path / "small", DemoSpec(n_images=5, size=SIZE, seed=0))
    for i in range(5):
        name = f"face_{i:05d}.jpg"
        assert (small.images_dir / name).read_bytes() == (demo.images_dir / name).read_bytes()
    assert _truth(small) == _truth(demo)[:5]


def test_rerun_with_fewer_images_removes_stale_files(tmp_path: Path) -> None:
    generate_demo_dataset(tmp_path, DemoSpec(n_images=4, size=64, seed=3))
    ds = generate_demo_dataset(tmp_path, DemoSpec(n_images=2, size=64, seed=3))
    assert sorted(p.name for p in ds.images_dir.iterdir()) == ["face_00000.jpg", "face_00001.jpg"]


# --------------------------------------------------------------------------- geometry


def test_eyes_inside_image_and_ordered(demo: DemoDataset) -> None:
    for row in _truth(demo):
        left, right = _eyes(row)
        for point in (left, right):
            assert point.min() >= 0.1 * SIZE and point.max() <= 0.9 * SIZE, row
        assert left[0] < right[0], row
        distance = float(np.linalg.norm(right - left))
        assert 0.12 * SIZE < distance < 0.3 * SIZE, row


def test_eye_centres_sit_on_the_pupils(demo: DemoDataset) -> None:
    for row in _truth(demo):
        pixels = _pixels(demo, row)
        luminance = pixels @ np.array([0.299, 0.587, 0.114])
        for eye in _eyes(row):
            x, y = int(round(eye[0])), int(round(eye[1]))
            assert luminance[y - 1 : y + 2, x - 1 : x + 2].min() < 70, row


def test_render_face_returns_image_and_eyes() -> None:
    image, (left, right) = render_face("female", "20-29", "indian", np.random.default_rng(7), 96)
    assert image.mode == "RGB" and image.size == (96, 96)
    assert 0 < left[0] < right[0] < 96 and 0 < left[1] < 96 and 0 < right[1] < 96
    again, eyes = render_face("female", "20-29", "indian", np.random.default_rng(7), 96)
    assert again.tobytes() == image.tobytes() and eyes == (left, right)


# --------------------------------------------------------------------------- traits follow labels


def _cheek_luminance(pixels: np.ndarray, row: dict[str, str]) -> float:
    """Median luminance of a patch below the left eye (on the cheek)."""
    left, right = _eyes(row)
    d = right - left
    dist = float(np.linalg.norm(d))
    down = np.array([-d[1], d[0]]) / dist  # perpendicular to the eye line, pointing to the chin
    patch = _patch(pixels, left + down * 0.5 * dist, 0.12 * dist)
    return float(np.median(patch @ np.array([0.299, 0.587, 0.114])))


def _grey_hair_fraction(pixels: np.ndarray, row: dict[str, str]) -> float:
    """Share of bright, colourless pixels in a strip above the eyes (the hair)."""
    left, right = _eyes(row)
    d = right - left
    dist = float(np.linalg.norm(d))
    up = np.array([d[1], -d[0]]) / dist
    centre = (left + right) / 2.0 + up * 1.25 * dist
    patch = _patch(pixels, centre, 0.3 * dist)
    neutral = patch.max(axis=1) - patch.min(axis=1) < 25
    bright = patch.mean(axis=1) > 130
    return float(np.mean(neutral & bright))


def test_skin_tone_follows_ethnicity(demo: DemoDataset) -> None:
    by_group: dict[str, list[float]] = {}
    for row in _truth(demo):
        by_group.setdefault(row["ethnicity"], []).append(_cheek_luminance(_pixels(demo, row), row))
    mean = {k: float(np.mean(v)) for k, v in by_group.items()}
    assert mean["black"] < mean["indian"] < mean["white"]
    assert mean["white"] - mean["black"] > 60
    assert mean["east_asian"] - mean["black"] > 60


def test_grey_hair_follows_age(demo: DemoDataset) -> None:
    old: list[float] = []
    young: list[float] = []
    for row in _truth(demo):
        if row["age"] in ("60-69", "70+"):
            old.append(_grey_hair_fraction(_pixels(demo, row), row))
        elif row["age"] in ("20-29", "30-39"):
            young.append(_grey_hair_fraction(_pixels(demo, row), row))
    assert old and young
    assert float(np.mean(old)) > float(np.mean(young)) + 0.3


def test_gender_is_drawn_on_every_face() -> None:
    """Women and girls have long hair and lipstick, men and boys never long hair; baby girls wear a bow."""
    for seed in range(40):
        for age in ("0-2", "3-9", "20-29", "70+"):
            woman = sample_traits("female", age, "white", np.random.default_rng(seed))
            man = sample_traits("male", age, "white", np.random.default_rng(seed))
            if age == "0-2":
                assert woman.hair_style == man.hair_style == "baby"
                assert woman.bow is not None and man.bow is None
            else:
                assert woman.hair_style == "long" and man.hair_style in ("short", "bald")
                assert woman.bow is None and man.bow is None
    girl = sample_traits("female", "0-2", "black", np.random.default_rng(3))
    with_bow, _ = draw_traits(girl, 96, np.random.default_rng(0))
    without, _ = draw_traits(dataclasses.replace(girl, bow=None), 96, np.random.default_rng(0))
    changed = np.abs(np.asarray(with_bow, dtype=int) - np.asarray(without, dtype=int)).max(axis=2) > 40
    rows = np.nonzero(changed.any(axis=1))[0]
    assert changed.sum() > 30 and rows.max() < 96 * 0.4  # a visible bow, on top of the head


def test_attractiveness_depends_on_drawn_traits() -> None:
    traits = sample_traits("female", "20-29", "white", np.random.default_rng(0))
    symmetric = dataclasses.replace(traits, asymmetry=0.0, blemish=0.0)
    lopsided = dataclasses.replace(traits, asymmetry=1.0, blemish=1.0)
    assert attractiveness_score(symmetric, 0.0) > attractiveness_score(lopsided, 0.0) + 1.0
    older = dataclasses.replace(traits, age="70+")
    assert attractiveness_score(traits, 0.0) > attractiveness_score(older, 0.0)
    assert attractiveness_score(traits, 0.3) == attractiveness_score(traits, 0.3)
    assert 1.0 <= attractiveness_score(lopsided, -10.0) <= attractiveness_score(symmetric, 10.0) <= 5.0


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs",
    [{"n_images": 0}, {"n_images": -3}, {"size": 63}, {"size": 2049}, {"seed": -1}, {"n_images": 2.5},
     {"mix": "uniform"}],
)
def test_invalid_spec_raises(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DemoSpec(**kwargs)  # type: ignore[arg-type]


def test_unknown_labels_raise() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="ethnicity"):
        render_face("male", "20-29", "martian", rng, 128)
    with pytest.raises(ValueError, match="age"):
        render_face("male", "more than 70", "white", rng, 128)


def test_shifted_mix_differs_from_the_balanced_one_and_leaves_it_unchanged() -> None:
    from collections import Counter

    from facestats_demo.decks import demo_labels

    balanced = [demo_labels(1, i) for i in range(180)]
    assert balanced == [demo_labels(1, i, "balanced") for i in range(180)]
    assert Counter(g for g, _, _ in balanced) == {"male": 90, "female": 90}
    assert Counter(e for _, _, e in balanced[:175])["white"] == 25  # one of every 7
    shifted = [demo_labels(1, i, "shifted") for i in range(180)]
    assert shifted == [demo_labels(1, i, "shifted") for i in range(180)]  # deterministic
    assert Counter(g for g, _, _ in shifted) == {"male": 108, "female": 72}  # 3 of every 5
    ethnicities = Counter(e for _, _, e in shifted)
    assert ethnicities["white"] == 108 and all(n == 12 for e, n in ethnicities.items() if e != "white")
    ages = Counter(a for _, a, _ in shifted)
    assert ages["20-29"] == 60 and ages["30-39"] == 40 and ages["70+"] == 5  # 12, 8, 1 of every 36
    with pytest.raises(ValueError, match="mix"):
        demo_labels(1, 0, "uniform")
