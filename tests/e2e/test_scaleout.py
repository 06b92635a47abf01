"""Scale-out through Dagster's own partitioned execution: a backfill of `image_shards` (the image
assets partitioned by shard) queues one run per shard; the Dagster daemon launches them side by
side (a process per run), and each run's steps go to the job's executor: their own processes
(multiprocess executor) or two Celery workers (dagster-celery, filesystem broker). The result
equals a single-process run of the same assets.

Evidence comes from the Dagster event log of the runs: the pid of each run's RUN_START event and
of each step's STEP_START event, the runs' start/end timestamps, the materialized partitions, and
the artifacts, compared file by file with a run of the image assets in one process
(``--partition-range 00...01`` with the in-process executor).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from facestats_core.io.layout import Layout
from facestats_dagster.cli.dagster_runs import IMAGE_SELECTION
from facestats_dagster.defs.scaleout import SHARD_ASSETS, library_version
from facestats_demo.faces import DemoSpec, generate_demo_dataset

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
SHARDS = ["00", "01"]


def _env(root: Path, home: Path, clip: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **os.environ,
        "FACESTATS_DATA_ROOT": str(root),
        "FACESTATS_MODEL_ROOT": str(root.parent / "models"),
        "FACESTATS_CLIP_MODEL": str(clip),
        "FACESTATS_SHARDS": str(len(SHARDS)),
        "FACESTATS_CLIP_THREADS": "1",
        "FACESTATS_FACE_MODE": "whole",  # the synthetic demo faces are pre-cropped
        "FACESTATS_AUTOMATION": "0",  # the daemon launches the backfill's runs, no sensor runs of its own
        "DAGSTER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    completed = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, f"{args}\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}"
    return completed


def _dagster(*args: str) -> list[str]:
    return [str(BIN / "dagster"), *args, "-m", "facestats_dagster.definitions"]


def _copy_raw(source: Path, target: Path) -> None:
    """The same files with the same mtimes (the raw manifest records them)."""
    for name in ("raw", "labels"):
        shutil.copytree(source / name, target / name)


def _artifacts(root: Path) -> dict[str, pl.DataFrame]:
    layout = Layout.from_roots(root, root.parent / "models")
    frames = {"embeddings_clip": pl.read_parquet(layout.artifact("embeddings_clip"))}
    for name in SHARD_ASSETS:
        for shard in SHARDS:
            frames[f"{name}/{shard}"] = pl.read_parquet(layout.artifact_dir(name) / f"{shard}.parquet")
    return frames


@pytest.fixture(scope="module")
def source_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("source") / "data"
    generate_demo_dataset(root, DemoSpec(n_images=12, size=128, seed=0))
    return root


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, source_data: Path, tiny_clip_dir: Path
) -> dict[str, pl.DataFrame]:
    """The image assets of both shards in one process, then embeddings_clip."""
    work = tmp_path_factory.mktemp("single")
    _copy_raw(source_data, work / "data")
    env = _env(work / "data", work / "home", tiny_clip_dir)
    _run([*_dagster("asset", "materialize"), "--select", IMAGE_SELECTION,
          "--partition-range", f"{SHARDS[0]}...{SHARDS[-1]}"], env, work)  # the default executor: in process
    _run([*_dagster("asset", "materialize"), "--select", "embeddings_clip"], env, work)
    frames = _artifacts(work / "data")
    assert frames["embeddings_clip"].height == 12
    assert all(frames[f"embedding_shards/{shard}"].height for shard in SHARDS)  # both shards hold images
    return frames


@contextlib.contextmanager
def _daemon(env: dict[str, str], cwd: Path) -> Iterator[None]:
    """`dagster-daemon run` on the definitions (it dequeues the queued runs and launches them), stopped after."""
    log = (cwd / "daemon.log").open("w")
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-m", "facestats_dagster.definitions"], env=env,
                              cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield
    finally:
        _stop(daemon)
        log.close()


def _backfill_shards(env: dict[str, str], cwd: Path, home: Path, monkeypatch: pytest.MonkeyPatch,
                     timeout: float = 480) -> dict[str, dict]:
    """Backfill `image_shards` over every shard with the daemon running; wait until its runs finish and
    return, per shard, its run's pid and start/end time and the pids of its steps."""
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:  # create the instance's databases before two processes race to
        instance.get_runs()
    with _daemon(env, cwd):
        _run([*_dagster("job", "backfill"), "-j", "image_shards", "--all", "--noprompt"], env, cwd)
        deadline = time.monotonic() + timeout
        with dg.DagsterInstance.get() as instance:
            while True:
                runs = instance.get_runs(filters=dg.RunsFilter(job_name="image_shards"))
                if len(runs) == len(SHARDS) and all(run.is_finished for run in runs):
                    break
                assert time.monotonic() < deadline, (runs, (cwd / "daemon.log").read_text()[-3000:])
                time.sleep(2)
    with dg.DagsterInstance.get() as instance:
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), [run.status for run in runs]
        assert len({run.tags["dagster/backfill"] for run in runs}) == 1  # one backfill, one run per shard
        shards: dict[str, dict] = {}
        for run in runs:
            info = shards.setdefault(run.tags["dagster/partition"], {"steps": {}, "materialized": set()})
            for entry in instance.all_logs(run.run_id):
                event = entry.dagster_event
                if event is None:
                    continue
                kind = event.event_type
                if kind == dg.DagsterEventType.RUN_START:
                    info.update(pid=event.pid, start=entry.timestamp)
                elif kind == dg.DagsterEventType.RUN_SUCCESS:
                    info["end"] = entry.timestamp
                elif kind == dg.DagsterEventType.STEP_START:
                    info["steps"][entry.step_key] = event.pid
                elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    materialization = entry.asset_materialization
                    info["materialized"].add((materialization.asset_key.to_user_string(), materialization.partition))
        for name in SHARD_ASSETS:
            assert instance.get_materialized_partitions(dg.AssetKey(name)) == set(SHARDS), name
    assert sorted(shards) == SHARDS
    for shard, info in shards.items():
        assert info["materialized"] == {(name, shard) for name in SHARD_ASSETS}, info
        assert sorted(info["steps"]) == sorted(SHARD_ASSETS), info
    return shards


