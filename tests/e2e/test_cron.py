"""README's crontab line, run verbatim (only paths substituted) as cron would, against a fresh DAGSTER_HOME."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from facestats_core.io.layout import Layout
from facestats_demo.edge_cases import EXPECTED

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
N_IMAGES = 24


def readme_cron_lines() -> list[str]:
    """The non-comment lines of README.md's ```cron block(s)."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```cron\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "README.md has no ```cron block"
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def split_cron(line: str) -> tuple[str, str]:
    """``(schedule, command)``: the five time fields and the rest, exactly as written."""
    match = re.match(r"^\s*((?:\S+\s+){4}\S+)\s+(.+)$", line)
    assert match, f"not a crontab line: {line!r}"
    return match.group(1), match.group(2)


def test_readme_crontab_line_runs_as_cron_would(tmp_path, tiny_clip_dir) -> None:
    from dagster._utils.schedules import is_valid_cron_string

    [line] = readme_cron_lines()
    schedule, command = split_cron(line)
    assert is_valid_cron_string(schedule), schedule

    # /srv/facestats: a checkout with its .venv (ours, linked); nothing else is taken from the repo
    app = tmp_path / "app"
    app.mkdir(parents=True)
    (app / ".venv").symlink_to(REPO / ".venv")
    faces, log = tmp_path / "faces", tmp_path / "log" / "facestats.log"
    log.parent.mkdir()
    subprocess.run(
        [str(BIN / "facestats"), "demo-data", "--data-root", str(faces), "--n-images", str(N_IMAGES), "--size", "128"],
        check=True, capture_output=True, timeout=300,
    )
    specs = tmp_path / "composites.yaml"
    specs.write_text("specs:\n  - all\n  - gender=female\n")

    substitutions = [  # longest first: /srv/faces is a prefix of /srv/facestats
        ("/srv/models/clip-vit-base-patch32", str(tiny_clip_dir)),
        ("/srv/facestats", str(app)),
        ("/srv/faces", str(faces)),
        ("/var/log/facestats.log", str(log)),
    ]
    for placeholder, _ in substitutions:
        assert placeholder in command, f"README's cron line no longer mentions {placeholder}: update this test"
    table = dict(substitutions)  # one pass, so a substituted path is never substituted again
    command = re.sub("|".join(re.escape(p) for p, _ in substitutions), lambda m: table[m.group(0)], command)
    assert "/srv/" not in command and "/var/" not in command, command

    env = {  # cron's environment: no venv activated, a bare PATH; the crontab's variable lines
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SHELL": "/bin/sh",
        "LOGNAME": os.environ.get("LOGNAME", "facestats"),
        "HF_HUB_OFFLINE": "1",
        "FACESTATS_MIN_FACES": "2",
        "FACESTATS_FACE_MODE": "whole",  # the synthetic demo faces are pre-cropped
        "FACESTATS_COMPOSITES_CONFIG": str(specs),
    }
    completed = subprocess.run(["/bin/sh", "-c", command], env=env, cwd=tmp_path, timeout=900)
    output = log.read_text() if log.exists() else ""
    assert completed.returncode == 0, output[-5000:]

    # cron's log: one plain line per step and the summary, no Dagster DEBUG lines; the event log beside
    # the Dagster home shows both runs (every shard up to the master table; composites, sheet, statistics, report)
    assert "  done raw_images" in output and "faces found" in output and "DEBUG" not in output
    events = (app / ".dagster_home" / "facestats.log").read_text()
    assert ("---- run --select 'not group:composites and not group:statistics and not "
            "group:report' --partition-range 00...03") in events
    assert "--select 'composite,contact_sheet,face_statistics,stats_report' --partition-range all...gender=female" in (
        events)
    assert "FAILED" not in output and "Traceback" not in output

    # the artifacts, under the substituted data root; models under the cron line's working directory
    layout = Layout.from_roots(faces, app / "models")
    readable = N_IMAGES + sum(reason is None for reason in EXPECTED.values())
    embeddings = pl.read_parquet(layout.artifact("embeddings_clip"))
    assert embeddings.height == readable and embeddings["model_id"].unique().to_list() == [str(tiny_clip_dir)]
    master = pl.read_parquet(layout.artifact("master_metadata"))
    assert master.height == N_IMAGES + len(EXPECTED)
    assert (layout.model_root / "attribute_classifiers.safetensors").exists()
    pngs = sorted(p.name for p in layout.composites_dir.glob("*.png"))
    assert {"all.png", "gender.female.png", "contact_sheet.png"} <= set(pngs)

    # the fresh DAGSTER_HOME holds the two runs, both successful, the first over every shard
    home = app / ".dagster_home"
    assert (home / "dagster.yaml").exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        assert instance.get_materialized_partitions(dg.AssetKey("embedding_shards")) == {"00", "01", "02", "03"}
