from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl

from facestats_core.images.raw_watch import list_raw_files
from facestats_core.images.scan import scan_shards
from facestats_core.io.hashing import shard_keys
from facestats_demo.edge_cases import EXPECTED
from tests.conftest import write_photos


def _scan_all(raw, previous=None, n_shards=4):
    manifests, stats = scan_shards(raw, shard_keys(n_shards), n_shards, previous=previous)
    return pl.concat(list(manifests.values())), manifests, stats


def test_every_file_is_recorded_once_with_reason(raw_folder) -> None:
    table, manifests, stats = _scan_all(raw_folder)
    assert stats.files_listed == 12 + len(EXPECTED)
    assert table.height == stats.files_listed
    assert table["image_id"].n_unique() == table.height
    by_name = {row["path"].split("/")[-1]: row for row in table.iter_rows(named=True)}
    for name, reason in EXPECTED.items():
        assert by_name[name]["error"] == reason
    assert all(frame["shard"].unique().to_list() in ([key], []) for key, frame in manifests.items())


def test_rescan_hashes_and_inspects_only_new_files(raw_folder) -> None:
    first, _, _ = _scan_all(raw_folder)
    write_photos(raw_folder / "more", 3, seed=99)
    second, _, stats = _scan_all(raw_folder, previous=first)
    assert stats.files_hashed == 3
    assert stats.images_inspected == 3
    assert second.height == first.height + 3


def test_identical_files_share_one_id_with_aliases(raw_folder) -> None:
    shutil.copy(raw_folder / "photos" / "photo_000.jpg", raw_folder / "photos" / "copy_of_000.jpg")
    table, _, _ = _scan_all(raw_folder)
    row = table.filter(pl.col("path") == "photos/copy_of_000.jpg")
    assert row.height == 1
    assert row["alias_paths"][0].to_list() == ["photos/photo_000.jpg"]


def test_single_shard_scan_is_a_subset(raw_folder) -> None:
    table, _, _ = _scan_all(raw_folder)
    only, _ = scan_shards(raw_folder, ["02"], 4)
    assert set(only) == {"02"}
    assert only["02"]["image_id"].to_list() == table.filter(pl.col("shard") == "02")["image_id"].sort().to_list()


def test_unreadable_files_and_broken_links_are_recorded_not_fatal(raw_folder, monkeypatch) -> None:
    (raw_folder / "photos" / "gone.jpg").symlink_to(raw_folder / "nowhere.jpg")
    os.mkfifo(raw_folder / "photos" / "pipe.jpg")  # not a photo: left out, and never read (it would block)
    locked = raw_folder / "photos" / "photo_003.jpg"
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == locked:
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    table, _, stats = _scan_all(raw_folder)
    assert stats.files_listed == 12 + len(EXPECTED) + 1
    rows = {row["path"]: row for row in table.iter_rows(named=True)}
    assert "photos/pipe.jpg" not in rows
    for path, detail in (("photos/gone.jpg", "FileNotFoundError"), ("photos/photo_003.jpg", "Permission denied")):
        assert rows[path]["readable"] is False and rows[path]["error"] == "unreadable_file"
        assert detail in rows[path]["error_detail"]
    photos = [row for path, row in rows.items() if path.startswith("photos/photo_")]
    assert sum(row["readable"] for row in photos) == 11  # the other photos are still scanned
    listing = list_raw_files(raw_folder)
    assert ("photos/gone.jpg", 0, 0) in listing.files
