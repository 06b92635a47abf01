"""Embedding throughput: the naive loop, FaceStats' default path and the fastest path, against the roofline.

Builds the real ViT-B/32 CLIP architecture from a ``CLIPConfig`` (random
weights, same FLOPs as openai/clip-vit-base-patch32), saves it and loads it
through ``load_clip`` like a real model, writes N preprocessed-size JPEGs to
disk, then measures in one run:

* the matmul roofline: GFLOP/s of a ViT-B/32-shaped GEMM at each precision
  ÷ 8.82 GFLOP per image;
* the loader alone: decode + resize + crop to uint8 (``_decode_batch``) on one
  thread, images/s;
* the naive loop of the original notebooks: CLIP's image processor + one
  fp32 forward per image;
* every candidate path (``CANDIDATES``), end to end with ``embed_paths`` from
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
whose ``run`` returns a ``Measured``.

Usage: python benchmarks/bench_embed.py [--n 256] [--batch-size 32] [--candidates torch-fp32-eager,...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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


def naive_loop(model_dir: Path, paths: list[Path]) -> float:
    """Images/s of processor(images=one) + model.get_image_features per image, as the notebooks did."""
    import torch
    from PIL import Image
    from transformers import CLIPModel

    try:
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor

    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = Processor.from_pretrained(model_dir)
    start = time.perf_counter()
    for path in paths:
        image = Image.open(path).convert("RGB")
        inputs = processor(images=image, return_tensors="pt")
        with torch.no_grad():
            features = model.get_image_features(**inputs)
        features = getattr(features, "pooler_output", features)
        (features / features.norm(dim=-1, keepdim=True)).numpy()
    return len(paths) / (time.perf_counter() - start)


def loader_rate(model_dir: Path, paths: list[Path], batch_size: int) -> float:
    """Images/s of the loader's own work (read, decode, draft, resize, crop → uint8) on this one thread."""
    from facestats_core.embedding.clip import ClipConfig, _decode_batch, load_clip

    clip = load_clip(ClipConfig(model=str(model_dir), precision="fp32", compile=False))
    _decode_batch(paths, range(min(batch_size, len(paths))), clip)  # warm the file cache
    start = time.perf_counter()
    for first in range(0, len(paths), batch_size):
        _decode_batch(paths, range(first, min(first + batch_size, len(paths))), clip)
    return len(paths) / (time.perf_counter() - start)


def uint8_vs_float(model_dir: Path, paths: list[Path], batch_size: int) -> tuple[float, float]:
    """(max abs difference, min cosine) of fp32 eager features from uint8 pixels normalised on the
    model side vs float pixels normalised by ``normalize_pixels`` (one batch)."""
    from facestats_core.embedding.clip import (
        ClipConfig,
        forward_batch,
        iter_pixel_batches,
        l2_normalize,
        load_clip,
        normalize_pixels,
    )

    clip = load_clip(ClipConfig(model=str(model_dir), precision="fp32", compile=False))
    _, pixels, _ = next(iter_pixel_batches(paths[:batch_size], clip, batch_size))
    from_uint8 = forward_batch(clip, pixels)
    from_float = forward_batch(clip, normalize_pixels(pixels, clip.mean, clip.std))
    cosine = (l2_normalize(from_uint8) * l2_normalize(from_float)).sum(axis=1)
    return float(np.abs(from_uint8 - from_float).max()), float(cosine.min())


@dataclass
class Measured:
    rate: float
    """images/s end to end (files → normalised embeddings)"""
    model_share: float
    startup_s: float
    """warm-up on one batch: allocator, kernels and, when compiled, compilation"""
    embeddings: np.ndarray


@dataclass(frozen=True)
class Candidate:
    name: str
    backend: str
    precision: str
    run: Callable[[Path, list[Path], int], Measured]


def torch_run(precision: str, compile: bool) -> Callable[[Path, list[Path], int], Measured]:
    def run(model_dir: Path, paths: list[Path], batch_size: int) -> Measured:
        from facestats_core.embedding.clip import ClipConfig, embed_paths, load_clip

        clip = load_clip(ClipConfig(model=str(model_dir), precision=precision, compile=compile))  # type: ignore[arg-type]
        started = time.perf_counter()
        embed_paths(clip, paths[:batch_size], batch_size=batch_size)
        startup = time.perf_counter() - started
        if compile and clip.compile_error:
            print(f"  compilation failed, ran eager: {clip.compile_error}")
        result = embed_paths(clip, paths, batch_size=batch_size)
        return Measured(len(paths) / result.seconds, result.model_seconds / result.seconds, startup, result.embeddings)

    return run


