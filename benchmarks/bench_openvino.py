"""Model-only throughput of the CLIP image tower: torch fp32 / bf16 (eager, optionally compiled) vs
OpenVINO bf16 / int8, at ViT-B/32 size, with each path's cosine to torch fp32.

Builds the real ViT-B/32 architecture with random weights (``build_random_clip``, as
``bench_embed.py`` does), decodes demo faces once to float32 pixels, then times only the forward
passes (the loaded CLIP's ``tower.embed``: torch or OpenVINO) on pre-decoded batches. The rounds are
interleaved across the paths (round 1 of every path, then round 2 …) so load from other jobs
hits all of them alike; the median round is reported. int8 is calibrated on ``--calibration``
faces and its cosine is measured on those and on ``--eval`` other faces. Random weights lack a
trained CLIP's activation outlier channels: int8 accuracy on a real CLIP must be measured again.

Usage: python benchmarks/bench_openvino.py [--batch-sizes 32 64] [--images 128] [--rounds 3] [--compile]
       [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def face_pixels(folder: Path, n: int, image_size: int, mean, std, seed: int) -> np.ndarray:
    from PIL import Image

    from facestats_core.embedding.pixels import clip_pixels
    from facestats_demo.faces import DemoSpec, generate_demo_dataset

    dataset = generate_demo_dataset(folder, DemoSpec(n_images=n, size=256, seed=seed))
    paths = sorted(Path(dataset.images_dir).glob("*.jpg"))[:n]
    return np.stack([clip_pixels(Image.open(p).convert("RGB"), image_size, mean, std) for p in paths])


@dataclass
class Candidate:
    """An OpenVINO path to time: ``forward(float32 pixels (n, 3, H, W)) -> features (n, dim)``."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    info: dict[str, Any]


