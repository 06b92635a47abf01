"""Composites: selection by spec, exact streaming means, bounded memory, writing, contact sheets."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.composites.average import (
    MeanAccumulator,
    average_images,
    composite_meta,
    composite_sharpness,
    to_uint8,
    write_composite,
)
from facestats_core.composites.contact_sheet import tile_contact_sheet
from facestats_core.composites.filter_spec import parse_spec
from facestats_core.composites.select import RELAX_ORDER, TooFewFacesError, sample_ids, select_images


def _master(n: int = 200, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    pct = rng.uniform(0, 100, size=n)
    return pl.DataFrame(
        {
            "face_id": [f"img{i:04d}" for i in range(n)],
            "gender": rng.choice(["male", "female"], size=n).tolist(),
            "age": rng.choice(["20-29", "30-39", "40-49", "70+"], size=n).tolist(),
            "ethnicity": rng.choice(["white", "black", "east_asian"], size=n).tolist(),
            "attractiveness_percentile": pct,
            "attractiveness_decile": np.minimum(pct // 10 + 1, 10).astype(int),
            "cluster": rng.integers(0, 4, size=n),
        }
    )


# --------------------------------------------------------------------------- selection


def test_select_filters_and_samples_deterministically() -> None:
    master = _master()
    spec = parse_spec("gender=female,n=10,seed=7")
    first = select_images(master, spec, min_faces=5)
    expected_matched = master.filter(pl.col("gender") == "female").height
    assert first.matched == expected_matched
    assert len(first.face_ids) == 10 and first.face_ids == sorted(first.face_ids)
    assert first.relaxed == []
    # same answer whatever the row order of the master table
    shuffled = master.sample(fraction=1.0, shuffle=True, seed=3)
    assert select_images(shuffled, spec, min_faces=5).face_ids == first.face_ids
    # another seed gives another sample; all ids match the filter
    other = select_images(master, parse_spec("gender=female,n=10,seed=8"), min_faces=5)
    assert other.face_ids != first.face_ids
    females = set(master.filter(pl.col("gender") == "female")["face_id"])
    assert set(first.face_ids) <= females and set(other.face_ids) <= females


def test_select_without_n_uses_all_matches_and_n_above_matched() -> None:
    master = _master()
    all_female = select_images(master, parse_spec("gender=female"), min_faces=1)
    assert len(all_female.face_ids) == all_female.matched
    big = select_images(master, parse_spec("gender=female,n=100000"), min_faces=1)
    assert big.face_ids == all_female.face_ids
    assert sample_ids(["c", "a", "b"], 2, 0) == sample_ids(["b", "c", "a"], 2, 0)


def test_too_few_faces_error_message() -> None:
    master = _master(40)
    spec = parse_spec("gender=male,ethnicity=black,age=70+,attractiveness=top5")
    matched = master.filter(spec.to_polars_expr()).height
    with pytest.raises(TooFewFacesError) as info:
        select_images(master, spec, min_faces=25)
    message = str(info.value)
    assert spec.canonical in message
    assert f"matched {matched} faces" in message
    assert "at least 25" in message
    assert info.value.matched == matched and info.value.min_faces == 25


def test_relax_drops_terms_in_documented_order() -> None:
    master = _master(400)
    spec = parse_spec("gender=female,ethnicity=white,age=20-29,attractiveness=top5,n=30,seed=1")
    strict = master.filter(spec.to_polars_expr()).height
    assert strict < 20
    selection = select_images(master, spec, min_faces=20, relax=True)
    assert selection.relaxed[0] == "attractiveness=top5"
    assert [r.split("=")[0] for r in selection.relaxed] == [
        k for k in RELAX_ORDER if k in {r.split("=")[0] for r in selection.relaxed}
    ]
    assert selection.matched >= 20 and len(selection.face_ids) == min(30, selection.matched)
    assert selection.spec.attractiveness is None and selection.spec.n == 30
    assert selection.spec.gender == "female"  # dropped only what was needed
    # nothing can satisfy an impossible minimum: raise, naming what was relaxed
    with pytest.raises(TooFewFacesError, match="even after relaxing attractiveness=top5, age=20-29"):
        select_images(master, spec, min_faces=10_000, relax=True)


def test_select_requires_columns() -> None:
    master = _master().drop("cluster")
    with pytest.raises(ValueError, match="lacks columns"):
        select_images(master, parse_spec("cluster=1"), min_faces=1)


# --------------------------------------------------------------------------- averaging


def _save(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path)
    return path


def test_average_of_constant_images_is_exact(tmp_path: Path) -> None:
    values = [10, 20, 40, 255, 0]
    paths = [_save(tmp_path / f"c{v}.png", np.full((16, 16, 3), v)) for v in values]
    mean, used, failures = average_images(paths, 16)
    assert used == 5 and failures == []
    assert mean.dtype == np.float64 and mean.shape == (16, 16, 3)
    assert np.all(mean == np.mean(values))
    assert np.all(to_uint8(mean) == round(np.mean(values)))


def test_average_of_gradients_matches_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    arrays = []
    for i in range(7):
        a, b = rng.uniform(0, 4, size=2)
        img = np.stack([(a * xx + b * yy + 30 * c + i) % 256 for c in range(3)], axis=-1).astype(np.uint8)
        arrays.append(img)
    paths = [_save(tmp_path / f"g{i}.png", a) for i, a in enumerate(arrays)]
    mean, used, _ = average_images(iter(paths), 32)  # any iterable, consumed once
    expected = np.stack(arrays).astype(np.float64).mean(axis=0)
    assert used == 7
    assert np.allclose(mean, expected, atol=1e-9)
    assert np.abs(to_uint8(mean).astype(int) - expected).max() <= 1


def test_average_reports_failures_and_resizes(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.png", np.full((8, 8, 3), 100))
    big = _save(tmp_path / "big.png", np.full((20, 30, 3), 200))
    grey = tmp_path / "grey.png"
    Image.new("L", (8, 8), 50).save(grey)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    missing = tmp_path / "missing.jpg"
    mean, used, failures = average_images([good, big, grey, broken, missing], 8)
    assert used == 3
    assert np.allclose(mean, (100 + 200 + 50) / 3)
    assert [f[0] for f in failures] == [str(broken), str(missing)]
    assert all(f[1] for f in failures)
    empty_mean, empty_used, _ = average_images([], 4)
    assert empty_used == 0 and empty_mean.shape == (4, 4, 3) and not empty_mean.any()


def test_average_applies_transform(tmp_path: Path) -> None:
    path = _save(tmp_path / "a.png", np.full((8, 8, 3), 10))
    mean, used, _ = average_images([path], 8, transform=lambda im, p: Image.new("RGB", (8, 8), (1, 2, 3)))
    assert used == 1 and mean[0, 0].tolist() == [1.0, 2.0, 3.0]


def test_average_memory_is_bounded(tmp_path: Path) -> None:
    size = 64
    rng = np.random.default_rng(1)
    paths = [_save(tmp_path / f"r{i:03d}.png", rng.integers(0, 256, (size, size, 3))) for i in range(300)]
    state: dict[str, object] = {"previous": None, "opened": 0, "overlaps": 0}
    real_open = Image.open

    def counting_paths() -> Iterator[Path]:
        yield from paths

    def tracking_open(fp: object, *args: object, **kwargs: object) -> Image.Image:
        previous = state["previous"]
        if previous is not None and getattr(previous, "fp", None) is not None:
            state["overlaps"] = int(state["overlaps"]) + 1  # last file still open
        image = real_open(fp, *args, **kwargs)  # type: ignore[arg-type]
        state["previous"] = image
        state["opened"] = int(state["opened"]) + 1
        return image

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Image, "open", tracking_open)
        tracemalloc.start()
        try:
            mean, used, _ = average_images(counting_paths(), size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert used == 300
    assert state["opened"] == 300 and state["overlaps"] == 0  # one image file open at a time
    image_bytes_f64 = size * size * 3 * 8
    # the running sum plus a few transient copies; 300 images kept would be > 3.6 MB
    assert peak < 6 * image_bytes_f64, peak


def test_mean_accumulator() -> None:
    acc = MeanAccumulator(4)
    acc.add(Image.new("RGB", (4, 4), (0, 100, 255)))
    acc.add(Image.new("RGB", (4, 4), (255, 100, 0)))
    assert acc.count == 2 and np.all(acc.mean() == np.array([127.5, 100.0, 127.5]))
    with pytest.raises(ValueError):
        MeanAccumulator(0)


# --------------------------------------------------------------------------- writing, sheets


def test_write_composite_atomic_and_meta(tmp_path: Path) -> None:
    master = _master()
    spec = parse_spec("gender=female,n=5,seed=2")
    selection = select_images(master, spec, min_faces=1)
    mean = np.full((16, 16, 3), 77.4)
    meta = composite_meta(
        spec, selection, used=5, failures=[], alignment={"aligned": 5}, sharpness=composite_sharpness(mean)
    )
    out = tmp_path / "composites"
    image_path, json_path = write_composite(out, spec.slug, mean, meta)
    assert image_path == out / f"{spec.slug}.png" and json_path == out / f"{spec.slug}.json"
    assert np.all(np.asarray(Image.open(image_path)) == 77)
    data = json.loads(json_path.read_text())
    assert data["spec"] == spec.canonical and data["matched"] == selection.matched
    assert data["used"] == 5 and data["face_ids"] == selection.face_ids and data["seed"] == 2
    assert data["alignment"] == {"aligned": 5} and data["image_file"] == f"{spec.slug}.png"
    assert sorted(p.name for p in out.iterdir()) == sorted([image_path.name, json_path.name])  # no temp files
    jpg, _ = write_composite(out, "x", Image.new("RGB", (8, 8)), {}, fmt="jpg")
    assert jpg.suffix == ".jpg"
    for bad in ("../evil", "a/b", "..", ".hidden", "UPPER"):
        with pytest.raises(ValueError, match="unsafe slug"):
            write_composite(out, bad, mean, meta)


def test_contact_sheet_layout() -> None:
    items = [(Image.new("RGB", (40, 40), (i * 40, 0, 0)), f"gender=female,age=20-29,n={i}" * 3) for i in range(5)]
    sheet = tile_contact_sheet(items, columns=3, tile=64)
    assert sheet.width == 3 * (64 + 8)
    assert sheet.height > 2 * 64
    arr = np.asarray(sheet)
    assert arr[4 + 10, 72 + 4 + 10].tolist() == [40, 0, 0]  # second tile pasted at its padding offset
    assert (arr[: 64 + 8, :, :] < 128).any()  # caption text drawn
    assert tile_contact_sheet([], columns=2, tile=32).size == (2 * 40, tile_contact_sheet([], 2, 32).height)
