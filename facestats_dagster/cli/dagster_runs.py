"""The one way every `facestats` sub-command runs Dagster: the instance in `$DAGSTER_HOME`, and
`dagster asset materialize` commands run one after another (what README.md shows for cron)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from facestats_dagster.partitions import ALL_SHARDS_RANGE, IMAGE_GROUP
from facestats_dagster.settings import load_settings

DEFINITIONS_MODULE = "facestats_dagster.definitions"

IMAGE_SELECTION = f"group:{IMAGE_GROUP}"
"""The image-level shard assets: raw_images, face_detections, face_chips, embedding_shards."""

ANALYSIS_SELECTION = (
    "(key:embeddings_clip+ or key:reference_embeddings) and not group:master and not group:composites "
    "and not group:statistics and not group:report"
)
"""The reference set and everything downstream of `embeddings_clip` except the master table, the
composites, the statistics and the report (which read the master table, so they run last):
`embeddings_clip+` also selects the partitioned `composite`, which the CLI refuses without `--partition`."""

REPORT_SELECTION = "face_statistics,stats_report"
"""The last run: statistics with confidence intervals, then the HTML report built on them."""


def sibling_command(name: str) -> str:
    """The path of a console script installed next to this Python (`dagster`, `facestats`)."""
    return str(Path(sys.executable).with_name(name))


def ensure_dagster_home() -> Path:
    """`DAGSTER_HOME` (default `.dagster_home`), created with telemetry off when new."""
    home = Path(load_settings().dagster_home).absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return home


def dagster_env(**overrides: str) -> dict[str, str]:
    """The environment of a `dagster` subprocess: this one, `DAGSTER_HOME` set, plus `overrides`."""
    return {**os.environ, "DAGSTER_HOME": str(ensure_dagster_home()), **overrides}


def materialize(select: str, *, partition: str | None = None, partition_range: str | None = None,
                dagster: str = "dagster") -> list[str]:
    """One `dagster asset materialize` command over the FaceStats definitions."""
    command = [dagster, "asset", "materialize", "-m", DEFINITIONS_MODULE, "--select", select]
    if partition is not None:
        command += ["--partition", partition]
    if partition_range is not None:
        command += ["--partition-range", partition_range]
    return command


def update_commands(dagster: str = "dagster", facestats: str = "facestats",
                    specs_file: str | None = None) -> list[list[str]]:
    """The commands that bring every artifact up to date, in order (`facestats update` and
    `facestats demo` run them; README's cron section lists them): image shards (one run over
    every shard), analysis, master table, composites (`facestats composites build`: syncs the
    YAML, then one run per block of registered specs), contact sheet, statistics and report."""
    path = specs_file or load_settings().composites_config
    return [
        materialize(IMAGE_SELECTION, partition_range=ALL_SHARDS_RANGE, dagster=dagster),
        materialize(ANALYSIS_SELECTION, dagster=dagster),
        materialize("master_metadata", dagster=dagster),
        [facestats, "composites", "build", "--config", path],
        materialize("contact_sheet", dagster=dagster),
        materialize(REPORT_SELECTION, dagster=dagster),
    ]


def run_commands(commands: list[list[str]], env: dict[str, str] | None = None, who: str = "facestats") -> int:
    """Run each command, echoing it; stop at the first failure and return its exit code."""
    for command in commands:
        shown = [Path(command[0]).name, *command[1:]]
        print("$ " + " ".join(f"'{part}'" if " " in part else part for part in shown), flush=True)
        completed = subprocess.run(command, env=env, check=False)
        if completed.returncode != 0:
            print(f"{who}: the command above failed with exit code {completed.returncode}", file=sys.stderr)
            return completed.returncode
    return 0
