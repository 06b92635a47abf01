"""`facestats composites add|list|sync|build` through the real command line, with a temporary DAGSTER_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.analysis.master import build_master
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import Layout

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FACESTATS_DATA_ROOT": str(tmp_path / "data"),
        "FACESTATS_MODEL_ROOT": str(tmp_path / "models"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),  # created by the command
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def _facestats(args: list[str], env: dict[str, str], cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [str(BIN / "facestats"), "composites", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == code, f"{args}\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


def test_add_list_sync_and_errors(tmp_path) -> None:
    env = _env(tmp_path)
    added = _facestats(["add", "Gender=Female, age=20-39", "attractiveness=d10"], env, tmp_path)
    assert "gender=female,age=20-39\tslug=gender.female__age.20-39\tadded" in added.stdout
    assert "attractiveness=d10\tslug=attractiveness.d10\tadded" in added.stdout
    again = _facestats(["add", "gender=female,age=20-39"], env, tmp_path)
    assert "already registered" in again.stdout

    bad = _facestats(["add", "gender=robot"], env, tmp_path, code=2)
    assert "unknown gender" in bad.stderr and "male, female" in bad.stderr
    traversal = _facestats(["add", "../../etc/passwd"], env, tmp_path, code=2)
    assert "invalid spec" in traversal.stderr

    config = tmp_path / "composites.yaml"
    config.write_text("specs:\n  - all\n  - gender=female,age=20-39\n  - age=twenty\n  - gender=male\n")
    synced = _facestats(["sync", "--config", str(config)], env, tmp_path)
    assert "3 specs, 2 added, 1 already registered, 1 invalid" in synced.stdout
    assert "age=twenty" in synced.stderr
    _facestats(["sync", "--config", str(config), "--strict"], env, tmp_path, code=1)

    listed = json.loads(_facestats(["list", "--json", "--config", str(config)], env, tmp_path).stdout)
    assert [row["spec"] for row in listed["registered"]] == [
        "gender=female,age=20-39", "attractiveness=d10", "all", "gender=male"
    ]
    assert {row["status"] for row in listed["registered"]} == {"not built"}
    assert listed["in_yaml_not_registered"] == []
    assert "4 registered composite specs" in _facestats(["list"], env, tmp_path).stdout


def test_build_materializes_the_yaml_composites_through_dagster(tmp_path) -> None:
    """`facestats composites build` (what `make demo` runs) and the contact sheet, on a tiny known master."""
    root = tmp_path / "data"
    layout = Layout.from_roots(root, tmp_path / "models")
    ids = [f"img{i}" for i in range(6)]
    faces = [f"{i}_500_500" for i in ids]
    (layout.chips_dir / "c").mkdir(parents=True)
    for index, face_id in enumerate(faces):
        Image.new("RGB", (16, 16), (index * 40, 0, 0)).save(layout.chips_dir / "c" / f"{face_id}.png")
    master, _ = build_master(
        pl.DataFrame({"image_id": ids, "path": ids, "readable": True}),
        detections=pl.DataFrame({"image_id": ids, "face_id": faces, "face_source": "whole_image"}),
        chips=pl.DataFrame({"face_id": faces, "ok": True, "composite_path": [f"c/{f}.png" for f in faces]}),
        attributes=pl.DataFrame({"face_id": faces, "gender_pred": ["male", "female"] * 3}),
    )
    atomic_write_parquet(layout.artifact("master_metadata"), master)
    config = tmp_path / "composites.yaml"
    config.write_text("specs: [all, gender=female, gender=male]\n")
    env = _env(tmp_path, FACESTATS_MIN_FACES="3", FACESTATS_COMPOSITE_SIZE="32",
               FACESTATS_COMPOSITE_METHOD="none", FACESTATS_COMPOSITES_CONFIG=str(config))
    _facestats(["add", "gender=male,age=70+"], env, tmp_path)  # registered, not in the YAML: not built

    built = _facestats(["build"], env, tmp_path)
    assert "--partition-range all...gender=male" in built.stdout
    files = sorted(p.name for p in layout.composites_dir.glob("*.png"))
    assert files == ["all.png", "gender.female.png", "gender.male.png"]
    with Image.open(layout.composites_dir / "gender.female.png") as image:
        assert np.asarray(image)[0, 0, 0] == round(np.mean([40, 120, 200]))
    subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "facestats_dagster.definitions", "--select",
         "contact_sheet"], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=300,
    )
    assert (layout.composites_dir / "contact_sheet.png").exists()
    listed = json.loads(_facestats(["list", "--json"], env, tmp_path).stdout)
    assert {row["spec"]: row["status"] for row in listed["registered"]}["gender=female"] == "built, 3 faces"
