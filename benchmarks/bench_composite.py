"""Time composites of demo faces, aligned (truth eyes) vs unaligned, and compare their sharpness.

Usage: python -m benchmarks.bench_composite [--n-images 1000] [--size 256] [--counts 25,1000]
                                            [--root DIR] [--out DIR] [--dlib 100]

Generates the synthetic demo set (``generate_demo_dataset``; reused when
``--root`` already holds it), then for each count k averages the first k faces
unaligned and aligned to the standard eye targets with the true eye centres
from ``demo_truth.csv``, reporting seconds per composite, ms per face and the
Laplacian variance of each composite. With ``--dlib N`` (and dlib installed)
it also times dlib eye detection on the first N faces and reports the
detection rate and eye error against the truth. ``--out`` writes the
composites and a contact sheet.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facestats_core.composites.average import average_images, composite_sharpness, to_uint8
from facestats_core.composites.contact_sheet import tile_contact_sheet
from facestats_core.faces.alignment import AlignmentConfig, DlibDetector, align_face, read_landmarks_csv
from facestats_demo.faces import DemoSpec, generate_demo_dataset


def _bench_composites(root: Path, size: int, counts: list[int], out: Path | None) -> None:
    truth = read_landmarks_csv(root / "labels" / "demo_truth.csv")
    eyes = {
        row[0]: ((row[1], row[2]), (row[3], row[4])) for row in truth.iter_rows()
    }
    files = list(truth["file"])
    config = AlignmentConfig(output_size=size)
    raw = root / "raw"

    def aligner(image: Image.Image, path: Path) -> Image.Image:
        left, right = eyes[path.relative_to(raw).as_posix()]
        return align_face(image, left, right, config.output_size, config.eye_targets)

    sheet_items: list[tuple[Image.Image, str]] = []
    print(f"{'faces':>6} {'mode':>9} {'s/composite':>12} {'ms/face':>8} {'sharpness':>10}")
    for k in counts:
        paths = [raw / f for f in files[:k]]
        for mode, transform in (("unaligned", None), ("aligned", aligner)):
            start = time.perf_counter()
            mean, used, failures = average_images(paths, size, transform=transform)
            seconds = time.perf_counter() - start
            if failures:
                print(f"  {len(failures)} failures, e.g. {failures[0]}")
            composite = Image.fromarray(to_uint8(mean))
            sharp = composite_sharpness(composite)
            print(f"{used:>6} {mode:>9} {seconds:>12.3f} {1000 * seconds / used:>8.2f} {sharp:>10.2f}")
            sheet_items.append((composite, f"{mode} n={used} lapvar={sharp:.1f}"))
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                composite.save(out / f"composite_{mode}_{used}.png")
    if out is not None:
        tile_contact_sheet(sheet_items, columns=2, tile=size).save(out / "contact_sheet.png")
        print(f"wrote composites and contact_sheet.png to {out}")


def _bench_dlib(root: Path, count: int) -> None:
    try:
        import dlib  # noqa: F401, PLC0415
    except ImportError:
        print("dlib not installed: skipping detector benchmark")
        return
    truth = read_landmarks_csv(root / "labels" / "demo_truth.csv").head(count)
    for upsample in (0, 1):
        detector = DlibDetector(upsample=upsample)
        detector.detect_eyes(Image.new("RGB", (64, 64)))  # load models outside the timing
        found, errors, seconds = 0, [], 0.0
        for file, lx, ly, rx, ry in truth.iter_rows():
            with Image.open(root / "raw" / file) as image:
                image.load()
                start = time.perf_counter()
                detections = detector.detect_eyes(image)
                seconds += time.perf_counter() - start
            if detections:
                found += 1
                best = detections[0]
                errors.append(max(math.dist(best.left_eye, (lx, ly)), math.dist(best.right_eye, (rx, ry))))
        err = f"median {np.median(errors):.2f} px, p90 {np.percentile(errors, 90):.2f} px" if errors else "n/a"
        print(
            f"dlib upsample={upsample}: detected {found}/{truth.height} "
            f"({100 * found / truth.height:.0f}%), {1000 * seconds / truth.height:.1f} ms/image, "
            f"worst-eye error {err}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--counts", default="25,1000")
    parser.add_argument("--root", type=Path, default=None, help="demo root to (re)use; default: a temp dir")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--dlib", type=int, default=100, help="faces for the dlib benchmark (0: skip)")
    args = parser.parse_args()
    counts = [min(int(c), args.n_images) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        start = time.perf_counter()
        generate_demo_dataset(root, DemoSpec(n_images=args.n_images, size=args.size))
        print(f"demo set: {args.n_images} faces at {args.size} px in {time.perf_counter() - start:.1f} s ({root})")
        _bench_composites(root, args.size, counts, args.out)
        if args.dlib > 0:
            _bench_dlib(root, min(args.dlib, args.n_images))


if __name__ == "__main__":
    main()
