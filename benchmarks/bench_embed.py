"""Embedding throughput: the naive loop, FaceStats' default path and the fastest path, against the roofline.

Builds the real ViT-B/32 CLIP architecture from a ``CLIPConfig`` (random
weights, same FLOPs as openai/clip-vit-base-patch32), saves it and loads it
through ``load_clip`` like a real model, writes N preprocessed-size JPEGs to
disk, then measures in one run:

* the matmul roofline: GFLOP/s of a ViT-B/32-shaped GEMM at each precision
  ÷ 8.82 GFLOP per image (the best round);
* the loader alone: decode + resize + crop to uint8 (``pixels.decode_batch``) on one
  thread, images/s;
* the naive loop of the original notebooks: CLIP's image processor + one
  fp32 forward per image;
* every candidate path (``CANDIDATES``: torch fp32 eager, bf16 eager, bf16 compiled and, when the
  ``openvino`` extra is installed, OpenVINO bf16 and int8 calibrated on 128 of the images), end to end with ``embed_paths`` from
  JPEG files to L2-normalised embeddings, and the model's share of that time;
  each candidate's embeddings are compared (cosine) with fp32 eager's;
* the default path: what ``precision=auto`` and ``compile=auto`` choose on this
  machine for a 10,000-image job (measured once if it equals a candidate);
* the fast path: the candidate with the highest throughput whose minimum cosine
  to fp32 eager is at least ``MIN_COSINE``.

It ends with two lines::

    summary: path=default precision=<p> backend=<b> x_roofline=<r> x_naive=<n> cosine_min=<c>
    summary: path=fast precision=<p> backend=<b> x_roofline=<r> x_naive=<n> cosine_min=<c>

x_roofline is against the GEMM roofline of the path's precision for the default
path, and against the best measured GEMM roofline (bf16 on a CPU with native
bf16) for the fast path. Another backend joins by appending a ``Candidate``
whose ``load`` returns a ``Runner``.

The cores may be shared with other work, so everything is measured in rounds:
the images are split into ``--rounds`` slices and each slice goes through the
GEMM, the naive loop, the loader and every candidate in turn (models loaded,
warmed up and compiled beforehand); rates are totals over the rounds, so each
path sees the same mix of load.

Usage: python benchmarks/bench_embed.py [--n 256] [--batch-size 32] [--candidates torch-fp32-eager,...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_JOB = 10_000
"""The job size the default path is measured for (``compile=auto`` decides on it)."""
MIN_COSINE = 0.999
"""A fast-path candidate must keep every embedding at least this close (cosine) to fp32 eager."""
REFERENCE = "torch-fp32-eager"


def matmul_gflops(precision: str, tokens: int = 3200, width: int = 768, hidden: int = 3072, repeat: int = 12) -> float:
    """Best sustained GFLOP/s of the transformer's MLP-shaped GEMM (tokens × width @ width × hidden)."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(tokens, width, dtype=dtype)
    b = torch.randn(width, hidden, dtype=dtype)
    with torch.inference_mode():
        for _ in range(3):
            a @ b
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(4):
                a @ b
            best = min(best, (time.perf_counter() - start) / 4)
    return 2.0 * tokens * width * hidden / best / 1e9


def write_jpegs(folder: Path, n: int, size: int = 256) -> list[Path]:
    """N distinct face-like JPEGs at the preprocessed size (the demo generator when available)."""
    try:
        from facestats_demo.faces import DemoSpec, generate_demo_dataset

        dataset = generate_demo_dataset(folder, DemoSpec(n_images=n, size=size, seed=0))
        return sorted(Path(dataset.images_dir).glob("*.jpg"))
    except ImportError:
        from PIL import Image

        rng = np.random.default_rng(0)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(n):
            path = folder / f"{i:05d}.jpg"
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path, quality=95)
            paths.append(path)
        return paths


