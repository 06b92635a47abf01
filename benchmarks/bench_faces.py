"""Face detection on real photos: recall, false faces and images/s of each detector.

Usage: python benchmarks/bench_faces.py [--detectors retinaface,yunet,dlib] [--copies 8] [--workers 0]

Real images from registry packages only (nothing downloaded): the six-person photo ``t1.jpg``
of the insightface wheel in ``.venv/fixture-wheels``; scikit-image's astronaut, coffee and
``lfw_subset`` (100 face and 100 non-face 25 px crops, each enlarged 4x onto a 200 px grey
canvas, as in ``calibrate_landmark_box.py``). Derived at run time:

* ``rot90`` / ``rot45`` / ``rot30``: the astronaut turned by that angle (1 face each);
* ``tiny20`` / ``tiny30`` / ``tiny60``: her face scaled to 20 / 30 / 60 px wide (the HOG box's
  width) on coffee enlarged to 1600×1200; ``face70_3000``: 70 px wide on coffee at 3000×2000;
* ``crowd``: 40 LFW faces at 64 px in an 8×5 mosaic (800×480);
* ``non-faces``: the 100 LFW non-face crops and coffee; every face found there is false.

A face counts as found when a detection's centre lies in its known box (the whole canvas for
LFW, the photo for the group); detections elsewhere on the face images are counted too
(``extra``). The CNN detectors run at a floor of 0.3 and their counts are reported at their
threshold; the sweep shows LFW recall and false faces by threshold (how the default was chosen).

Throughput: ``t1.jpg`` resized to 640, 1280 and 3000 px, ``--copies`` files each, through
``detect_manifest`` (decode upright + detection + 68 landmarks) in one process on one core
(CNN ``threads=1``), then at 1280 px with every core (``--workers``, default one per core,
worker processes as the pipeline runs them; the pool's start-up included). Ends with
``summary: detector=<default> recall=<found/expected> false_per_100_nonfaces=<x> rot90=<> rot45=<>
tiny20=<> ips_1280=<all cores> ips_1280_hog=<all cores>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibrate_landmark_box import lfw_canvas  # noqa: E402

FLOOR = 0.3
ASTRONAUT_FACE = (175.0, 76.0, 266.0, 167.0)
"""dlib HOG's box of the astronaut's face in skimage's 512×512 image (its width defines face px)."""


def group_photo(work: Path) -> Image.Image:
    wheels = sorted((ROOT / ".venv" / "fixture-wheels").glob("insightface-*.whl"))
    if not wheels:
        raise SystemExit("no insightface wheel in .venv/fixture-wheels: run `make .venv/.installed`")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        (work / "t1.jpg").write_bytes(wheel.read("insightface/data/images/t1.jpg"))
    return Image.open(work / "t1.jpg").convert("RGB")


def _rotated(image: Image.Image, box: tuple[float, ...], angle: float) -> tuple[Image.Image, tuple[float, ...]]:
    """``image`` turned ``angle`` degrees counter-clockwise (canvas expanded), and the box around the turned face."""
    turned = image.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    cx, cy = (box[0] + box[2]) / 2 - image.width / 2, (box[1] + box[3]) / 2 - image.height / 2
    rad = np.radians(angle)
    nx, ny = cx * np.cos(rad) + cy * np.sin(rad), -cx * np.sin(rad) + cy * np.cos(rad)
    half = max(box[2] - box[0], box[3] - box[1]) * 0.75
    x, y = nx + turned.width / 2, ny + turned.height / 2
    return turned, (x - half, y - half, x + half, y + half)


