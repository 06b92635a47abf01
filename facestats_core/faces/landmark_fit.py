"""68 iBUG landmarks for a face known by a CNN detector's 5 points, whatever its rotation.

dlib's 68-point shape predictor (``face-recognition-models``) was trained on the boxes of
dlib's HOG detector: a square from the brows to the chin. A CNN detector's box is another
shape (RetinaFace's and YuNet's are taller and reach the hairline), so the predictor is not
run on it. Instead the face's 5 points are matched (least-squares similarity) to a template
of where those 5 points sit inside the HOG box; that gives the HOG-style square *and the
face's in-plane angle*. The square is cut from the original upright (de-rotated by that
angle, at most :data:`FIT_SIDE` px), the predictor runs on the upright crop, and its 68
points are mapped back to the original. A face lying sideways or tilted by 45° is fitted
like an upright one.

The templates (:data:`TEMPLATES`) are calibrated by ``benchmarks/calibrate_landmark_box.py``
on real faces that both HOG and the CNN found (see ``docs/detection.md``): 5 points in units
of the HOG box, origin at its top-left corner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facestats_core.faces.alignment import similarity_transform
from facestats_core.faces.chips import chip_to_source, extract_chip

TEMPLATES: dict[str, np.ndarray] = {
    "retinaface": np.array([[0.2894, 0.3171], [0.7002, 0.3045], [0.4900, 0.5336], [0.3416, 0.7259],
                            [0.6825, 0.7147]]),
    "yunet": np.array([[0.2804, 0.3052], [0.6962, 0.3037], [0.4722, 0.5338], [0.3203, 0.7349],
                       [0.6734, 0.7270]]),
}
"""Per detector: the mean position of its 5 points inside dlib's HOG box (side = 1)."""

FIT_SIDE = 200
"""Largest HOG-style box side (px) the predictor is run at: bigger faces are fitted on a reduced crop."""


@dataclass(frozen=True)
class FaceFrame:
    """The HOG-style square of a face: centre, side (original pixels) and in-plane angle (radians,
    image coordinates: the angle of the line from the image-left to the image-right eye of the
    upright face; 0 for an upright face)."""

    cx: float
    cy: float
    side: float
    angle: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The square as an axis-aligned box of the same centre and side (pixel-index coordinates)."""
        half = self.side / 2.0
        return (self.cx - half, self.cy - half, self.cx + half, self.cy + half)

    @property
    def degrees(self) -> float:
        """The angle in degrees, in (-180, 180]."""
        value = math.degrees(self.angle)
        return value + 360.0 if value <= -180.0 else value


def face_frame(points5: np.ndarray, template: np.ndarray) -> FaceFrame:
    """The HOG-style square of a face from its 5 points and the detector's template."""
    matrix = similarity_transform(np.asarray(template, dtype=np.float64), np.asarray(points5, dtype=np.float64))
    centre = matrix[:, :2] @ np.array([0.5, 0.5]) + matrix[:, 2]
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    angle = math.atan2(matrix[1, 0], matrix[0, 0])
    return FaceFrame(float(centre[0]), float(centre[1]), float(scale), angle)


def fit_landmarks68(image: Image.Image, frame: FaceFrame, predictor: object) -> np.ndarray:
    """``(68, 2)`` landmarks of the face in ``frame``, in ``image``'s pixel-index coordinates.

    ``predictor`` is a ``dlib.shape_predictor``. The crop is twice the square's side (the
    predictor looks a little beyond the box), upright, the square at most :data:`FIT_SIDE` px.
    """
    import dlib  # noqa: PLC0415 - optional dependency

    inner = max(8, min(FIT_SIDE, round(frame.side)))
    size = 2 * inner
    geometry = (frame.cx, frame.cy, 2.0 * frame.side, frame.angle)
    crop = np.ascontiguousarray(np.asarray(extract_chip(image, geometry, size), dtype=np.uint8))
    start = (size - inner) // 2
    rect = dlib.rectangle(start, start, start + inner - 1, start + inner - 1)
    shape = predictor(crop, rect)  # type: ignore[operator]
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    to_source = chip_to_source(*geometry, size)
    return points @ to_source[:2, :2].T + to_source[:2, 2]
