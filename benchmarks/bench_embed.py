"""Embedding throughput: FaceStats' batched path vs the matmul roofline and the naive loop.

Builds the real ViT-B/32 CLIP architecture from a ``CLIPConfig`` (random
weights, same FLOPs as openai/clip-vit-base-patch32), saves it and loads it
through ``load_clip`` like a real model, writes N preprocessed-size JPEGs to
disk, then measures in one run:

* the matmul roofline: GFLOP/s of a ViT-B/32-shaped GEMM at the chosen
  precision ÷ 8.82 GFLOP per image;
* end to end: ``embed_paths`` from JPEG files to L2-normalised embeddings;
* the naive loop of the original notebooks: CLIP's image processor + one
  forward per image;
* for bf16, the cosine similarity of its embeddings to fp32's.

Usage: python benchmarks/bench_embed.py [--n 256] [--batch-size 64] [--precision fp32|bf16|both]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


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


def end_to_end(
    model_dir: Path, paths: list[Path], precision: str, batch_size: int, compile: bool
) -> tuple[float, float, np.ndarray]:
    """(images/s end to end, share of time in the model, embeddings) for FaceStats' path."""
    from facestats_core.embedding.clip import ClipConfig, embed_paths, load_clip

    config = ClipConfig(model=str(model_dir), precision=precision, compile=compile)  # type: ignore[arg-type]
    clip = load_clip(config)
    started = time.perf_counter()
    embed_paths(clip, paths[:batch_size], batch_size=batch_size)  # warm-up: allocator, kernels, compilation
    if compile:
        print(f"  torch.compile warm-up: {time.perf_counter() - started:.1f} s")
    result = embed_paths(clip, paths, batch_size=batch_size)
    return len(paths) / result.seconds, result.model_seconds / result.seconds, result.embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="images for the batched path")
    parser.add_argument("--naive-n", type=int, default=48, help="images for the naive loop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", choices=["fp32", "bf16", "both"], default="both")
    parser.add_argument("--compile", choices=["no", "yes", "both"], default="both", help="torch.compile variants")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    from facestats_demo.random_clip import build_random_clip, vit_b32_flops_per_image

    if args.threads:
        torch.set_num_threads(args.threads)
    flops = vit_b32_flops_per_image()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus")
    print(f"ViT-B/32 image tower: {flops / 1e9:.2f} GFLOP per image")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = build_random_clip(tmp_path / "vit-b-32", preset="vit-b-32", seed=0)
        paths = write_jpegs(tmp_path / "images", args.n)
        naive = naive_loop(model_dir, paths[: args.naive_n])
        print(f"naive loop (processor + 1 forward per image, fp32): {naive:.2f} images/s")
        precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
        compiles = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
        embeddings: dict[str, np.ndarray] = {}
        for precision in precisions:
            gflops = matmul_gflops(precision)
            roofline = gflops * 1e9 / flops
            for compile in compiles:
                rate, model_share, embeddings[precision] = end_to_end(
                    model_dir, paths, precision, args.batch_size, compile
                )
                label = f"{precision}{' compiled' if compile else ' eager'}"
                print(
                    f"[{label}] matmul {gflops:.1f} GFLOP/s -> roofline {roofline:.2f} images/s | "
                    f"end to end {rate:.2f} images/s (batch {args.batch_size}, model {model_share:.0%} of time)"
                    f" | {rate / roofline:.2f} x roofline, {rate / naive:.2f} x naive",
                    flush=True,
                )
        if len(embeddings) == 2:
            cosine = (embeddings["fp32"] * embeddings["bf16"]).sum(axis=1)
            print(f"bf16 vs fp32 cosine: mean {cosine.mean():.5f}, min {cosine.min():.5f}")


if __name__ == "__main__":
    main()
