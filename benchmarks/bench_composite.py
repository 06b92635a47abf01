"""Composite methods compared on demo faces: sharpness of warp vs eyes vs none, time and peak memory.

Usage: python benchmarks/bench_composite.py [--root DIR] [--n-images 1000] [--image-size 256]
                                            [--size 256] [--counts 25,100,1000] [--memory 1000,10000]
                                            [--out DIR]

Generates the synthetic demo set with its 68-point landmark truth (``generate_demo_dataset``,
timed; reused when ``--root`` already holds it). For each count k in ``--counts`` it builds the
composite of the first k faces by each method (``none``: centred square, ``eyes``: similarity on the
eye centres, ``warp``: piecewise-affine onto the mean shape) from the same raw images at ``--size``
and reports the variance of the Laplacian inside the mean shape's face hull. For each count in
``--memory`` it runs a fresh subprocess that builds one warped composite and reports wall time,
tracemalloc peak and ru_maxrss; counts above ``--n-images`` reuse the images cyclically with
landmarks jittered (sd 1 px, seeded) so every member is a different warp. The last line is
``summary: warp_over_eyes_sharpness=<ratio at 100> peak_mb_1000=<MiB> peak_mb_10000=<MiB>``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facestats_core.composites.warped import Member, WarpSettings, composite_from_members
from facestats_core.faces.landmarks68 import read_landmarks68_csv
from facestats_core.images.preprocess import laplacian_variance
from facestats_demo.faces import DemoSpec, generate_demo_dataset


class DemoMembers:
    """``count`` members over the demo faces, cycling with jittered landmarks; re-iterable, lazy."""

    def __init__(self, root: Path, count: int) -> None:
        self.raw = root / "raw"
        self.landmarks = read_landmarks68_csv(root / "labels" / "demo_truth.csv")
        self.files = sorted(self.landmarks)
        self.count = count

    def __iter__(self) -> Iterator[Member]:
        for i in range(self.count):
            cycle, k = divmod(i, len(self.files))
            points = self.landmarks[self.files[k]]
            if cycle:
                points = points + np.random.default_rng((cycle, k)).normal(0.0, 1.0, points.shape)
            yield Member(f"{i:06d}", self.raw / self.files[k], points)


def _ensure_demo(root: Path, n_images: int, image_size: int) -> float:
    truth = root / "labels" / "demo_truth.csv"
    if truth.exists() and len(read_landmarks68_csv(truth)) >= n_images:
        return 0.0
    started = time.perf_counter()
    generate_demo_dataset(root, DemoSpec(n_images=n_images, size=image_size))
    return time.perf_counter() - started


def _sharpness(root: Path, counts: list[int], size: int, out: Path | None) -> dict[int, dict[str, float]]:
    settings = WarpSettings(size=size)
    table: dict[int, dict[str, float]] = {}
    for count in counts:
        members = list(DemoMembers(root, count))
        warped = composite_from_members(members, "warp", settings)
        row: dict[str, float] = {}
        for method in ("none", "eyes", "warp"):
            started = time.perf_counter()
            built = warped if method == "warp" else composite_from_members(members, method, settings)
            seconds = time.perf_counter() - started if method != "warp" else float("nan")
            row[method] = laplacian_variance(built.image, mask=warped.face_mask)
            row[f"{method}_s"] = seconds
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                built.image.save(out / f"{method}_{count}.png")
        table[count] = row
        print(f"{count:>6} faces  sharpness in face hull: none {row['none']:8.1f}  eyes {row['eyes']:8.1f}  "
              f"warp {row['warp']:8.1f}  warp/eyes {row['warp'] / row['eyes']:.2f}  warp/none "
              f"{row['warp'] / row['none']:.2f}", flush=True)
    return table


def _memory_child(root: Path, count: int, size: int) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    built = composite_from_members(DemoMembers(root, count), "warp", WarpSettings(size=size))
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"count": count, "used": len(built.used), "seconds": seconds, "peak_mib": peak / 2**20,
                      "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _memory(root: Path, counts: list[int], size: int) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}
    for count in counts:
        command = [sys.executable, __file__, "--root", str(root), "--size", str(size), "--child", str(count)]
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[count] = json.loads(line)
        r = results[count]
        print(f"{count:>6} faces  warp {r['seconds']:7.1f} s ({1000 * r['seconds'] / count:.1f} ms/face)  "
              f"tracemalloc peak {r['peak_mib']:6.1f} MiB  maxrss {r['maxrss_mib']:6.1f} MiB", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/facestats_bench_composite"))
    parser.add_argument("--n-images", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--counts", default="25,100,1000")
    parser.add_argument("--memory", default="1000,10000")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _memory_child(args.root, args.child, args.size)
        return
    generated = _ensure_demo(args.root, args.n_images, args.image_size)
    if generated:
        print(f"generated {args.n_images} demo faces of {args.image_size} px in {generated:.1f} s", flush=True)
    counts = [int(c) for c in args.counts.split(",") if c]
    sharp = _sharpness(args.root, counts, args.size, args.out)
    memory = _memory(args.root, [int(c) for c in args.memory.split(",") if c], args.size)
    ratio = sharp[100]["warp"] / sharp[100]["eyes"] if 100 in sharp else float("nan")
    peaks = {c: memory[c]["peak_mib"] if c in memory else float("nan") for c in (1000, 10000)}
    print(f"summary: warp_over_eyes_sharpness={ratio:.2f} peak_mb_1000={peaks[1000]:.1f} "
          f"peak_mb_10000={peaks[10000]:.1f}")


if __name__ == "__main__":
    main()