def naive_runner(model_dir: Path) -> Callable[[list[Path]], float]:
    """Seconds for processor(images=one) + model.get_image_features per image, as the notebooks did."""
    import torch
    from PIL import Image
    from transformers import CLIPModel

    try:
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor

    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = Processor.from_pretrained(model_dir)

    def run(paths: list[Path]) -> float:
        start = time.perf_counter()
        for path in paths:
            image = Image.open(path).convert("RGB")
            inputs = processor(images=image, return_tensors="pt")
            with torch.no_grad():
                features = model.get_image_features(**inputs)
            features = getattr(features, "pooler_output", features)
            (features / features.norm(dim=-1, keepdim=True)).numpy()
        return time.perf_counter() - start

    return run


def loader_runner(model_dir: Path, batch_size: int) -> Callable[[list[Path]], float]:
    """Seconds of the loader's own work (read, decode, draft, resize, crop → uint8) on this one thread."""
    from facestats_core.embedding.config import ClipConfig
    from facestats_core.embedding.loader import load_clip
    from facestats_core.embedding.pixels import decode_batch

    clip = load_clip(ClipConfig(model=str(model_dir), precision="fp32", compile=False))

    def run(paths: list[Path]) -> float:
        start = time.perf_counter()
        for first in range(0, len(paths), batch_size):
            decode_batch(paths, range(first, min(first + batch_size, len(paths))), clip.image_size)
        return time.perf_counter() - start

    return run


def uint8_vs_float(model_dir: Path, paths: list[Path], batch_size: int) -> tuple[float, float]:
    """(max abs difference, min cosine) of fp32 eager features from uint8 pixels normalised on the
    model side vs float pixels normalised by ``normalize_pixels`` (one batch)."""
    from facestats_core.embedding.config import ClipConfig
    from facestats_core.embedding.loader import load_clip
    from facestats_core.embedding.pixels import iter_pixel_batches, normalize_pixels
    from facestats_core.embedding.vectors import cosine_rows

    clip = load_clip(ClipConfig(model=str(model_dir), precision="fp32", compile=False))
    _, pixels, _ = next(iter_pixel_batches(paths[:batch_size], clip.image_size, batch_size))
    from_uint8 = clip.tower.embed(pixels)
    from_float = clip.tower.embed(normalize_pixels(pixels, clip.mean, clip.std))
    cosine = cosine_rows(from_uint8, from_float)
    return float(np.abs(from_uint8 - from_float).max()), float(cosine.min())


Runner = Callable[[list[Path]], tuple[np.ndarray, float, float]]
"""Embeds image files: (L2-normalised embeddings in input order, seconds end to end, seconds in the model)."""


@dataclass(frozen=True)
class Candidate:
    name: str
    backend: str
    precision: str
    load: Callable[[Path, list[Path], int], Runner]
    """(model folder, warm-up images, batch size) → a warmed-up runner (loading, compilation done)."""


@dataclass
class Totals:
    images: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    startup_s: float = 0.0
    embeddings: list[np.ndarray] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.images / self.seconds


def torch_load(precision: str, compile: bool) -> Callable[[Path, list[Path], int], Runner]:
    def load(model_dir: Path, warm_up: list[Path], batch_size: int) -> Runner:
        from facestats_core.embedding.config import ClipConfig
        from facestats_core.embedding.embed import embed_paths
        from facestats_core.embedding.loader import load_clip

        clip = load_clip(ClipConfig(model=str(model_dir), precision=precision, compile=compile))  # type: ignore[arg-type]
        embed_paths(clip, warm_up, batch_size=batch_size)  # allocator, kernels and, when compiled, compilation
        compile_error = getattr(clip.tower, "compile_error", None)
        if compile and compile_error:
            print(f"  compilation failed, ran eager: {compile_error}")

        def run(paths: list[Path]) -> tuple[np.ndarray, float, float]:
            result = embed_paths(clip, paths, batch_size=batch_size)
            return result.embeddings, result.seconds, result.model_seconds

        return run

    return load


def torch_candidate(precision: str, compile: bool) -> Candidate:
    return Candidate(f"torch-{precision}-{'compiled' if compile else 'eager'}", "torch", precision,
                     torch_load(precision, compile))


CALIBRATION_FACES = 128
"""Faces the OpenVINO int8 candidate calibrates on (the pipeline uses up to 300; fewer keeps the benchmark short)."""


