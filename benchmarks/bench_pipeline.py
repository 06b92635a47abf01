"""Wall time against compute time of the whole pipeline, as cron runs it (``facestats update``).

For each N: writes N demo faces (+ the edge cases) with ``facestats demo-data`` and builds a seeded
random CLIP once (``facestats build-clip``; ``--clip vit-b32``, the default, is the real ViT-B/32
architecture: same FLOPs as openai/clip-vit-base-patch32; ``--clip small`` the small preset), then
times ONE ``facestats update`` on that fresh demo set, with fresh model root and DAGSTER_HOME and
default settings (face detection, 4 shards), and reads its runs back from the Dagster instance:

* ``wall_s``: from starting the ``facestats update`` process to its exit;
* ``compute_s``: the sum, over every step of the runs the command created, of STEP_START to
  STEP_SUCCESS in Dagster's event log. A step includes loading its inputs, the asset's work, writing
  its output through the IO manager and (since the checks run in their asset's step) its asset
  checks;
* everything else is overhead, split as: ``startup_s`` (process start, imports, loading the
  definitions and the instance, up to the first run's creation), ``in_runs_s`` (inside the runs but
  outside any step: run start, resource initialisation, event writes, run end) and
  ``between_runs_s`` (the rest: registering the composite specs, creating the second run, process
  exit). Demo generation and building the CLIP are not timed.

It also records the peak memory of the command's process tree (the update and the face-detection
worker processes, polled from /proc every 0.2 s) and of its largest single process.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py --n 3000 [--clip vit-b32|small] [--size 256] [--work DIR] [--keep]

Per step it also gives faces/s (faces embedded / step seconds, shards and partitions summed), the
cores it kept busy (CPU seconds of the process tree during the step / its seconds, from /proc), the
peak PSS of the process tree while it ran, and the step's share of the compute; ``embed_s`` is the CLIP
work (the ``embedding_shards`` steps), the
one essential heavy step, and ``wall_over_embed`` how many times that the whole command costs.
Where a step records a time profile in its materialization metadata (``profile_*_s`` keys: the
composite and chip steps split decode / resample / warp / encode / write), those are summed too.

Prints markdown tables, writes ``benchmarks/results/bench_pipeline_<N>.json`` and ends with one line per N:
``summary: images=<N> faces=<F> wall_s=<x> embed_s=<x> wall_over_embed=<x> faces_per_s=<x> peak_mib=<x>``
(``peak_mib``: the peak PSS of the command's process tree). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
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
CLIP_PRESETS = {"vit-b32": "vit-b-32", "small": "small"}
"""``--clip`` choices and the ``facestats build-clip --preset`` each builds."""


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


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its reaped children (user + system), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(b")") + 2 :].split()
    return sum(int(v) for v in fields[11:15]) / TICK


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
    """Polls the RSS and CPU seconds of a process and all its descendants until stopped.

    ``cpu``: ``(time.time(), CPU seconds)`` samples of the tree (a child's seconds move into its
    parent's reaped-children count when it exits, so the sum does not drop)."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_tree = self.peak_tree_pss = self.peak_single = 0
        self.max_processes = 0
        self.cpu: list[tuple[float, float]] = []
        self.pss: list[tuple[float, int]] = []
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
            self.cpu.append((time.time(), sum(_cpu_seconds(pid) for pid in tree)))
            self.pss.append((time.time(), sum(pss for _, pss in sizes)))
            self.peak_tree = max(self.peak_tree, sum(rss for rss, _ in sizes))
            self.peak_tree_pss = max(self.peak_tree_pss, sum(pss for _, pss in sizes))
            self.peak_single = max(self.peak_single, max((rss for rss, _ in sizes), default=0))
            self.max_processes = max(self.max_processes, len([rss for rss, _ in sizes if rss]))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# -------------------------------------------------------------------------------------- running


def run_timings(home: Path, since: float, until: float) -> list[dict]:
    """Every run created in ``[since, until]``, oldest first: its selection, creation / start / end
    times and the seconds from STEP_START to STEP_SUCCESS of each of its steps, from the Dagster
    instance's event log."""
    import dagster as dg

    runs = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for record in reversed(instance.get_run_records()):
            created = record.create_timestamp.timestamp()
            if not since <= created <= until:
                continue
            run = record.dagster_run
            started: dict[str, float] = {}
            steps: dict[str, float] = {}
            spans: dict[str, list[float]] = {}
            for entry in instance.all_logs(run.run_id):
                kind = entry.dagster_event_type
                if kind == dg.DagsterEventType.STEP_START:
                    started[entry.step_key] = entry.timestamp
                elif kind == dg.DagsterEventType.STEP_SUCCESS and entry.step_key in started:
                    begin = started.pop(entry.step_key)
                    steps[entry.step_key] = entry.timestamp - begin
                    spans[entry.step_key] = [begin, entry.timestamp]
            runs.append({
                "run_id": run.run_id,
                "status": run.status.value,
                "assets": sorted(key.to_user_string() for key in run.asset_selection or []),
                "partition_range": [run.tags.get("dagster/asset_partition_range_start"),
                                    run.tags.get("dagster/asset_partition_range_end")],
                "created": created,
                "start": record.start_time,
                "end": record.end_time,
                "steps_s": steps,
                "step_spans": spans,
            })
    return runs


def step_profiles(home: Path, since: float) -> dict[str, dict[str, float]]:
    """``{asset: {profile key: seconds summed over its runs since since}}`` from the
    ``profile_*_s`` metadata entries the assets record (a run that materializes several
    partitions records the same step's profile on each: it is counted once per run)."""
    import dagster as dg

    profiles: dict[str, dict[str, float]] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for key in instance.get_asset_keys():
            records = instance.fetch_materializations(key, limit=10_000).records
            seen: set[str] = set()
            for record in records:
                if record.timestamp < since or record.run_id in seen:
                    continue
                seen.add(record.run_id)
                metadata = record.asset_materialization.metadata if record.asset_materialization else {}
                for name, value in metadata.items():
                    if name.startswith("profile_") and name.endswith("_s"):
                        number = getattr(value, "value", value)
                        if isinstance(number, (int, float)):
                            bucket = profiles.setdefault(key.to_user_string(), {})
                            bucket[name] = round(bucket.get(name, 0.0) + float(number), 3)
    return profiles


def _cpu_at(samples: list[tuple[float, float]], when: float) -> float:
    """The tree's CPU seconds at ``when``, interpolated between the two nearest samples."""
    times = [t for t, _ in samples]
    i = bisect.bisect_left(times, when)
    if i <= 0:
        return samples[0][1]
    if i >= len(samples):
        return samples[-1][1]
    (t0, c0), (t1, c1) = samples[i - 1], samples[i]
    return c0 + (c1 - c0) * ((when - t0) / (t1 - t0) if t1 > t0 else 0.0)


def step_cores(runs: list[dict], samples: list[tuple[float, float]]) -> dict[str, float]:
    """Per step (partitions summed): CPU seconds of the process tree during the step / its seconds,
    i.e. how many cores it kept busy on average."""
    if len(samples) < 2:
        return {}
    cpu: dict[str, float] = {}
    wall: dict[str, float] = {}
    for run in runs:
        for step, (begin, end) in run.get("step_spans", {}).items():
            name = step
            cpu[name] = cpu.get(name, 0.0) + _cpu_at(samples, end) - _cpu_at(samples, begin)
            wall[name] = wall.get(name, 0.0) + end - begin
    return {name: round(cpu[name] / wall[name], 2) for name in cpu if wall[name] >= 0.5}


def step_peaks(runs: list[dict], samples: list[tuple[float, int]]) -> dict[str, float]:
    """Per step: the largest PSS (MiB) of the process tree sampled while it ran (0.2 s polls)."""
    peaks: dict[str, float] = {}
    for run in runs:
        for step, (begin, end) in run.get("step_spans", {}).items():
            inside = [pss for when, pss in samples if begin <= when <= end]
            if inside:
                peaks[step] = max(peaks.get(step, 0.0), round(max(inside) / 2**20, 1))
    return peaks


def run_measured(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict:
    """Run ``command`` once; its wall time, the memory of its process tree and its Dagster runs."""
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
    until = time.time()
    if process.returncode != 0:
        text = log.read_text(errors="replace")
        raise SystemExit(f"command failed ({process.returncode}): {' '.join(command)}\n{text[-4000:]}")
    runs = run_timings(Path(env["DAGSTER_HOME"]), since, until)
    profiles = step_profiles(Path(env["DAGSTER_HOME"]), since)
    compute = sum(sum(run["steps_s"].values()) for run in runs)
    cores = step_cores(runs, memory.cpu)
    peaks = step_peaks(runs, memory.pss)
    in_runs = sum((run["end"] or run["start"] or 0) - (run["start"] or 0) for run in runs) - compute
    startup = (runs[0]["created"] - since) if runs else 0.0
    return {
        "command": " ".join([Path(command[0]).name, *command[1:]]),
        "wall_s": round(wall, 2),
        "compute_s": round(compute, 2),
        "overhead_s": round(wall - compute, 2),
        "startup_s": round(startup, 2),
        "in_runs_s": round(in_runs, 2),
        "between_runs_s": round(wall - compute - startup - in_runs, 2),
        "runs": len(runs),
        "steps": sum(len(run["steps_s"]) for run in runs),
        "peak_tree_rss_mib": round(memory.peak_tree / 2**20, 1),
        "peak_tree_pss_mib": round(memory.peak_tree_pss / 2**20, 1),
        "peak_process_rss_mib": round(max(memory.peak_single, usage.ru_maxrss * 1024) / 2**20, 1),
        "max_processes": memory.max_processes,
        "profiles": profiles,
        "cores": cores,
        "step_peak_mib": peaks,
        "run_details": [{**run, "steps_s": {k: round(v, 2) for k, v in run["steps_s"].items()}} for run in runs],
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench(n: int, work: Path, clip: Path, clip_name: str, image_size: int) -> dict:
    data, home, models = work / f"data-{n}", work / f"dagster-home-{n}", work / f"models-{n}"
    for folder in (data, home, models):
        shutil.rmtree(folder, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "FACESTATS_DATA_ROOT": str(data),
        "FACESTATS_MODEL_ROOT": str(models),
        "FACESTATS_CLIP_MODEL": str(clip),
        "FACESTATS_COMPOSITES_CONFIG": str(REPO / "config" / "composites.yaml"),
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

    command = [str(BIN / "facestats"), "update"]
    print(f"[N={n}] $ facestats update  (log: {logs / 'update.log'})", flush=True)
    row = run_measured(command, env, REPO, logs / "update.log")
    print(f"[N={n}]   wall {row['wall_s']} s, compute {row['compute_s']} s in {row['steps']} steps of "
          f"{row['runs']} runs", flush=True)
    raw_files = sum(1 for p in (data / "raw").rglob("*") if p.is_file())
    import polars as pl

    from facestats_core.io.layout import Layout

    faces = pl.read_parquet(Layout.from_roots(data, models).artifact("embeddings_clip"), columns=["face_id"]).height
    load = os.getloadavg()
    embed = sum(seconds for run in row["run_details"] for step, seconds in run["steps_s"].items()
                if step.startswith("embedding_shards"))
    return {
        "n_demo_images": n,
        "raw_files": raw_files,
        "faces_embedded": faces,
        "image_size": image_size,
        "clip": clip_name,
        "shards": int(env.get("FACESTATS_SHARDS") or 4),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average_after": [round(x, 2) for x in load],
        "generate_demo_s": round(generate_s, 1),
        "embed_s": round(embed, 2),
        **row,
    }


def print_tables(results: list[dict]) -> None:
    ns = [result["n_demo_images"] for result in results]
    header = "| | " + " | ".join(f"N={n:,}" for n in ns) + " |\n|---|" + "---:|" * len(ns)
    print("\n### `facestats update`: wall time, compute (sum of step times) and overhead, seconds\n")
    print(header)
    for key, label in [("wall_s", "**wall**"), ("compute_s", "compute (steps)"), ("overhead_s", "overhead"),
                       ("startup_s", "  start-up: process, imports, definitions, instance"),
                       ("in_runs_s", "  in runs, outside steps"),
                       ("between_runs_s", "  other: creating runs, registering specs, exit")]:
        print(f"| {label} | " + " | ".join(f"{r[key]:.1f}" for r in results) + " |")
    print("| wall / compute | " + " | ".join(f"{r['wall_s'] / r['compute_s']:.2f}" for r in results) + " |")
    print("| runs / steps | " + " | ".join(f"{r['runs']} / {r['steps']}" for r in results) + " |")
    print("| peak memory: tree PSS / largest process RSS | " + " | ".join(
        f"{r['peak_tree_pss_mib']:,.0f} / {r['peak_process_rss_mib']:,.0f} MiB" for r in results) + " |")
    print("\n### Per Dagster step: s from STEP_START to STEP_SUCCESS (asset checks run inside their asset's "
          "step), share of compute, faces/s, cores kept busy (CPU s / s), peak PSS of the process tree during "
          "the step\n")
    print(header.replace("| |", "| step |", 1))
    steps: list[str] = []
    for result in results:
        for run in result["run_details"]:
            steps += [step for step in run["steps_s"] if step not in steps]
    for step in sorted(steps, key=lambda name: -sum(step_seconds(r, name) for r in results)):
        cells = []
        for r in results:
            seconds = step_seconds(r, step)
            rate = r["faces_embedded"] / seconds if seconds > 0 else float("inf")
            cores = r.get("cores", {}).get(step)
            busy = f", {cores:.1f} cores" if cores is not None else ""
            peak = r.get("step_peak_mib", {}).get(step)
            busy += f", {peak:,.0f} MiB" if peak is not None else ""
            cells.append(f"{seconds:.1f} ({100 * seconds / r['compute_s']:.0f} %, {rate:,.0f} f/s{busy})")
        print(f"| {step} | " + " | ".join(cells) + " |")
    print()
    keys = sorted({(asset, name) for r in results for asset, profile in r.get("profiles", {}).items()
                   for name in profile})
    if keys:
        print("\n### Inside the steps (profile_*_s metadata, s summed over runs)\n")
        print(header.replace("| |", "| asset: part |", 1))
        for asset, name in keys:
            cells = [f"{r.get('profiles', {}).get(asset, {}).get(name, 0.0):.1f}" for r in results]
            print(f"| {asset}: {name[len('profile_'):-2]} | " + " | ".join(cells) + " |")
        print()
    for result in results:
        print(f"N={result['n_demo_images']:,}: {result['raw_files']} raw files ({result['image_size']} px), "
              f"{result['faces_embedded']} faces found and embedded, "
              f"CLIP {result['clip']} (random weights), {result['shards']} shards, {result['cpus']} CPUs "
              f"({result['cpu_model']}), load average after {result['load_average_after']}; demo generation "
              f"{result['generate_demo_s']} s (not included)")
    print()
    for result in results:
        embed = result["embed_s"]
        print(f"summary: images={result['n_demo_images']} faces={result['faces_embedded']} "
              f"wall_s={result['wall_s']:.1f} embed_s={embed:.1f} "
              f"wall_over_embed={result['wall_s'] / embed if embed else float('inf'):.2f} "
              f"faces_per_s={result['faces_embedded'] / result['wall_s']:.2f} "
              f"peak_mib={result['peak_tree_pss_mib']:.0f}")


def step_seconds(result: dict, step: str) -> float:
    """Seconds of ``step`` summed over the runs of one measurement."""
    return sum(run["steps_s"].get(step, 0.0) for run in result["run_details"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[3000], help="demo images per measurement (default 3000)")
    parser.add_argument("--clip", choices=sorted(CLIP_PRESETS), default="vit-b32",
                        help="random CLIP architecture: vit-b32 (real ViT-B/32 size, default) or small")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--size", type=int, default=256, help="side of the demo images (make demo: 256)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="facestats-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / f"clip-{args.clip}-random"
    if not (clip / "config.json").exists():
        subprocess.run([str(BIN / "facestats"), "build-clip", "--preset", CLIP_PRESETS[args.clip], "--out",
                        str(clip)], check=True, capture_output=True)
    results = []
    try:
        for n in args.n:
            results.append(bench(n, work, clip, args.clip, args.size))
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