def _pasted(face_px: int, canvas_size: tuple[int, int], background: Image.Image) -> tuple[Image.Image, tuple]:
    """The astronaut scaled so her face is ``face_px`` wide, pasted on ``background`` enlarged to ``canvas_size``."""
    astronaut = background.info["astronaut"]
    scale = face_px / (ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0])
    head = astronaut.crop((120, 0, 320, 220))
    small = head.resize((max(1, round(200 * scale)), max(1, round(220 * scale))), Image.Resampling.LANCZOS)
    canvas = background.resize(canvas_size, Image.Resampling.BICUBIC)
    at = (canvas_size[0] * 2 // 3, canvas_size[1] // 2)
    canvas.paste(small, at)
    x0, y0 = at[0] + (ASTRONAUT_FACE[0] - 120) * scale, at[1] + ASTRONAUT_FACE[1] * scale
    return canvas, (x0 - 2, y0 - 2, x0 + face_px + 2, y0 + face_px * 1.1 + 2)


def recall_set(work: Path) -> tuple[list[tuple[str, Image.Image, list[tuple]]], list[Image.Image]]:
    """``(name, image, face boxes)`` of the face images and the non-face images."""
    import skimage.data

    astronaut = Image.fromarray(skimage.data.astronaut()).convert("RGB")
    coffee = Image.fromarray(skimage.data.coffee()).convert("RGB")
    coffee.info["astronaut"] = astronaut
    group = group_photo(work)
    items: list[tuple[str, Image.Image, list[tuple]]] = [("group", group, [(0, 0, *group.size)] * 6)]
    for angle in (90, 45, 30):
        image, box = _rotated(astronaut, ASTRONAUT_FACE, angle)
        items.append((f"rot{angle}", image, [box]))
    for px in (20, 30, 60):
        image, box = _pasted(px, (1600, 1200), coffee)
        items.append((f"tiny{px}", image, [box]))
    image, box = _pasted(70, (3000, 2000), coffee)
    items.append(("face70_3000", image, [box]))
    lfw = skimage.data.lfw_subset()
    for index in range(100):
        items.append((f"lfw{index:03d}", lfw_canvas(lfw[index]), [(40, 40, 160, 160)]))
    crowd = Image.new("RGB", (8 * 100, 5 * 96), (128, 128, 128))
    boxes = []
    for index in range(40):
        x, y = 18 + (index % 8) * 100, 16 + (index // 8) * 96
        tile = Image.fromarray((lfw[index] * 255).round().astype(np.uint8)).resize((64, 64), Image.Resampling.BICUBIC)
        crowd.paste(tile.convert("RGB"), (x, y))
        boxes.append((x, y, x + 64, y + 64))
    items.append(("crowd", crowd, boxes))
    non_faces = [lfw_canvas(crop) for crop in lfw[100:]] + [coffee]
    return items, non_faces


def score_faces(faces: list[Any], truth: list[tuple]) -> tuple[int, int]:
    """(faces of ``truth`` found, detections outside every truth box); each detection finds one face."""
    free = list(range(len(truth)))
    extra = 0
    for face in faces:
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        hit = next((i for i in free if truth[i][0] <= cx <= truth[i][2] and truth[i][1] <= cy <= truth[i][3]), None)
        if hit is None:
            extra += 1
        else:
            free.remove(hit)
    return len(truth) - len(free), extra


def make_detector(name: str, threads: int = 1) -> Any:
    from facestats_core.faces.cnn_detector import MODELS, CnnFaceDetector
    from facestats_core.faces.detectors import pick_face_detector

    if name in MODELS:
        return CnnFaceDetector(model=name, min_score=FLOOR, threads=threads)
    return pick_face_detector(name)[0]


def detect(detector: Any, image: Image.Image) -> list[Any]:
    from facestats_core.faces.detection import detect_bounded

    return detect_bounded(image, detector)


def accuracy(name: str, items: list, non_faces: list[Image.Image]) -> dict[str, Any]:
    from facestats_core.faces.cnn_detector import MODELS

    detector = make_detector(name)
    threshold = MODELS[name].min_score if name in MODELS else None
    kept = (lambda faces: [f for f in faces if f.score >= threshold]) if threshold else (lambda faces: faces)
    result: dict[str, Any] = {"lfw_best": [], "nonface_scores": []}
    found = expected = extra = 0
    for label, image, truth in items:
        faces = detect(detector, image)
        hits, outside = score_faces(kept(faces), truth)
        found, expected, extra = found + hits, expected + len(truth), extra + outside
        if label.startswith("lfw"):
            result["lfw"] = result.get("lfw", 0) + hits
            result["lfw_best"].append(max((f.score for f in faces), default=0.0))
        else:
            result[label] = hits
    result["false"] = 0
    for image in non_faces:
        faces = detect(detector, image)
        result["false"] += len(kept(faces))
        result["nonface_scores"].extend(f.score for f in faces)
    result.update(found=found, expected=expected, extra=extra, threshold=threshold,
                  false_per_100=100.0 * result["false"] / len(non_faces))
    return result


def _folder(base: Image.Image, side: int, copies: int, root: Path) -> Path:
    raw = root / f"raw{side}_{copies}"
    raw.mkdir(parents=True, exist_ok=True)
    scale = side / max(base.size)
    image = base.resize((round(base.width * scale), round(base.height * scale)), Image.Resampling.LANCZOS)
    for i in range(copies):  # distinct bytes per copy (one pixel differs), so nothing is deduplicated
        copy = image.copy()
        copy.putpixel((i, 0), (i * 20 % 256, 0, 0))
        copy.save(raw / f"photo_{i}.jpg", quality=90)
    return raw


def images_per_second(detector: Any, raw: Path, workers: int = 1) -> float:
    from facestats_core.faces.face_table import DetectionConfig, detect_manifest
    from facestats_core.images.scan import scan_shards

    manifest = scan_shards(raw, ["00"], 1)[0]["00"]
    config = DetectionConfig(detector_name=detector.name)
    if workers <= 1:  # load the models first (the pool's workers load theirs inside the timing)
        detector.detect(Image.new("RGB", (64, 64)))
    started = time.perf_counter()
    table, _ = detect_manifest(manifest, raw, detector, config, workers=workers)
    return manifest.height / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", default="retinaface,yunet,dlib")
    parser.add_argument("--copies", type=int, default=8, help="files per size for the one-core images/s")
    parser.add_argument("--workers", type=int, default=0, help="processes for the all-core run (0: one per core)")
    parser.add_argument("--parallel-copies", type=int, default=32, help="1280 px files for the all-core run")
    args = parser.parse_args()
    names = args.detectors.split(",")
    workers = args.workers or os.cpu_count() or 1
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"CPU: {cpu}, {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="bench_faces_"))
    try:
        items, non_faces = recall_set(work)
        results = {name: accuracy(name, items, non_faces) for name in names}
        columns = ["group", "rot90", "rot45", "rot30", "tiny20", "tiny30", "tiny60", "face70_3000", "crowd", "lfw"]
        expect = {"group": 6, "crowd": 40, "lfw": 100}
        print(f"\n{'detector':<11} {'thr':>4} " + " ".join(f"{c:>11}" for c in columns)
              + "  recall     extra  false/100 non-faces")
        for name, r in results.items():
            cells = " ".join(f"{f'{r[c]}/{expect.get(c, 1)}':>11}" for c in columns)
            thr = "-" if r["threshold"] is None else f"{r['threshold']:g}"
            print(f"{name:<11} {thr:>4} {cells}  {r['found']:>3}/{r['expected']:<5} {r['extra']:>5}  "
                  f"{r['false_per_100']:.1f}")
        for name, r in results.items():
            if r["threshold"] is None:
                continue
            best, false = np.asarray(r["lfw_best"]), np.asarray(r["nonface_scores"])
            sweep = ", ".join(f"{t:.1f}: {int((best >= t).sum())}/{int((false >= t).sum())}"
                              for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))
            print(f"{name} threshold sweep (LFW faces found / false faces on the {len(non_faces)} non-faces): {sweep}")
        base = group_photo(work)
        ips: dict[str, dict[int, float]] = {}
        for name in names:
            detector = make_detector(name)
            if name != "dlib":
                detector = replace(detector, min_score=None)
            ips[name] = {side: images_per_second(detector, _folder(base, side, args.copies, work))
                         for side in (640, 1280, 3000)}
        print("\nimages/s in one process, one core (decode + detection + 68 landmarks):")
        for name, rates in ips.items():
            print(f"  {name:<11} " + "  ".join(f"{side} px: {rate:.2f}" for side, rate in rates.items()))
        raw = _folder(base, 1280, args.parallel_copies, work / "parallel")
        default = names[0]
        every = {}
        for name in dict.fromkeys([default, "dlib"]):
            detector = make_detector(name)
            if name != "dlib":
                detector = replace(detector, min_score=None)
            every[name] = images_per_second(detector, raw, workers=workers)
        print(f"1280 px, {args.parallel_copies} files, {workers} worker processes (pool start-up included): "
              + ", ".join(f"{name} {rate:.2f} images/s" for name, rate in every.items())
              + f" (x{every[default] / every['dlib']:.2f})")
        r = results[default]
        print(f"summary: detector={default} recall={r['found']}/{r['expected']} "
              f"false_per_100_nonfaces={r['false_per_100']:.1f} rot90={r['rot90']} rot45={r['rot45']} "
              f"tiny20={r['tiny20']} ips_1280={every[default]:.2f} ips_1280_hog={every['dlib']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
