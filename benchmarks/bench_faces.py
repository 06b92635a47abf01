"""Face detection and chip extraction throughput, and their share of the image stage with CLIP.

Usage: python benchmarks/bench_faces.py [--repeats 3] [--clip DIR]

Photos: the six-person group photo from the insightface wheel that `make` downloads
(``.venv/fixture-wheels``), resized so its longest side is 640, 1280 and 3000 px (JPEG q90, as a
camera would write them). For each size it times, over ``--repeats`` passes of 8 files,
``detect_manifest`` (decode upright at full resolution + dlib HOG on the copy bounded to
1,600 px + 68 landmarks) and ``chip_manifest`` (decode again + one resample per chip at 224 and
512), then ``embed_manifest`` of the chips with a CLIP (``--clip``; default: a random ViT-B/32
architecture, the real FLOPs). Prints images/s, faces/s and each step's share, and ends with
``summary: detect_ips_640=<> detect_ips_1280=<> detect_ips_3000=<> chips_fps=<> detect_share=<> detect_ips_1280_workers=<>``;
the parallel line compares detection of ``--parallel-copies`` 1,280 px files in one process and in ``--workers``.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import polars as pl
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _group_photo(out: Path) -> Image.Image:
    wheels = sorted((ROOT / ".venv" / "fixture-wheels").glob("insightface-*.whl"))
    if not wheels:
        raise SystemExit("no insightface wheel in .venv/fixture-wheels: run `make .venv/.installed`")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        (out / "t1.jpg").write_bytes(wheel.read("insightface/data/images/t1.jpg"))
    return Image.open(out / "t1.jpg").convert("RGB")


def _folder(base: Image.Image, side: int, copies: int, root: Path) -> Path:
    raw = root / f"raw{side}"
    raw.mkdir(parents=True, exist_ok=True)
    scale = side / max(base.size)
    image = base.resize((round(base.width * scale), round(base.height * scale)), Image.Resampling.LANCZOS)
    for i in range(copies):  # distinct bytes per copy (one pixel differs), so nothing is deduplicated
        copy = image.copy()
        copy.putpixel((i, 0), (i * 20 % 256, 0, 0))
        copy.save(raw / f"photo_{i}.jpg", quality=90)
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--clip", default="", help="CLIP folder or id (default: random ViT-B/32 architecture)")
    parser.add_argument("--workers", type=int, default=2, help="detection processes for the parallel run")
    parser.add_argument("--parallel-copies", type=int, default=32, help="1,280 px files for the parallel run")
    args = parser.parse_args()

    from facestats_core.embedding.clip import ClipConfig, embed_manifest, load_clip
    from facestats_core.faces.chips import ChipConfig, chip_manifest
    from facestats_core.faces.detectors import pick_face_detector
    from facestats_core.faces.face_table import DetectionConfig, detect_manifest
    from facestats_core.images.scan import scan_shards
    from facestats_demo.random_clip import build_random_clip

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"CPU: {cpu}")
    detector, name = pick_face_detector("dlib")
    work = Path(tempfile.mkdtemp(prefix="bench_faces_"))
    try:
        clip_dir = args.clip or str(build_random_clip(work / "vit-b-32", preset="vit-b-32", seed=0))
        clip = load_clip(ClipConfig(model=clip_dir))
        base = _group_photo(work)
        results: dict[int, dict[str, float]] = {}
        for side in (640, 1280, 3000):
            raw = _folder(base, side, args.copies, work)
            manifest = scan_shards(raw, ["00"], 1)[0]["00"]
            config = DetectionConfig(detector_name=name)
            detect_s = chip_s = embed_s = 0.0
            faces = 0
            for _ in range(args.repeats):
                started = time.perf_counter()
                table, _ = detect_manifest(manifest, raw, detector, config)
                detect_s += time.perf_counter() - started
                chips_dir = work / f"chips{side}"
                shutil.rmtree(chips_dir, ignore_errors=True)
                started = time.perf_counter()
                chips, _ = chip_manifest(table, raw, chips_dir, ChipConfig())
                chip_s += time.perf_counter() - started
                started = time.perf_counter()
                embed_manifest(chips, clip, 32, chips_dir)
                embed_s += time.perf_counter() - started
                faces = table.filter(pl.col("face_id").is_not_null()).height
            images = args.copies * args.repeats
            total = detect_s + chip_s + embed_s
            results[side] = {"detect_ips": images / detect_s, "chips_fps": faces * args.repeats / chip_s,
                             "embed_fps": faces * args.repeats / embed_s, "detect_share": detect_s / total,
                             "chips_share": chip_s / total, "faces_per_image": faces / args.copies}
            r = results[side]
            print(f"{side:>5} px: {r['faces_per_image']:.0f} faces/image | detection {r['detect_ips']:.2f} images/s"
                  f" | chips {r['chips_fps']:.1f} faces/s | CLIP {r['embed_fps']:.1f} faces/s | share of time:"
                  f" detection {r['detect_share']:.0%}, chips {r['chips_share']:.0%}, CLIP"
                  f" {1 - r['detect_share'] - r['chips_share']:.0%}")
        raw = _folder(base, 1280, args.parallel_copies, work / "parallel")
        manifest = scan_shards(raw, ["00"], 1)[0]["00"]
        rates = {}
        for workers in (1, args.workers):
            started = time.perf_counter()
            detect_manifest(manifest, raw, detector, DetectionConfig(detector_name=name), workers=workers)
            rates[workers] = args.parallel_copies / (time.perf_counter() - started)
        print(f" 1280 px, {args.parallel_copies} files: detection {rates[1]:.2f} images/s in one process, "
              f"{rates[args.workers]:.2f} images/s with {args.workers} worker processes "
              f"(x{rates[args.workers] / rates[1]:.2f}, pool start-up included)")
        print(f"summary: detect_ips_640={results[640]['detect_ips']:.2f} detect_ips_1280={results[1280]['detect_ips']:.2f}"
              f" detect_ips_3000={results[3000]['detect_ips']:.2f} chips_fps={results[1280]['chips_fps']:.1f}"
              f" detect_share={results[1280]['detect_share']:.2f} detect_ips_1280_workers={rates[args.workers]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