def _assert_parallel(shards: dict[str, dict]) -> None:
    first, second = (shards[key] for key in SHARDS)
    overlap = min(first["end"], second["end"]) - max(first["start"], second["start"])
    print("; ".join(
        f"shard {key}: run pid {info['pid']}, step pids {sorted(set(info['steps'].values()))}, "
        f"{info['end'] - info['start']:.1f} s" for key, info in shards.items()
    ) + f"; overlap {overlap:.1f} s")
    assert first["pid"] != second["pid"], "both shards' runs ran in the same process"
    for info in shards.values():
        assert info["pid"] not in info["steps"].values(), "a step ran in its run's own process"
    # each run started before the other one finished: the two shards ran at the same time
    assert first["start"] < second["end"] and second["start"] < first["end"], shards


def _assert_same_result(root: Path, reference: dict[str, pl.DataFrame]) -> None:
    result = _artifacts(root)
    assert sorted(result) == sorted(reference)
    for name, frame in reference.items():
        assert result[name].equals(frame), name


def test_shard_runs_run_side_by_side_with_the_multiprocess_executor(
    tmp_path: Path, source_data: Path, reference: dict[str, pl.DataFrame], tiny_clip_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _copy_raw(source_data, tmp_path / "data")
    env = _env(tmp_path / "data", tmp_path / "home", tiny_clip_dir)
    _assert_parallel(_backfill_shards(env, tmp_path, tmp_path / "home", monkeypatch))
    # downstream assets read the partitions as usual
    _run([*_dagster("asset", "materialize"), "--select", "embeddings_clip"], env, tmp_path)
    _assert_same_result(tmp_path / "data", reference)


# ----------------------------------------------------------------------------------------- celery


def _celery_run_config(work: Path) -> dict:
    broker = work / "broker"
    for folder in ("queue", "processed", "control"):
        (broker / folder).mkdir(parents=True, exist_ok=True)
    (work / "results").mkdir(exist_ok=True)
    return {
        "execution": {
            "config": {
                "broker": "filesystem://",
                "backend": f"file://{work / 'results'}",
                "config_source": {
                    "broker_transport_options": {
                        "data_folder_in": str(broker / "queue"),
                        "data_folder_out": str(broker / "queue"),
                        "processed_folder": str(broker / "processed"),
                        "control_folder": str(broker / "control"),
                    },
                    # a worker holds one task at a time, so two ready shards go to two workers
                    "worker_prefetch_multiplier": 1,
                    "task_acks_late": True,
                    "broker_connection_retry_on_startup": True,
                },
            }
        }
    }


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.update(int(child) for child in (task / "children").read_text().split())
    except OSError:
        return found
    for child in list(found):
        found |= _children(child)
    return found


def _stop(process: subprocess.Popen) -> None:
    """Stop a worker and every process it started (its own session), SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def test_shard_runs_steps_run_on_two_celery_workers(
    tmp_path: Path, source_data: Path, reference: dict[str, pl.DataFrame], tiny_clip_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip(
        "dagster_celery",
        reason=f"dagster-celery is not installed (pip install dagster-celery=={library_version()})",
    )
    celery = shutil.which("celery", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if celery is None:
        pytest.skip("the `celery` command of the celery package is not on PATH")
    _copy_raw(source_data, tmp_path / "data")
    config_file = tmp_path / "celery.yaml"
    config_file.write_text(json.dumps(_celery_run_config(tmp_path)))  # JSON is YAML
    env = _env(tmp_path / "data", tmp_path / "home", tiny_clip_dir, FACESTATS_SHARD_EXECUTOR="celery",
               FACESTATS_SHARD_RUN_CONFIG=str(config_file))  # every run of the backfill carries it
    env["PATH"] = f"{Path(celery).parent}{os.pathsep}{env.get('PATH', '')}"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with dg.DagsterInstance.get() as instance:  # create the instance's databases before two workers race to
        instance.get_runs()

    workers: list[subprocess.Popen] = []
    logs: list[Path] = []
    try:
        for name in ("w1", "w2"):
            logs.append(tmp_path / f"{name}.log")
            with logs[-1].open("w") as log:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "dagster_celery.cli", "worker", "start",
                     "-A", "dagster_celery.app", "-y", str(config_file), "-n", name, "--",
                     "--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                ))
        deadline = time.monotonic() + 120
        while not all(" ready." in log.read_text() for log in logs):
            assert all(w.poll() is None for w in workers), "\n".join(log.read_text()[-2000:] for log in logs)
            assert time.monotonic() < deadline, "celery workers did not start"
            time.sleep(0.5)
        worker_pids = [_children(worker.pid) | {worker.pid} for worker in workers]

        shards = _backfill_shards(env, tmp_path, tmp_path / "home", monkeypatch)
        _assert_parallel(shards)
        # every step ran inside one of the two workers started here, and both workers ran steps
        owners = {
            (shard, step): [i for i, pids in enumerate(worker_pids) if pid in pids]
            for shard, info in shards.items() for step, pid in info["steps"].items()
        }
        assert all(len(found) == 1 for found in owners.values()), owners
        assert {found[0] for found in owners.values()} == {0, 1}, owners
        texts = [log.read_text() for log in logs]
        assert all("execute_plan" in text and "succeeded" in text for text in texts), texts
    finally:
        for worker in workers:
            _stop(worker)
    env.pop("FACESTATS_SHARD_EXECUTOR")
    env.pop("FACESTATS_SHARD_RUN_CONFIG")
    _run([*_dagster("asset", "materialize"), "--select", "embeddings_clip"], env, tmp_path)
    _assert_same_result(tmp_path / "data", reference)
