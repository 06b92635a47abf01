"""Face chips per second, by source size: where the time of ``chip_manifest`` goes.

Takes the demo images and face detections of a finished pipeline data root (``--data``: e.g. the
``data-<N>`` folder ``bench_pipeline.py --keep`` leaves), optionally upscales each image to
``--size`` pixels on its longer side (bicubic, JPEG q92; boxes and landmarks scaled with it, so
the faces are where the detector found them), and times :func:`chip_manifest` on ``--n`` images
(fresh chips folder, one process, one core), plus a profile of its parts (decode, resample,
encode, sharpness) from cProfile.

Usage::

    .venv/bin/python benchmarks/bench_chips.py --data DIR [--size 3000] [--n 60]

Ends with ``chips: size=<px> images=<n> faces=<f> seconds=<s> faces_per_s=<x>``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from facestats_core.faces.chips import ChipConfig, chip_manifest

PARTS = {
    "decode": ("decode.py", "load_rgb"),
    "resample": ("chips.py", "extract_chip"),
    "encode": ("chips.py", "_encode"),
    "sharpness": ("preprocess.py", "laplacian_variance"),
    "write": ("atomic.py", "atomic_write_bytes"),
}


def scaled_inputs(data: Path, n: int, size: int | None, out: Path) -> tuple[pl.DataFrame, Path]:
    detections = pl.concat([pl.read_parquet(p) for p in sorted((data / "processed" / "manifests" /
                                                                "face_detections").glob("*.parquet"))])
    faces = detections.filter(pl.col("face_id").is_not_null() & pl.col("path").str.starts_with("demo/"))
    keep = faces["image_id"].unique(maintain_order=True).head(n)
    faces = faces.filter(pl.col("image_id").is_in(keep.implode()))
    if size is None:
        return faces, data / "raw"
    rows = []
    for image_id, group in faces.group_by("image_id", maintain_order=True):
        first = group.row(0, named=True)
        with Image.open(data / "raw" / first["path"]) as opened:
            image = opened.convert("RGB")
        scale = size / max(image.size)
        big = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        target = out / first["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        big.save(target, quality=92)
        for row in group.iter_rows(named=True):
            for key in ("box_x0", "box_y0", "box_x1", "box_y1"):
                row[key] = (row[key] + 0.5) * scale - 0.5
            if row["landmarks"] is not None:
                row["landmarks"] = [(v + 0.5) * scale - 0.5 for v in row["landmarks"]]
            rows.append(row)
    return pl.DataFrame(rows, schema=faces.schema), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a pipeline data root with face detections")
    parser.add_argument("--size", type=int, default=None, help="upscale the images to this longer side")
    parser.add_argument("--n", type=int, default=60, help="images")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="facestats-chips-"))
    try:
        faces, raw = scaled_inputs(args.data, args.n, args.size, work / "raw")
        config = ChipConfig()
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        table, stats = chip_manifest(faces, raw, work / "chips", config)
        profile.disable()
        seconds = time.perf_counter() - started
        out = io.StringIO()
        parts = pstats.Stats(profile, stream=out).stats  # type: ignore[attr-defined]
        print(f"| part | s | share |\n|---|---:|---:|")
        for part, (file, name) in PARTS.items():
            total = sum(v[3] for (path, _, func), v in parts.items() if path.endswith(file) and func == name)
            print(f"| {part} | {total:.2f} | {100 * total / seconds:.0f} % |")
        size = args.size or int(np.median(faces["image_width"].to_numpy()))
        print(f"chips: size={size} images={faces['image_id'].n_unique()} faces={stats.made} "
              f"seconds={seconds:.2f} faces_per_s={stats.made / seconds:.1f}")
        assert table["ok"].all(), table.filter(~pl.col("ok"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
