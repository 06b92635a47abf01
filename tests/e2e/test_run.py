"""`facestats run PHOTOS` from a folder outside the clone with no FACESTATS_* variable: real photos (the
insightface wheel's six-person group photo and portraits, in sub-folders, plus a bad file), read only."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
WHEEL = Path(sys.executable).parents[1] / "fixture-wheels" / "insightface-2.1-py3-none-any.whl"


def _photos(folder: Path) -> Path:
    with zipfile.ZipFile(WHEEL) as wheel:
        for name in wheel.namelist():
            if name.startswith("insightface/data/images/") and name.endswith((".jpg", ".png")):
                sub = "masks" if "mask_" in name else "people"
                (folder / sub).mkdir(parents=True, exist_ok=True)
                (folder / sub / Path(name).name).write_bytes(wheel.read(name))
    (folder / "broken.jpg").write_bytes(b"not an image")
    for path in [*folder.rglob("*"), folder]:
        path.chmod(0o555 if path.is_dir() else 0o444)  # read only, as a user's archive may be
    return folder


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def _facestats(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACESTATS_") and k != "DAGSTER_HOME"}
    env.update(HF_HUB_OFFLINE="1", **extra)
    return subprocess.run([str(BIN / "facestats"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _latest_metadata(home: Path, asset: str) -> dict:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        return {key: value.value for key, value in event.asset_materialization.metadata.items()}


@pytest.mark.skipif(not WHEEL.exists(), reason="the insightface wheel is fetched by `make` into .venv/fixture-wheels")
def test_run_reads_photos_in_place_and_a_second_run_reuses_everything(tmp_path, tiny_clip_dir) -> None:
    photos = _photos(tmp_path / "photos")
    before = _digest(photos)
    try:
        first = _facestats(["run", str(photos), "--clip-model", str(tiny_clip_dir), "--shards", "2",
                            "--min-faces", "2"], tmp_path)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        project = tmp_path / "facestats-photos"
        out = first.stdout
        assert "DEBUG" not in out + first.stderr and len(out.splitlines()) < 40, out
        assert f"settings {project / 'facestats.toml'} (written" in out
        assert "faces found" in out and "no face" in out and "unreadable 1" in out
        assert "predicted how     gender: zero_shot" in out
        assert "NOTICE            the CLIP has RANDOM weights" in out
        assert f"report            {project / 'data' / 'processed' / 'report' / 'index.html'}" in out
        assert "DEBUG" in (project / "facestats.log").read_text()  # Dagster's event log, in the project
        assert _digest(photos) == before  # read only: nothing moved, copied or changed

        # the settings the first run used are the project's: a second run needs no flag and reuses everything
        settings = _facestats(["settings", "--project", str(project)], tmp_path)
        assert 'clip.model' in settings.stdout and f"# file {project / 'facestats.toml'}:" in settings.stdout
        assert "paths.photos" in settings.stdout and str(photos) in settings.stdout
        second = _facestats(["update", "--project", str(project)], tmp_path)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        embedded = _latest_metadata(project / ".dagster_home", "embedding_shards")
        assert embedded["embedded"] == 0 and embedded["reused"] > 0  # nothing embedded again
        assert _digest(photos) == before

        # a bad value in the project file: one line naming the key, file and line, and what is allowed
        text = (project / "facestats.toml").read_text().replace('face_mode = "detect"', 'face_mode = "eyes"')
        (project / "facestats.toml").write_text(text)
        bad = _facestats(["update", "--project", str(project)], tmp_path)
        line = next(n for n, row in enumerate(text.splitlines(), 1) if row == 'face_mode = "eyes"')
        assert bad.returncode == 2 and f"facestats.toml:{line}) is not allowed: one of detect, whole, auto" in bad.stderr
    finally:
        for path in [photos, *photos.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
