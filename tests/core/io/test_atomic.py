from __future__ import annotations

import os

import polars as pl
import pytest

from facestats_core.io.atomic import atomic_write_bytes, atomic_write_parquet


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch) -> None:
    target = tmp_path / "artifact.parquet"
    atomic_write_parquet(target, pl.DataFrame({"a": [1, 2]}))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-run")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_parquet(target, pl.DataFrame({"a": [3]}))
    monkeypatch.undo()
    assert pl.read_parquet(target)["a"].to_list() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact.parquet"]


def test_write_creates_parent_folders(tmp_path) -> None:
    target = tmp_path / "a" / "b" / "c.bin"
    atomic_write_bytes(target, b"xyz")
    assert target.read_bytes() == b"xyz"


def test_write_to_fsspec_url() -> None:
    from upath import UPath

    target = UPath("memory://facestats-test/out.bin")
    atomic_write_bytes(target, b"remote")
    assert target.read_bytes() == b"remote"


def test_written_files_get_umask_permissions_not_0600(tmp_path) -> None:
    target = tmp_path / "report.html"
    atomic_write_bytes(target, b"<html/>")
    old = os.umask(0o022)
    os.umask(old)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~old)
