"""The one way FaceStats runs its assets: `execute_runs`, Dagster runs in this process on the instance in
the settings' Dagster home (`run.dagster_home`), through Dagster's public API (`execute_in_process` of the
implicit asset job of `facestats_dagster.definitions`). `facestats run`, `update` (cron), `demo`
and `composites build` all come here. `dagster_cli_commands` spells the same work as `dagster` commands
(README lists them for scripting)."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facestats_dagster.names import IMAGE_GROUP
from facestats_dagster.partitions import ALL_SHARDS_RANGE, SHARD_KEYS
from facestats_dagster.settings import PROJECT_ENV, load_settings

DEFINITIONS_MODULE = "facestats_dagster.definitions"

IMAGE_SELECTION = f"group:{IMAGE_GROUP}"
"""The image-level shard assets: raw_images, face_detections, face_chips, embedding_shards."""

DOWNSTREAM_GROUPS = ("composites", "statistics", "report")
"""What reads the master table and the composites: `composite` (partitioned by filter spec),
`contact_sheet`, `face_statistics`, `stats_report`."""

UPSTREAM_SELECTION = " and ".join(f"not group:{group}" for group in DOWNSTREAM_GROUPS)
"""`facestats update`'s first run: the image shards, the reference set, the embeddings, the models, the
predictions, the bundle and the master table (every asset but the `DOWNSTREAM_GROUPS`)."""

DOWNSTREAM_SELECTION = "contact_sheet,face_statistics,stats_report"
"""The unpartitioned assets after the composites: the contact sheet, then statistics and the report."""

ANALYSIS_SELECTION = (
    "(key:embeddings_clip+ or key:reference_embeddings) and not group:master and not group:composites "
    "and not group:statistics and not group:report"
)
"""`dagster_cli_commands`' second command: the reference set and everything downstream of
`embeddings_clip` except the master table, the composites, the statistics and the report (which read
the master table, so they run last): `embeddings_clip+` also selects the partitioned `composite`,
which the CLI refuses without `--partition`."""

REPORT_SELECTION = "face_statistics,stats_report"
"""`dagster_cli_commands`' last command: statistics with confidence intervals, then the HTML report."""

LOGGER_CONFIG = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
"""The run config of the runs in this process: the definitions' `console` logger (`run_events`), named,
so Dagster uses it instead of its default one (which it does when the run config names no logger)."""


def sibling_command(name: str) -> str:
    """The path of a console script installed next to this Python (`dagster`, `facestats`)."""
    return str(Path(sys.executable).with_name(name))


def ensure_dagster_home() -> Path:
    """The settings' Dagster home (`run.dagster_home`, default `.dagster_home`), created with telemetry off when new."""
    home = load_settings().dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return home


def open_instance() -> Any:
    """The Dagster instance in the settings' Dagster home (a context manager)."""
    import dagster as dg

    return dg.DagsterInstance.from_config(str(ensure_dagster_home()))


def dagster_env(**overrides: str) -> dict[str, str]:
    """The environment of a `dagster` subprocess: this one, `DAGSTER_HOME` and the project
    (`FACESTATS_PROJECT`, when there is one) set, plus `overrides`."""
    project = load_settings().project
    extra = {PROJECT_ENV: str(project)} if project is not None else {}
    return {**os.environ, "DAGSTER_HOME": str(ensure_dagster_home()), **extra, **overrides}


def materialize(select: str, *, partition: str | None = None, partition_range: str | None = None,
                dagster: str = "dagster") -> list[str]:
    """One `dagster asset materialize` command over the FaceStats definitions."""
    command = [dagster, "asset", "materialize", "-m", DEFINITIONS_MODULE, "--select", select]
    if partition is not None:
        command += ["--partition", partition]
    if partition_range is not None:
        command += ["--partition-range", partition_range]
    return command


def dagster_cli_commands(dagster: str = "dagster", facestats: str = "facestats",
                         specs_file: str | None = None) -> list[list[str]]:
    """What `facestats update` does, as `dagster asset materialize` commands (README lists them for
    scripting): one process and one run each, and more runs than `facestats update` needs, because
    the CLI takes a partition range only when every selected asset is partitioned with a single-run
    backfill policy. Image shards (one run over every shard), analysis, master table, composites
    (`facestats composites build`: syncs the YAML, then one run per block of registered specs),
    contact sheet, statistics and report."""

    path = specs_file or load_settings()["composites.specs_file"]
    return [
        materialize(IMAGE_SELECTION, partition_range=ALL_SHARDS_RANGE, dagster=dagster),
        materialize(ANALYSIS_SELECTION, dagster=dagster),
        materialize("master_metadata", dagster=dagster),
        [facestats, "composites", "build", "--config", path],
        materialize("contact_sheet", dagster=dagster),
        materialize(REPORT_SELECTION, dagster=dagster),
    ]


