"""Calibrate where each CNN detector's 5 points sit inside dlib's HOG box (the 68-point predictor's box).

Usage: python benchmarks/calibrate_landmark_box.py

Real faces from registry packages: the six-person photo and Tom Hanks from the insightface wheel
in ``.venv/fixture-wheels``, scikit-image's astronaut and camera, matplotlib's Grace Hopper, and
the 100 faces of scikit-image's ``lfw_subset`` (25 px crops, enlarged 4x onto a grey canvas).
For every face found by dlib HOG and by the CNN, the CNN's 5 points are expressed in units of
the HOG box; their mean is the template (``facestats_core.faces.landmark_fit.TEMPLATES``).
Then, with the template, it checks what the template is for: the HOG-style box rebuilt from the
5 points (IoU with HOG's own box) and the 68 landmarks fitted on it against the 68 fitted on
HOG's box (mean distance in % of the inter-ocular distance), on the same faces (in-sample) and
with leave-one-out templates.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def real_faces(work: Path) -> list[tuple[str, Image.Image]]:
    """(name, RGB image) of the calibration photos."""
    import zipfile

    import matplotlib
    import skimage.data

    wheels = sorted((ROOT / ".venv" / "fixture-wheels").glob("insightface-*.whl"))
    if not wheels:
        raise SystemExit("no insightface wheel in .venv/fixture-wheels: run `make .venv/.installed`")
    photos = []
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for member in ("t1.jpg", "Tom_Hanks_54745.png"):
            (work / member).write_bytes(wheel.read(f"insightface/data/images/{member}"))
            photos.append((member, Image.open(work / member).convert("RGB")))
    photos.append(("astronaut", Image.fromarray(skimage.data.astronaut()).convert("RGB")))
    photos.append(("camera", Image.fromarray(skimage.data.camera()).convert("RGB")))
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photos.append(("grace_hopper", Image.open(hopper).convert("RGB")))
    for index, crop in enumerate(skimage.data.lfw_subset()[:100]):
        photos.append((f"lfw{index:03d}", lfw_canvas(crop)))
    return photos


def lfw_canvas(crop: np.ndarray, side: int = 100, pad: int = 50) -> Image.Image:
    """A 25 px LFW crop (float 0-1) enlarged to ``side`` px (bicubic), centred on a grey canvas."""
    face = Image.fromarray((np.asarray(crop) * 255).round().astype(np.uint8)).resize(
        (side, side), Image.Resampling.BICUBIC).convert("RGB")
    canvas = Image.new("RGB", (side + 2 * pad, side + 2 * pad), (128, 128, 128))
    canvas.paste(face, (pad, pad))
    return canvas


def main() -> None:
    import tempfile

    import dlib

    from facestats_core.faces.dlib_detector import shape_predictor_file
    from facestats_core.faces.landmark_fit import TEMPLATES, face_frame, fit_landmarks68
    from facestats_core.faces.retinaface import RetinaFaceNet
    from facestats_core.faces.yunet import YuNetNet

    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(shape_predictor_file()))
    nets = {"retinaface": RetinaFaceNet(threads=1), "yunet": YuNetNet(threads=1)}
    with tempfile.TemporaryDirectory() as tmp:
        photos = real_faces(Path(tmp))
    for name, net in nets.items():
        pairs = []  # (hog box, 5 points, image)
        for _, image in photos:
            rgb = np.ascontiguousarray(np.asarray(image))
            rects, _, _ = hog.run(rgb, 1, 0.0)
            scores, boxes, points = net(rgb)
            for rect in rects:
                box = (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                hits = [i for i in range(len(scores)) if scores[i] >= 0.5 and boxes[i, 0] < cx < boxes[i, 2]
                        and boxes[i, 1] < cy < boxes[i, 3]]
                if hits:
                    pairs.append((box, points[max(hits, key=lambda i: scores[i])], image))
        units = np.array([(p - [b[0], b[1]]) / ((b[2] - b[0] + b[3] - b[1]) / 2) for b, p, _ in pairs])
        template = units.mean(axis=0)
        print(f"{name}: {len(pairs)} faces found by both; template (5 points in HOG-box units):")
        print("    np.array([" + ", ".join(f"[{x:.4f}, {y:.4f}]" for x, y in template) + "])")
        print(f"    spread of the 5 points (sd, box units): {units.std(axis=0).mean():.4f};"
              f" stored template: {np.round(TEMPLATES.get(name, template), 4).tolist()}")
        ious, errors, errors_loo = [], [], []
        for index, (box, points, image) in enumerate(pairs):
            rgb = np.ascontiguousarray(np.asarray(image))
            rect = dlib.rectangle(int(box[0]), int(box[1]), int(box[2]) - 1, int(box[3]) - 1)
            truth = np.array([(p.x, p.y) for p in predictor(rgb, rect).parts()], dtype=np.float64)
            ocular = np.linalg.norm(truth[36:42].mean(axis=0) - truth[42:48].mean(axis=0))
            frame = face_frame(points, template)
            ious.append(_iou(frame.box, box))
            errors.append(np.linalg.norm(fit_landmarks68(image, frame, predictor) - truth, axis=1).mean() / ocular)
            loo = (units.sum(axis=0) - units[index]) / (len(units) - 1)
            errors_loo.append(np.linalg.norm(fit_landmarks68(image, face_frame(points, loo), predictor) - truth,
                                             axis=1).mean() / ocular)
        print(f"    rebuilt box vs HOG box: IoU median {np.median(ious):.3f}, 5th percentile "
              f"{np.percentile(ious, 5):.3f}")
        print(f"    68 points on the rebuilt box vs on HOG's box: mean {100 * np.mean(errors):.1f} % of the "
              f"inter-ocular distance (median {100 * np.median(errors):.1f} %, max {100 * np.max(errors):.1f} %);"
              f" leave-one-out template: mean {100 * np.mean(errors_loo):.1f} %")


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


if __name__ == "__main__":
    main()