def openvino_load(precision: str) -> Callable[[Path, list[Path], int], Runner]:
    """The pipeline's OpenVINO path: ``load_clip(backend="openvino")`` + ``embed_paths``; int8 calibrated on
    ``CALIBRATION_FACES`` of the benchmark's own images first (``calibrate_from_paths``, as embedding_shards does)."""
    def load(model_dir: Path, warm_up: list[Path], batch_size: int) -> Runner:
        from facestats_core.embedding.config import ClipConfig
        from facestats_core.embedding.embed import embed_paths
        from facestats_core.embedding.loader import load_clip
        from facestats_core.embedding.openvino_int8 import calibrate_from_paths, needs_calibration

        cache = tempfile.mkdtemp(prefix="facestats-ov-")
        clip = load_clip(ClipConfig(model=str(model_dir), precision=precision, backend="openvino",  # type: ignore[arg-type]
                                    batch_size=batch_size, cache_dir=cache))
        if clip.tower.backend != "openvino":
            raise RuntimeError("the OpenVINO backend is not available (see the warning above)")
        if needs_calibration(clip):
            folder = Path(warm_up[0]).parent
            clip, report = calibrate_from_paths(clip, sorted(folder.glob("*.jpg"))[:CALIBRATION_FACES])
            print(f"  int8 calibration: {report}")
        embed_paths(clip, warm_up, batch_size=batch_size)

        def run(paths: list[Path]) -> tuple[np.ndarray, float, float]:
            result = embed_paths(clip, paths, batch_size=batch_size)
            return result.embeddings, result.seconds, result.model_seconds

        return run

    return load


def _openvino_installed() -> bool:
    from facestats_core.embedding.config import openvino_missing

    return openvino_missing() is None


CANDIDATES: list[Candidate] = [
    torch_candidate("fp32", False),  # the reference for cosine_min
    torch_candidate("bf16", False),
    torch_candidate("bf16", True),
]
if _openvino_installed():
    CANDIDATES += [Candidate("openvino-bf16", "openvino", "bf16", openvino_load("bf16")),
                   Candidate("openvino-int8", "openvino", "int8", openvino_load("int8"))]


