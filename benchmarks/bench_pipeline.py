"""Wall time and peak memory of the whole pipeline, as cron runs it (``facestats update``).

For each N: writes N demo faces (+ the edge cases) with ``facestats demo-data``, builds the seeded
small CLIP once (``facestats build-clip --preset small``), then runs every command of
``facestats update`` (``facestats_dagster.cli.dagster_runs.update_commands``: the real ``dagster asset
materialize`` CLI, ``facestats composites build``) against a fresh DAGSTER_HOME and records per command:

* wall time;
* peak RSS of the command's whole process tree (the sum over the CLI process and the step
  processes Dagster starts, polled from /proc every 0.2 s) and of its largest single process;
* the duration of every Dagster step, parsed from the STEP_SUCCESS lines of its log.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py --n 1000 3000 [--work DIR] [--keep]

Prints markdown tables and writes ``benchmarks/results/bench_pipeline_<N>.json``. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------------ /proc polling


def _parents() -> dict[int, int]:
    table: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        table[int(entry.name)] = int(fields[1])
    return table


def _memory(pid: int) -> tuple[int, int]:
    """``(RSS, PSS)`` in bytes; PSS shares pages among the processes using them, so it adds up."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return rss, pss


class TreeMemory(threading.Thread):
    """Polls the RSS of a process and all its descendants until stopped."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_tree = self.peak_tree_pss = self.peak_single = 0
        self.max_processes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            parents = _parents()
            tree, frontier = {self.root}, [self.root]
            while frontier:
                current = frontier.pop()
                children = [pid for pid, parent in parents.items() if parent == current]
                tree.update(children)
                frontier.extend(children)
            sizes = [_memory(pid) for pid in tree]
            self.peak_tree = max(self.peak_tree, sum(rss for rss, _ in sizes))
            self.peak_tree_pss = max(self.peak_tree_pss, sum(pss for _, pss in sizes))
            self.peak_single = max(self.peak_single, max((rss for rss, _ in sizes), default=0))
            self.max_processes = max(self.max_processes, len([rss for rss, _ in sizes if rss]))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# -------------------------------------------------------------------------------------- running


def step_durations(home: Path, since: float, until: float) -> dict[str, float]:
    """Seconds from STEP_START to STEP_SUCCESS of every step of the runs created in ``[since, until]``,
    read from the Dagster instance (the CLI's own output can lose lines of its step processes)."""
    import dagster as dg

    durations: dict[str, float] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for record in instance.get_run_records():
            if not since <= record.create_timestamp.timestamp() <= until:
                continue
            started: dict[str, float] = {}
            for entry in instance.all_logs(record.dagster_run.run_id):
                kind = entry.dagster_event_type
                if kind == dg.DagsterEventType.STEP_START:
                    started[entry.step_key] = entry.timestamp
                elif kind == dg.DagsterEventType.STEP_SUCCESS and entry.step_key in started:
                    seconds = entry.timestamp - started.pop(entry.step_key)
                    durations[entry.step_key] = durations.get(entry.step_key, 0.0) + seconds
    return durations


def run_measured(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict:
    since = time.time()
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        memory = TreeMemory(process.pid)
        memory.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        memory.stop()
    wall = time.perf_counter() - started
    text = log.read_text(errors="replace")
    steps = step_durations(Path(env["DAGSTER_HOME"]), since, time.time())
    if process.returncode != 0:
        raise SystemExit(f"command failed ({process.returncode}): {' '.join(command)}\n{text[-4000:]}")
    return {
        "command": " ".join([Path(command[0]).name, *command[1:]]),
        "wall_s": round(wall, 2),
        "peak_tree_rss_mib": round(memory.peak_tree / 2**20, 1),
        "peak_tree_pss_mib": round(memory.peak_tree_pss / 2**20, 1),
        "peak_process_rss_mib": round(max(memory.peak_single, usage.ru_maxrss * 1024) / 2**20, 1),
        "max_processes": memory.max_processes,
        "steps_s": {key: round(value, 2) for key, value in steps.items()},
    }


def bench(n: int, work: Path, clip: Path, image_size: int) -> dict:
    data, home = work / f"data-{n}", work / f"dagster-home-{n}"
    for folder in (data, home):
        shutil.rmtree(folder, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "FACESTATS_DATA_ROOT": str(data),
        "FACESTATS_MODEL_ROOT": str(work / f"models-{n}"),
        "FACESTATS_CLIP_MODEL": str(clip),
        "DAGSTER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore",
    }
    logs = work / f"logs-{n}"
    logs.mkdir(exist_ok=True)
    started = time.perf_counter()
    subprocess.run([str(BIN / "facestats"), "demo-data", "--data-root", str(data), "--n-images", str(n),
                    "--size", str(image_size)], env=env, check=True, capture_output=True)
    generate_s = time.perf_counter() - started

    from facestats_dagster.cli.dagster_runs import update_commands

    rows = []
    for index, command in enumerate(update_commands(str(BIN / "dagster"), str(BIN / "facestats"))):
        print(f"[N={n}] $ {' '.join([Path(command[0]).name, *command[1:]])}", flush=True)
        rows.append(run_measured(command, env, REPO, logs / f"{index:02d}.log"))
        print(f"[N={n}]   {rows[-1]['wall_s']} s, tree {rows[-1]['peak_tree_rss_mib']} MiB", flush=True)
    raw_files = sum(1 for p in (data / "raw").rglob("*") if p.is_file())
    return {
        "n_demo_images": n,
        "raw_files": raw_files,
        "image_size": image_size,
        "shards": int(os.environ.get("FACESTATS_SHARDS") or 4),
        "cpus": os.cpu_count(),
        "generate_demo_s": round(generate_s, 1),
        "total_wall_s": round(sum(row["wall_s"] for row in rows), 1),
        "peak_tree_rss_mib": max(row["peak_tree_rss_mib"] for row in rows),
        "peak_tree_pss_mib": max(row["peak_tree_pss_mib"] for row in rows),
        "peak_process_rss_mib": max(row["peak_process_rss_mib"] for row in rows),
        "commands": rows,
    }


def print_tables(results: list[dict]) -> None:
    from facestats_dagster.definitions import defs

    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    ns = [result["n_demo_images"] for result in results]
    header = "| command | " + " | ".join(f"N={n:,}" for n in ns) + " |\n|---|" + "---:|" * len(ns)
    print("\n### Per command: wall time / peak memory of its process tree (PSS) / largest process (RSS)\n")
    print(header)
    for index, row in enumerate(results[0]["commands"]):
        label = row["command"].replace(" asset materialize -m facestats_dagster.definitions", "")
        cells = []
        for result in results:
            cmd = result["commands"][index]
            cells.append(f"{cmd['wall_s']:.0f} s / {cmd['peak_tree_pss_mib']:,.0f} / "
                         f"{cmd['peak_process_rss_mib']:,.0f} MiB")
        print(f"| `{label}` | " + " | ".join(cells) + " |")
    print("| **whole pipeline** | " + " | ".join(
        f"**{r['total_wall_s']:.0f} s / {r['peak_tree_pss_mib']:,.0f} / "
        f"{r['peak_process_rss_mib']:,.0f} MiB**"
        for r in results) + " |")
    print("\n### Per Dagster step (s from STEP_START to STEP_SUCCESS, summed over the runs)\n")
    print(header.replace("| command |", "| step |"))
    steps: list[str] = []
    for result in results:
        for row in result["commands"]:
            steps += [step for step in row["steps_s"] if step in assets and step not in steps]

    def total(result: dict, wanted) -> float:
        return sum(v for row in result["commands"] for k, v in row["steps_s"].items() if wanted(k))

    for step in steps:
        cells = [f"{total(r, lambda k, s=step: k == s):.1f}" for r in results]
        print(f"| {step} | " + " | ".join(cells) + " |")
    checks = [f"{total(r, lambda k: k not in assets):.1f}" for r in results]
    print("| asset checks (all) | " + " | ".join(checks) + " |")
    print()
    for result in results:
        print(f"N={result['n_demo_images']:,}: {result['raw_files']} raw files ({result['image_size']} px), "
              f"demo generation {result['generate_demo_s']} s (not included), {result['shards']} shards, "
              f"{result['cpus']} CPUs; tree RSS (double-counts shared pages) peak "
              f"{result['peak_tree_rss_mib']:,.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000])
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--size", type=int, default=256, help="side of the demo images (make demo: 256)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="facestats-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip-small-random"
    if not (clip / "config.json").exists():
        subprocess.run([str(BIN / "facestats"), "build-clip", "--preset", "small", "--out", str(clip)],
                       check=True, capture_output=True)
    results = []
    try:
        for n in args.n:
            results.append(bench(n, work, clip, args.size))
            out = REPO / "benchmarks" / "results" / f"bench_pipeline_{n}.json"
            out.parent.mkdir(exist_ok=True)
            out.write_text(json.dumps(results[-1], indent=2) + "\n")
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print_tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
