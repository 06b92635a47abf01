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
    as a ``(k, 2)`` array (k = 68 iBUG points, 5 points, or the 2 eye centres) or None."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

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
        return DetectedFace(box=box, score=self.score, landmarks=landmarks)  # type: ignore[arg-type]


class FaceDetector(Protocol):
    """Anything that finds faces in an RGB image. ``name`` identifies it and its settings
    (it is part of the detection cache key: another name means detect again)."""

    @property
    def name(self) -> str: ...

    def detect(self, image: Image.Image) -> list[DetectedFace]: ...


def eye_centres(landmarks: np.ndarray | None) -> tuple[Point, Point] | None:
    """(left, right) eye centres (left = smaller x) from 68, 5 or 2 landmark points, else None."""
    if landmarks is None:
        return None
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(points) == 68:
        eyes = [points[36:42].mean(axis=0), points[42:48].mean(axis=0)]
    elif len(points) == 5:
        eyes = [points[0], points[1]]
    elif len(points) == 2:
        eyes = [points[0], points[1]]
    else:
        return None
    left, right = sorted(eyes, key=lambda p: float(p[0]))
    return (float(left[0]), float(left[1])), (float(right[0]), float(right[1]))


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """The 5-point layout (left eye, right eye, nose tip, left and right mouth corner) of 68 iBUG points."""
    points = np.asarray(landmarks68, dtype=np.float64).reshape(-1, 2)
    if len(points) != 68:
        raise ValueError(f"need 68 landmarks, got {len(points)}")
    eyes = eye_centres(points)
    assert eyes is not None
    return np.array([eyes[0], eyes[1], points[30], points[48], points[54]], dtype=np.float64)


def detect_bounded(image: Image.Image, detector: FaceDetector, max_side: int = DEFAULT_MAX_SIDE) -> list[DetectedFace]:
    """Faces of ``image`` found on a copy no longer than ``max_side``, in the original's coordinates."""
    if max_side < 64:
        raise ValueError(f"max_side must be >= 64, got {max_side}")
    longest = max(image.size)
    if longest <= max_side:
        return detector.detect(image)
    factor = max_side / longest
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    small = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    back = image.width / small.width
    return [face.scaled(back) for face in detector.detect(small)]
