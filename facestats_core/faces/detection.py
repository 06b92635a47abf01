"""Face detection on the upright original: the detector interface and the bounded-size copy.

A :class:`FaceDetector` finds faces in an RGB image and returns :class:`DetectedFace`
rows (box, score, landmarks) in that image's pixel-index coordinates. Photos can be
huge, so :func:`detect_bounded` runs the detector on a copy whose longest side is at
most ``max_side`` pixels and maps boxes and landmarks back to the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

Point = tuple[float, float]

DEFAULT_MAX_SIDE = 1600
"""Longest side of the copy detectors see; faces smaller than the detector's window
(dlib HOG with one upsampling: ~40 px) in that copy are not found, i.e. on a
3,000 px photo faces below ~75 px."""


@dataclass(frozen=True)
class DetectedFace:
    """One face: ``box`` ``(x0, y0, x1, y1)``, the detector's ``score``, and ``landmarks``
    as a ``(k, 2)`` array (k = 68 iBUG points, 5 points, or the 2 eye centres) or None.

    A CNN detector also gives its own 5 points (``points5``: image-left eye, image-right eye,
    nose tip, left and right mouth corner of the upright face), the face's in-plane angle
    (``rotation``, degrees: 0 upright, 90 turned a quarter clockwise on screen, ±180 upside
    down; the 68 points were fitted on the face turned back by it) and the 90° step of the image
    it was found in (``rotation_pass``: 0, 90, 180 or 270, counter-clockwise)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None
    points5: np.ndarray | None = None
    rotation: float = 0.0
    rotation_pass: int = 0

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def scaled(self, factor: float) -> DetectedFace:
        """The same face in an image ``factor`` times as large."""
        box = tuple(float(v) * factor for v in self.box)
        landmarks = None if self.landmarks is None else np.asarray(self.landmarks, dtype=np.float64) * factor
        points5 = None if self.points5 is None else np.asarray(self.points5, dtype=np.float64) * factor
        return DetectedFace(box=box, score=self.score, landmarks=landmarks, points5=points5,  # type: ignore[arg-type]
                            rotation=self.rotation, rotation_pass=self.rotation_pass)


class FaceDetector(Protocol):
    """Anything that finds faces in an RGB image. ``name`` identifies it, its version and its
    settings (it is part of the detection cache key: another name means detect again).

    A detector whose ``sees_original`` attribute is true bounds its own work (copies, tiles)
    and is given the original image by :func:`detect_bounded`; the others get the bounded copy."""

    @property
    def name(self) -> str: ...

    def detect(self, image: Image.Image) -> list[DetectedFace]: ...


def eye_centres(landmarks: np.ndarray | None) -> tuple[Point, Point] | None:
    """The eye centres from 68 (means of iBUG 36-41 and 42-47), 5 or 2 landmark points, else None.

    The first is the eye on the image's left *when the face is upright* (iBUG 36-41, the first
    of 5 or 2 points): the order is the face's, not the image's, so the line from the first to
    the second gives the face's in-plane angle even for a face lying sideways or upside down."""
    if landmarks is None:
        return None
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(points) == 68:
        first, second = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    elif len(points) in (5, 2):
        first, second = points[0], points[1]
    else:
        return None
    return (float(first[0]), float(first[1])), (float(second[0]), float(second[1]))


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """The 5-point layout (left eye, right eye, nose tip, left and right mouth corner) of 68 iBUG points."""
    points = np.asarray(landmarks68, dtype=np.float64).reshape(-1, 2)
    if len(points) != 68:
        raise ValueError(f"need 68 landmarks, got {len(points)}")
    eyes = eye_centres(points)
    assert eyes is not None
    return np.array([eyes[0], eyes[1], points[30], points[48], points[54]], dtype=np.float64)


def detect_bounded(image: Image.Image, detector: FaceDetector, max_side: int = DEFAULT_MAX_SIDE) -> list[DetectedFace]:
    """Faces of ``image`` found on a copy no longer than ``max_side``, in the original's coordinates
    (a detector that ``sees_original`` gets the original and bounds its own work)."""
    if max_side < 64:
        raise ValueError(f"max_side must be >= 64, got {max_side}")
    if getattr(detector, "sees_original", False):
        return detector.detect(image)
    longest = max(image.size)
    if longest <= max_side:
        return detector.detect(image)
    factor = max_side / longest
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    small = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    back = image.width / small.width
    return [face.scaled(back) for face in detector.detect(small)]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.4, contained: float = 1.0) -> np.ndarray:
    """Indices of ``(n, 4)`` boxes kept by greedy non-maximum suppression, best score first: a box
    overlapping a better one by more than ``iou`` (intersection over union), or lying inside it by
    more than ``contained`` (intersection over its own area), is dropped."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        first, rest = order[0], order[1:]
        keep.append(int(first))
        width = np.clip(np.minimum(boxes[first, 2], boxes[rest, 2]) - np.maximum(boxes[first, 0], boxes[rest, 0]), 0,
                        None)
        height = np.clip(np.minimum(boxes[first, 3], boxes[rest, 3]) - np.maximum(boxes[first, 1], boxes[rest, 1]), 0,
                         None)
        inter = width * height
        union = np.maximum(areas[first] + areas[rest] - inter, 1e-9)
        inside = inter / np.maximum(areas[rest], 1e-9)
        order = rest[(inter / union <= iou) & (inside <= contained)]
    return np.asarray(keep, dtype=np.int64)
