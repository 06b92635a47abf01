from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facestats_core.images.decode import ImageReadError, inspect_image, load_rgb, to_rgb
from facestats_core.io.hashing import sha256_bytes, sha256_file, shard_keys, shard_of
from facestats_demo.edge_cases import EXPECTED, edge_case_files


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_edge_case_is_recorded_with_its_reason(name: str) -> None:
    info = inspect_image(edge_case_files()[name])
    assert info.error == EXPECTED[name]
    assert info.readable is (EXPECTED[name] is None)
    if not info.readable:
        assert info.error_detail


@pytest.mark.parametrize("name", [n for n, reason in EXPECTED.items() if reason is None])
def test_readable_edge_cases_load_as_8bit_rgb(name: str) -> None:
    image = load_rgb(edge_case_files()[name])
    assert image.mode == "RGB"
    assert np.asarray(image).dtype == np.uint8


@pytest.mark.parametrize("name", [n for n, reason in EXPECTED.items() if reason is not None])
def test_unreadable_edge_cases_raise_with_reason(name: str) -> None:
    with pytest.raises(ImageReadError) as raised:
        load_rgb(edge_case_files()[name])
    assert raised.value.reason == EXPECTED[name]


def test_exif_orientation_is_honoured() -> None:
    files = edge_case_files()
    info = inspect_image(files["exif_rotated.jpg"])
    assert info.exif_orientation == 6
    assert (info.width, info.height) == (120, 160)  # stored 160x120, shown upright
    upright = load_rgb(files["exif_rotated.jpg"])
    plain = load_rgb(files["grayscale.jpg"])
    assert upright.size == (120, 160)
    assert plain.size == (160, 120)


def test_sixteen_bit_keeps_its_dynamic_range() -> None:
    ramp = (np.tile(np.linspace(0, 65535, 64), (8, 1))).astype(np.uint16)
    rgb = np.asarray(to_rgb(Image.fromarray(ramp)))
    assert rgb[..., 0].min() == 0 and rgb[..., 0].max() == 255


def test_alpha_is_composited_on_grey_not_black() -> None:
    transparent = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert np.asarray(to_rgb(transparent))[0, 0].tolist() == [128, 128, 128]


def test_cmyk_white_stays_white() -> None:
    white = Image.new("CMYK", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(white))[0, 0].tolist() == [255, 255, 255]


def test_huge_jpeg_is_decoded_at_draft_scale() -> None:
    """JPEG draft mode decodes at a reduced DCT scale (the pixels of the full 6000x4000 picture are
    never made); its speed is measured by benchmarks/bench_statistics.py."""
    big = Image.new("RGB", (6000, 4000), (200, 120, 90))
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=80)
    image = load_rgb(buffer.getvalue(), draft_size=256)
    assert min(image.size) >= 256 and max(image.size) <= 6000 // 8 * 2


def test_pixel_limit_is_configurable() -> None:
    data = edge_case_files()["cmyk.jpg"]  # 160 x 120
    assert inspect_image(data, max_pixels=10_000).error == "too_large"
    assert inspect_image(data, max_pixels=20_000).readable


def test_hashing_matches_for_bytes_and_file(tmp_path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"face" * 1000)
    assert sha256_file(path) == sha256_bytes(b"face" * 1000)


def test_shards_are_stable_and_cover_all_keys() -> None:
    ids = [sha256_bytes(str(i).encode()) for i in range(400)]
    shards = [shard_of(i, 4) for i in ids]
    assert set(shards) == set(shard_keys(4)) == {"00", "01", "02", "03"}
    assert shards == [shard_of(i, 4) for i in ids]
    counts = [shards.count(key) for key in shard_keys(4)]
    assert min(counts) > 60  # roughly uniform
    with pytest.raises(ValueError):
        shard_of(ids[0], 0)


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "WEBP"])
def test_a_multi_frame_file_says_only_its_first_frame_is_used(fmt: str) -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:])
    info = inspect_image(buffer.getvalue())
    assert info.readable and (info.width, info.height) == (40, 30)
    assert info.note is not None and info.note.endswith("first of 3 frames used")
    first = np.asarray(load_rgb(buffer.getvalue()))
    assert first[..., 0].mean() > 150 and first[..., 2].mean() < 50  # the first frame, red
    single = io.BytesIO()
    frames[0].save(single, format="PNG")
    assert inspect_image(single.getvalue()).note is None