def default_candidate() -> Candidate:
    """What ``precision=auto`` and ``compile=auto`` run on this machine for a ``DEFAULT_JOB``-image job."""
    from facestats_core.embedding.config import auto_precision, should_compile

    precision = auto_precision("cpu")
    return torch_candidate(precision, should_compile("auto", DEFAULT_JOB))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="images for the batched paths")
    parser.add_argument("--naive-n", type=int, default=48, help="images for the naive loop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="slices of the images, each through every path")
    parser.add_argument("--candidates", default="", help=f"comma-separated names (default: all of "
                        f"{', '.join(c.name for c in CANDIDATES)}; {REFERENCE} and the default are always measured)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    from facestats_core.embedding.config import COMPILE_MIN_IMAGES, cpu_flags
    from facestats_core.embedding.vectors import cosine_rows
    from facestats_demo.random_clip import build_random_clip, vit_b32_flops_per_image

    if args.threads:
        torch.set_num_threads(args.threads)
    wanted = {REFERENCE, *filter(None, args.candidates.split(","))} if args.candidates else None
    candidates = [c for c in CANDIDATES if wanted is None or c.name in wanted]
    default = default_candidate()
    if default.name not in {c.name for c in candidates}:
        candidates.append(default)
    flops = vit_b32_flops_per_image()
    native = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus, "
          f"native bf16 flags: {', '.join(native) or 'none'}")
    print(f"ViT-B/32 image tower: {flops / 1e9:.2f} GFLOP per image")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = build_random_clip(tmp_path / "vit-b-32", preset="vit-b-32", seed=0)
        paths = write_jpegs(tmp_path / "images", args.n)
        diff, cosine = uint8_vs_float(model_dir, paths, args.batch_size)
        print(f"uint8 pixels normalised in the model vs float pixels (fp32 eager): max abs diff {diff:.2e}, "
              f"min cosine {cosine:.7f}")

        naive, loader = naive_runner(model_dir), loader_runner(model_dir, args.batch_size)
        naive([paths[0]])  # warm-up
        runners: dict[str, Runner] = {}
        totals = {c.name: Totals() for c in candidates}
        for candidate in candidates:
            started = time.perf_counter()
            runners[candidate.name] = candidate.load(model_dir, paths[: args.batch_size], args.batch_size)
            totals[candidate.name].startup_s = time.perf_counter() - started
            print(f"[{candidate.name}] load + warm-up batch {totals[candidate.name].startup_s:.1f} s", flush=True)

        gflops = {"fp32": 0.0, "bf16": 0.0}
        naive_s = loader_s = 0.0
        naive_n = 0
        slices = [list(part) for part in np.array_split(np.array(paths, dtype=object), args.rounds)]
        naive_slices = [list(part) for part in np.array_split(np.array(paths[: args.naive_n], dtype=object),
                                                              args.rounds)]
        for round_, (part, naive_part) in enumerate(zip(slices, naive_slices, strict=True), start=1):
            for precision in gflops:
                gflops[precision] = max(gflops[precision], matmul_gflops(precision))
            naive_s += naive(naive_part)
            naive_n += len(naive_part)
            loader_s += loader(part)
            for candidate in candidates:
                embeddings, seconds, model_seconds = runners[candidate.name](part)
                total = totals[candidate.name]
                total.images += len(part)
                total.seconds += seconds
                total.model_seconds += model_seconds
                total.embeddings.append(embeddings)
            print(f"round {round_}/{args.rounds}: " + ", ".join(
                f"{name} {t.rate:.1f}" for name, t in totals.items()) + " images/s so far", flush=True)

        naive_rate = naive_n / naive_s
        roofline = {precision: rate * 1e9 / flops for precision, rate in gflops.items()}
        best_roofline = max(roofline, key=roofline.__getitem__)
        for precision in gflops:
            print(f"roofline {precision}: matmul {gflops[precision]:.1f} GFLOP/s -> {roofline[precision]:.2f} images/s")
        print(f"naive loop (processor + 1 forward per image, fp32, {naive_n} images): {naive_rate:.2f} images/s")
        print(f"loader alone (decode + resize + crop to uint8, 1 thread, {len(paths)} images): "
              f"{len(paths) / loader_s:.1f} images/s")
        reference = np.concatenate(totals[REFERENCE].embeddings)
        cosine_min: dict[str, float] = {}
        for candidate in candidates:
            total = totals[candidate.name]
            cosine_min[candidate.name] = float(cosine_rows(np.concatenate(total.embeddings), reference).min())
            own = candidate.precision if candidate.precision in roofline else best_roofline  # int8: bf16's
            print(
                f"[{candidate.name}] end to end {total.rate:.2f} images/s (batch {args.batch_size}, model "
                f"{total.model_seconds / total.seconds:.0%} of time, model alone "
                f"{total.images / total.model_seconds:.1f} images/s) | {total.rate / roofline[own]:.2f} x {own} "
                f"roofline, {total.rate / naive_rate:.2f} x naive | cosine to fp32 eager min "
                f"{cosine_min[candidate.name]:.5f}"
            )
        print(f"default = {default.name} (precision=auto, compile=auto for {DEFAULT_JOB} images; compiles from "
              f"{COMPILE_MIN_IMAGES} images on)")
        eligible = [c for c in candidates if cosine_min[c.name] >= MIN_COSINE]
        fast = max(eligible, key=lambda c: totals[c.name].rate)
        print(f"fast = {fast.name} (highest throughput with cosine_min >= {MIN_COSINE}; "
              f"roofline: {best_roofline}, the best measured GEMM rate)")
        for label, candidate, against in (("default", default, default.precision), ("fast", fast, best_roofline)):
            total = totals[candidate.name]
            print(
                f"summary: path={label} precision={candidate.precision} backend={candidate.backend} "
                f"x_roofline={total.rate / roofline[against]:.2f} x_naive={total.rate / naive_rate:.2f} "
                f"cosine_min={cosine_min[candidate.name]:.5f}"
            )


if __name__ == "__main__":
    main()