def openvino_candidate(
    model_dir: Path,
    precision: str,
    batch_size: int,
    calibration: list[np.ndarray],
    cache_dir: Path,
) -> Candidate:
    """The pipeline's OpenVINO tower of ``model_dir`` (``load_clip`` with ``backend="openvino"``:
    conversion or cache, compile); int8 calibrated on ``calibration`` (float32 pixel batches) first.
    ``info`` holds the label, the IR folder, whether it was converted, the load seconds and the int8 report."""
    from facestats_core.embedding.config import ClipConfig
    from facestats_core.embedding.loader import load_clip
    from facestats_core.embedding.openvino_int8 import quantize_int8

    started = time.perf_counter()
    config = ClipConfig(model=str(model_dir), precision=precision, backend="openvino",  # type: ignore[arg-type]
                        batch_size=batch_size, cache_dir=str(cache_dir), local_files_only=True)
    loaded = load_clip(config)
    if loaded.tower.backend != "openvino":
        raise RuntimeError("OpenVINO backend unavailable (see the warning above)")
    report: dict[str, Any] = dict(loaded.tower.int8_report)
    if precision == "int8" and loaded.tower.pending_int8:
        loaded, report = quantize_int8(loaded, calibration)
    tower = loaded.tower
    info = {"label": tower.label, "ir_dir": str(tower.ir_dir), "converted": tower.converted,
            "load_seconds": round(time.perf_counter() - started, 2), "int8": report}
    return Candidate(f"OpenVINO {tower.label}", tower.embed, info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--images", type=int, default=128, help="images per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=300, help="faces int8 is calibrated on")
    parser.add_argument("--eval", type=int, default=128, help="other faces the cosines are measured on")
    parser.add_argument("--compile", action="store_true", help="also torch bf16 with torch.compile")
    parser.add_argument("--cache-dir", default="", help="keep the converted / calibrated IR here between runs "
                        "(the seeded random model is the same each run)")
    parser.add_argument("--skip", nargs="*", default=[], help="paths to leave out, e.g. 'torch fp32'")
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_embed import matmul_gflops

    from facestats_core.embedding.config import ClipConfig, openvino_has_bf16
    from facestats_core.embedding.loader import load_clip
    from facestats_core.embedding.vectors import cosine_rows
    from facestats_demo.random_clip import build_random_clip, vit_b32_flops_per_image

    flops = vit_b32_flops_per_image()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus, "
          f"OpenVINO bf16 on this CPU: {openvino_has_bf16()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = build_random_clip(tmp_path / "vit-b-32", preset="vit-b-32", seed=0)
        reference = load_clip(ClipConfig(model=str(model_dir), local_files_only=True))
        size, mean, std = reference.image_size, reference.mean, reference.std
        calib = face_pixels(tmp_path / "calib", args.calibration, size, mean, std, seed=1)
        evals = face_pixels(tmp_path / "eval", max(args.eval, args.images), size, mean, std, seed=2)
        timed = evals[: args.images]
        paths: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        paths["torch fp32"] = reference.tower.embed
        bf16 = load_clip(ClipConfig(model=str(model_dir), precision="bf16", local_files_only=True))
        paths["torch bf16"] = bf16.tower.embed
        if args.compile:
            compiled = load_clip(ClipConfig(model=str(model_dir), precision="bf16", compile=True,
                                            local_files_only=True))
            paths["torch bf16 compiled"] = compiled.tower.embed
        cache = Path(args.cache_dir) if args.cache_dir else tmp_path / "ov-cache"
        reports = {}
        for batch in args.batch_sizes:
            for precision in ("bf16", "int8"):
                started = time.perf_counter()
                candidate = openvino_candidate(model_dir, precision, batch, [calib], cache_dir=cache)
                print(f"{candidate.name} batch {batch}: ready in {time.perf_counter() - started:.1f} s "
                      f"(converted: {candidate.info['converted']}) {candidate.info['int8'] or ''}", flush=True)
                paths[f"OpenVINO {precision} @{batch}"] = candidate.forward
                reports[precision] = candidate.info

        def runs(name: str) -> list[int]:
            return [int(name.rsplit("@", 1)[1])] if "@" in name else args.batch_sizes

        paths = {k: v for k, v in paths.items() if k.split(" @")[0] not in args.skip}
        times: dict[tuple[str, int], list[float]] = {}
        for name, forward in paths.items():  # warm-up (and torch.compile) per batch size
            for batch in runs(name):
                forward(timed[:batch])
        rooflines = []
        for _ in range(args.rounds):  # the roofline is measured in every round too: other jobs share the cores
            rooflines.append(matmul_gflops("bf16", repeat=4) * 1e9 / flops)
            for name, forward in paths.items():
                for batch in runs(name):
                    start = time.perf_counter()
                    for i in range(0, len(timed), batch):
                        forward(timed[i : i + batch])
                    times.setdefault((name.split(" @")[0], batch), []).append(time.perf_counter() - start)
        roofline = statistics.median(rooflines)
        fp32 = reference.tower.embed(evals[: args.eval])
        print(f"\nbf16 matmul roofline {roofline:.1f} images/s (rounds: {', '.join(f'{r:.1f}' for r in rooflines)})")
        print(f"model only, {args.images} images per round, median of {args.rounds} interleaved rounds")
        print("| path | batch | images/s | × torch fp32 | × bf16 roofline | cosine to fp32 mean / min |")
        print("|---|---:|---:|---:|---:|---|")
        base = {b: args.images / statistics.median(times[("torch fp32", b)]) for b in args.batch_sizes
                if ("torch fp32", b) in times}
        for (name, batch), rounds in times.items():
            rate = args.images / statistics.median(rounds)
            forward = paths[name if name.startswith("torch") else f"{name} @{batch}"]
            out = np.concatenate([forward(evals[i : i + batch]) for i in range(0, args.eval, batch)])
            cosine = cosine_rows(out, fp32)
            ratio = f"{rate / base[batch]:.2f}" if batch in base else "-"
            print(f"| {name} | {batch} | {rate:.1f} | {ratio} | {rate / roofline:.2f} | "
                  f"{cosine.mean():.5f} / {cosine.min():.5f} |", flush=True)
        if "int8" in reports:
            print(f"int8 on its calibration faces: {reports['int8']['int8']}")


if __name__ == "__main__":
    main()
