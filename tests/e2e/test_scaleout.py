"""Scale-out: the `image_shards` job runs each shard as its own step, side by side in different
processes (multiprocess executor) or different Celery workers (dagster-celery, filesystem broker),
and the result equals a single-process run of the same assets.

Evidence comes from the Dagster event log of the run: the pid of each shard's STEP_START event
(also written into every materialization as ``worker_pid``), the step start/end timestamps, and the
artifacts, compared file by file with a run of the image assets in one process
(``--partition-range 00...01`` with the in-process executor).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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


def _shard_run_evidence(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """Per shard: pid and start/end time of its step, and the worker pids its materializations report."""
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="image_shards"))
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS, runs
        entries = instance.all_logs(runs[0].run_id)
        shards: dict[str, dict] = {}
        for entry in entries:
            event = entry.dagster_event
            if event is None or not (entry.step_key or "").startswith("shard_"):
                continue
            info = shards.setdefault(entry.step_key.removeprefix("shard_"), {"materialized": {}})
            if event.event_type_value == "STEP_START":
                info.update(pid=event.pid, start=entry.timestamp)
            elif event.event_type_value == "STEP_SUCCESS":
                info["end"] = entry.timestamp
            elif event.event_type_value == "ASSET_MATERIALIZATION":
                materialization = entry.asset_materialization
                info["materialized"][materialization.asset_key.to_user_string()] = (
                    materialization.partition, materialization.metadata["worker_pid"].value
                )
        coordinator = next(
            e.dagster_event.pid for e in entries if e.dagster_event_type == dg.DagsterEventType.RUN_START
        )
        for name in SHARD_ASSETS:
            assert instance.get_materialized_partitions(dg.AssetKey(name)) == set(SHARDS), name
    assert sorted(shards) == SHARDS
    for shard, info in shards.items():
        assert info["materialized"] == {name: (shard, info["pid"]) for name in SHARD_ASSETS}, info
        info["coordinator"] = coordinator
    return shards


def _assert_parallel(shards: dict[str, dict]) -> None:
    first, second = (shards[key] for key in SHARDS)
    overlap = min(first["end"], second["end"]) - max(first["start"], second["start"])
    print(f"run process {first['coordinator']}; " + "; ".join(
        f"shard {key}: pid {info['pid']}, {info['end'] - info['start']:.1f} s" for key, info in shards.items()
    ) + f"; overlap {overlap:.1f} s")
    assert first["pid"] != second["pid"], "both shards ran in the same process"
    assert first["coordinator"] not in (first["pid"], second["pid"]), "a shard ran in the run's own process"
    # each step started before the other one finished: the two shards ran at the same time
    assert first["start"] < second["end"] and second["start"] < first["end"], shards


def _assert_same_result(root: Path, reference: dict[str, pl.DataFrame]) -> None:
    result = _artifacts(root)
    assert sorted(result) == sorted(reference)
    for name, frame in reference.items():
        assert result[name].equals(frame), name


def test_shards_run_side_by_side_with_the_multiprocess_executor(
    tmp_path: Path, source_data: Path, reference: dict[str, pl.DataFrame], tiny_clip_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _copy_raw(source_data, tmp_path / "data")
    env = _env(tmp_path / "data", tmp_path / "home", tiny_clip_dir)
    config = tmp_path / "multiprocess.yaml"  # `dagster job execute` takes run config from files only
    config.write_text(json.dumps({"execution": {"config": {"max_concurrent": len(SHARDS)}}}))  # JSON is YAML
    _run([*_dagster("job", "execute"), "-j", "image_shards", "-c", str(config)], env, tmp_path)
    shards = _shard_run_evidence(tmp_path / "home", monkeypatch)
    _assert_parallel(shards)
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


def test_shards_run_on_two_celery_workers(
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
    env = _env(tmp_path / "data", tmp_path / "home", tiny_clip_dir, FACESTATS_SHARD_EXECUTOR="celery")
    env["PATH"] = f"{Path(celery).parent}{os.pathsep}{env.get('PATH', '')}"
    config_file = tmp_path / "celery.yaml"
    config_file.write_text(json.dumps(_celery_run_config(tmp_path)))  # JSON is YAML
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

        _run([*_dagster("job", "execute"), "-j", "image_shards", "-c", str(config_file)], env, tmp_path)
        shards = _shard_run_evidence(tmp_path / "home", monkeypatch)
        _assert_parallel(shards)
        # each shard ran inside one of the two workers started here, and not the same one
        owners = {
            shard: [i for i, pids in enumerate(worker_pids) if info["pid"] in pids]
            for shard, info in shards.items()
        }
        assert sorted(owner for found in owners.values() for owner in found) == [0, 1], owners
        texts = [log.read_text() for log in logs]
        assert all("execute_plan" in text and "succeeded" in text for text in texts), texts
    finally:
        for worker in workers:
            _stop(worker)
    env.pop("FACESTATS_SHARD_EXECUTOR")
    _run([*_dagster("asset", "materialize"), "--select", "embeddings_clip"], env, tmp_path)
    _assert_same_result(tmp_path / "data", reference)