# ------------------------------------------------------------------ runs in this process (facestats update)


def partition_blocks(registered: list[str], wanted: list[str]) -> list[tuple[str, str]]:
    """The `wanted` partitions as `(first, last)` runs of consecutive keys in `registered` order.

    A block never spans a registered key that is not wanted, so a partition range per block
    builds exactly the wanted specs. Wanted keys that are not registered are left out.
    """
    want = set(wanted)
    blocks: list[tuple[str, str]] = []
    start: str | None = None
    previous: str | None = None
    for key in registered:
        if key in want:
            start = key if start is None else start
            previous = key
        elif start is not None:
            blocks.append((start, str(previous)))
            start = None
    if start is not None:
        blocks.append((start, str(previous)))
    return blocks


@dataclass(frozen=True)
class UpdateRun:
    """One Dagster run of `facestats update`: an asset selection (Dagster's selection syntax, comma
    separated as for `--select`) and, for its partitioned assets, a partition range. The range tags
    are those of `dagster asset materialize --partition-range`; the run's unpartitioned assets run
    once, unpartitioned (their inputs from partitioned assets load every partition)."""

    select: str
    partitions: tuple[str, str] | None = None

    @property
    def tags(self) -> dict[str, str]:
        if self.partitions is None:
            return {}
        first, last = self.partitions
        return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}

    def describe(self) -> str:
        text = f"--select '{self.select}'"
        if self.partitions is not None:
            text += f" --partition-range {self.partitions[0]}...{self.partitions[1]}"
        return text


def upstream_run() -> UpdateRun:
    """Everything up to the master table, over every shard, in one run."""

    return UpdateRun(UPSTREAM_SELECTION, (SHARD_KEYS[0], SHARD_KEYS[-1]))


def composite_runs(registered: list[str], wanted: list[str]) -> list[UpdateRun]:
    """The composites of the `wanted` specs: one run per block of consecutively registered specs
    (`partition_blocks`), so no run builds a registered spec that is not wanted."""
    return [UpdateRun("composite", block) for block in partition_blocks(registered, wanted)]


def downstream_runs(registered: list[str], wanted: list[str]) -> list[UpdateRun]:
    """The composites of the `wanted` specs, then the contact sheet, statistics and report: one run,
    the last of `composite_runs` with the unpartitioned assets; a run of composites alone for each
    earlier block (only when registered specs that are not wanted sit between wanted ones)."""
    runs = composite_runs(registered, wanted)
    if not runs:
        return [UpdateRun(DOWNSTREAM_SELECTION)]
    return [*runs[:-1], UpdateRun(f"composite,{DOWNSTREAM_SELECTION}", runs[-1].partitions)]


def execute_runs(runs: list[UpdateRun], who: str = "facestats update", display: Any = None) -> int:
    """Execute each run in this process (Dagster's public `JobDefinition.execute_in_process` on the
    implicit asset job, in-process executor as the definitions declare) on the instance in the settings'
    Dagster home, recorded there like a `dagster asset materialize` run; stop at the first failure and
    return 1. With a `display` (`cli.display.RunDisplay`) the runs' records and progress go to it;
    without, each run is echoed. The definitions and their asset graph load once, before the first run."""
    import dagster as dg

    # local: loading the definitions reads the settings, which `configure` (flags, project) must set first
    from facestats_dagster.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    with open_instance() as instance:
        for run in runs:
            if display is None:
                print(f"$ {who}: run {run.describe()}", flush=True)
            else:
                display.run_started(run.describe())
            with warnings.catch_warnings():  # the selection parser's own use of a beta parameter
                warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*include_sources.*")
                keys = sorted(dg.AssetSelection.from_coercible(run.select.split(",")).resolve(graph))
            result = job.execute_in_process(instance=instance, asset_selection=keys, tags=run.tags,
                                            raise_on_error=False, run_config=LOGGER_CONFIG)
            if not result.success:
                if display is None:
                    print(f"{who}: the run above failed (run id {result.run_id})", file=sys.stderr)
                else:
                    display.run_failed(result.run_id)
                return 1
    return 0