def torch_candidate(precision: str, compile: bool) -> Candidate:
    return Candidate(f"torch-{precision}-{'compiled' if compile else 'eager'}", "torch", precision,
                     torch_run(precision, compile))


CANDIDATES: list[Candidate] = [
    torch_candidate("fp32", False),  # the reference for cosine_min: measured first
    torch_candidate("bf16", False),
    torch_candidate("bf16", True),
]


def default_candidate() -> Candidate:
    """What ``precision=auto`` and ``compile=auto`` run on this machine for a ``DEFAULT_JOB``-image job."""
    from facestats_core.embedding.clip import auto_precision, should_compile

    precision = auto_precision("cpu")
    return torch_candidate(precision, should_compile("auto", DEFAULT_JOB))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="images for the batched paths")
    parser.add_argument("--naive-n", type=int, default=48, help="images for the naive loop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--candidates", default="", help=f"comma-separated names (default: all of "
                        f"{', '.join(c.name for c in CANDIDATES)}; {REFERENCE} is always measured)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    from facestats_core.embedding.clip import cpu_flags
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
    gflops = {precision: matmul_gflops(precision) for precision in ("fp32", "bf16")}
    roofline = {precision: rate * 1e9 / flops for precision, rate in gflops.items()}
    for precision in gflops:
        print(f"roofline {precision}: matmul {gflops[precision]:.1f} GFLOP/s -> {roofline[precision]:.2f} images/s")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = build_random_clip(tmp_path / "vit-b-32", preset="vit-b-32", seed=0)
        paths = write_jpegs(tmp_path / "images", args.n)
        naive = naive_loop(model_dir, paths[: args.naive_n])
        print(f"naive loop (processor + 1 forward per image, fp32, {min(args.naive_n, len(paths))} images): "
              f"{naive:.2f} images/s")
        loader = loader_rate(model_dir, paths, args.batch_size)
        print(f"loader alone (decode + resize + crop to uint8, 1 thread): {loader:.1f} images/s")
        diff, cosine = uint8_vs_float(model_dir, paths, args.batch_size)
        print(f"uint8 pixels normalised in the model vs float pixels (fp32 eager): max abs diff {diff:.2e}, "
              f"min cosine {cosine:.7f}")

        best_roofline = max(roofline, key=roofline.__getitem__)
        measured: dict[str, Measured] = {}
        cosine_min: dict[str, float] = {}
        for candidate in candidates:
            own = candidate.precision if candidate.precision in roofline else best_roofline
            m = measured[candidate.name] = candidate.run(model_dir, paths, args.batch_size)
            cosine_min[candidate.name] = float((m.embeddings * measured[REFERENCE].embeddings).sum(axis=1).min())
            print(
                f"[{candidate.name}] end to end {m.rate:.2f} images/s (batch {args.batch_size}, "
                f"model {m.model_share:.0%} of time, model alone {m.rate / m.model_share:.1f} images/s) | "
                f"{m.rate / roofline[own]:.2f} x {own} roofline, "
                f"{m.rate / naive:.2f} x naive | warm-up batch {m.startup_s:.1f} s | "
                f"cosine to fp32 eager min {cosine_min[candidate.name]:.5f}",
                flush=True,
            )
        from facestats_core.embedding.clip import COMPILE_MIN_IMAGES

        print(f"default = {default.name} (precision=auto, compile=auto for {DEFAULT_JOB} images; compiles from "
              f"{COMPILE_MIN_IMAGES} images on)")
        eligible = [c for c in candidates if cosine_min[c.name] >= MIN_COSINE]
        fast = max(eligible, key=lambda c: measured[c.name].rate)
        print(f"fast = {fast.name} (highest throughput with cosine_min >= {MIN_COSINE}; "
              f"roofline: {best_roofline}, the best measured GEMM rate)")
        for label, candidate, against in (("default", default, default.precision), ("fast", fast, best_roofline)):
            m = measured[candidate.name]
            print(
                f"summary: path={label} precision={candidate.precision} backend={candidate.backend} "
                f"x_roofline={m.rate / roofline[against]:.2f} x_naive={m.rate / naive:.2f} "
                f"cosine_min={cosine_min[candidate.name]:.5f}"
            )


if __name__ == "__main__":
    main()
