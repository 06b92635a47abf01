"""The CUDA path of the embedding step, checked on a machine with an NVIDIA GPU (CI has none).

For the shipped demo CLIP (``facestats_demo/demo_clip``: trained weights and a tokenizer) and the real
ViT-B/32 architecture with random weights (``build_random_clip``), each loaded through ``load_clip`` as
a user's model is:

* image embeddings of N demo face photos on ``cuda`` in fp32 and in bf16 (``precision=auto`` picks bf16
  on a GPU with native bf16) against fp32 on the CPU: the smallest cosine per path;
* text features (``encode_texts``, the zero-shot prompts) on ``cuda`` against the CPU;
* images/s of ``embed_paths`` on the GPU (decode + resize on the CPU included; the model's share apart).

It exits with status 1 when an embedding strays (cosine below 0.9999 in fp32, 0.99 in bf16) and with 2 when
no CUDA device is visible. Usage: ``python benchmarks/check_cuda.py [--n 512] [--batch-size 128]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

THRESHOLDS = {"fp32": 0.9999, "bf16": 0.99}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=512, help="demo face photos to embed")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    import torch

    from bench_embed import write_jpegs
    from facestats_core.embedding.config import ClipConfig
    from facestats_core.embedding.embed import embed_paths
    from facestats_core.embedding.loader import load_clip
    from facestats_core.embedding.text import encode_texts
    from facestats_core.embedding.vectors import cosine_rows
    from facestats_core.models.prompts import attribute_prompt_sets
    from facestats_demo.random_clip import build_random_clip
    from facestats_demo.train_clip import DEMO_CLIP_DIR

    if not torch.cuda.is_available():
        print("no CUDA device visible: nothing to check")
        return 2
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, "
          f"native bf16: {torch.cuda.is_bf16_supported(including_emulation=False)}")
    prompts = [p for prompt_set in attribute_prompt_sets().values() for group in prompt_set.prompts for p in group]
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp) / "faces", args.n)
        models = {"demo-clip": DEMO_CLIP_DIR,
                  "vit-b-32-random": build_random_clip(Path(tmp) / "vit-b-32", preset="vit-b-32", seed=0)}
        for name, folder in models.items():
            def load(device: str, precision: str):  # type: ignore[no-untyped-def]
                return load_clip(ClipConfig(model=str(folder), device=device, precision=precision,
                                            batch_size=args.batch_size, local_files_only=True, compile="off"))

            cpu = load("cpu", "fp32")
            reference = embed_paths(cpu, paths).embeddings
            has_tokenizer = (Path(folder) / "tokenizer_config.json").is_file()
            text_cpu = encode_texts(cpu, prompts) if has_tokenizer else None
            for precision in ("fp32", "auto"):
                gpu = load("cuda", precision)
                concrete = gpu.tower.precision
                embed_paths(gpu, paths[: args.batch_size])  # warm-up
                torch.cuda.synchronize()
                started = time.perf_counter()
                result = embed_paths(gpu, paths)
                torch.cuda.synchronize()
                seconds = time.perf_counter() - started
                cosine = float(np.min(cosine_rows(result.embeddings, reference)))
                limit = THRESHOLDS[concrete]
                line = (f"{name}: cuda precision={precision} ({concrete}) images={len(paths)} "
                        f"images_per_s={len(paths) / seconds:.0f} model_share={result.model_seconds / seconds:.2f} "
                        f"cosine_min_vs_cpu_fp32={cosine:.6f} (limit {limit})")
                print(line, flush=True)
                if cosine < limit:
                    failures.append(line)
                if text_cpu is not None and precision == "fp32":
                    text_gpu = encode_texts(gpu, prompts)
                    text_cosine = float(np.min(cosine_rows(text_gpu, text_cpu)))
                    text_line = f"{name}: cuda text features of {len(prompts)} prompts, cosine_min_vs_cpu={text_cosine:.6f}"
                    print(text_line, flush=True)
                    if text_cosine < THRESHOLDS["fp32"]:
                        failures.append(text_line)
                del gpu
                torch.cuda.empty_cache()
    print(f"summary: cuda_checks={'failed' if failures else 'passed'} failures={len(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
