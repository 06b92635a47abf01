"""Head pose (yaw, pitch, roll in degrees) from a face's landmarks in image pixels.

* **roll** is the eye line's angle in the image: ``atan2`` of the vector from the image-left
  eye (iBUG points 36-41) to the other eye (42-47), in degrees, positive when the eye line
  runs down to the right (clockwise, image ``y`` points down). Upside-down faces give about
  ±180. With 5 points (eyes first) or 2 eye points, roll is known and yaw/pitch are not.
* **yaw** and **pitch** come from 68 iBUG points: the landmarks are first turned by ``-roll``
  (eyes level), then a generic 3D face (:data:`MODEL_POINTS`, 11 points of the rigid upper
  face: brows, nasion, nose, eye corners) is fitted by linear least squares under a scaled orthographic
  (weak-perspective) camera; the fitted 2×3 map is projected onto the nearest scaled rotation
  (SVD) and the rotation's forward axis gives the angles. ``yaw > 0``: the face turns towards
  the image's right (the nose moves right); ``pitch > 0``: the face tilts up (the nose moves up).

Left out of the fit: the mouth and chin, which move with expression (with them, the two broad
smiles of the group photo read about 12° further tilted down), and the jaw contour, whose points slide along the
silhouette as the head turns. The model is an average adult face in millimetres (x right, y down,
z towards the camera, origin at the nose tip; outer eye corners 90 mm apart) from standard
anthropometric proportions, its depths set so that the group photo's faces read as they look
(frontal ones within ±4°, those turned about 40° at 37-45°). A generic model is off by some
degrees per person (pitch most: it depends on each face's proportions), which is fine for the
±30° decisions of :mod:`facestats_core.faces.quality`; it is not a 3D reconstruction of the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODEL_POINTS: dict[int, tuple[float, float, float]] = {
    19: (-28.0, -50.0, -29.0),  # brow middle, image-left
    24: (28.0, -50.0, -29.0),   # brow middle, image-right
    27: (0.0, -44.0, -29.0),    # nasion
    30: (0.0, 0.0, 0.0),        # nose tip
    31: (-16.0, 6.0, -20.0),    # nose wing, image-left
    33: (0.0, 12.0, -18.0),     # nose base
    35: (16.0, 6.0, -20.0),     # nose wing, image-right
    36: (-45.0, -34.0, -35.0),  # outer eye corner, image-left
    39: (-15.0, -34.0, -26.0),  # inner eye corner, image-left
    42: (15.0, -34.0, -26.0),   # inner eye corner, image-right
    45: (45.0, -34.0, -35.0),   # outer eye corner, image-right
}
"""Generic 3D positions (mm) of the iBUG points the pose fit uses."""

_INDEX = np.array(sorted(MODEL_POINTS))
_MODEL = np.array([MODEL_POINTS[i] for i in _INDEX], dtype=np.float64)


@dataclass(frozen=True)
class HeadPose:
    """Angles in degrees; ``yaw``/``pitch`` are None without 68 landmarks, everything None without eyes.
    ``reason`` says why a value is missing (``no_landmarks``, ``no_68_landmarks``, ``degenerate``)."""

    yaw: float | None
    pitch: float | None
    roll: float | None
    reason: str | None = None


def _eye_pair(points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(image-left eye, other eye) in iBUG order: 68 points (36-41, 42-47), 5 points or 2 points (first two)."""
    if len(points) == 68:
        return points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    if len(points) in (2, 5):
        return points[0], points[1]
    return None


def roll_degrees(landmarks: np.ndarray) -> float | None:
    """The eye line's angle (see the module docstring), or None without two distinct eyes."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    pair = _eye_pair(points)
    if pair is None or not np.isfinite(points).all():
        return None
    dx, dy = pair[1] - pair[0]
    if math.hypot(dx, dy) < 1e-9:
        return None
    return math.degrees(math.atan2(dy, dx))


def fit_rotation(points: np.ndarray) -> np.ndarray | None:
    """The 3×3 rotation of :data:`MODEL_POINTS` that best explains the 2D ``points`` (68 iBUG points,
    eyes level) under a scaled orthographic camera, or None when the fit is degenerate."""
    image = np.asarray(points, dtype=np.float64).reshape(-1, 2)[_INDEX]
    model = _MODEL - _MODEL.mean(axis=0)
    image = image - image.mean(axis=0)
    solution, _, rank, _ = np.linalg.lstsq(model, image, rcond=None)  # image ≈ model @ solution
    if rank < 3:
        return None
    u, s, vt = np.linalg.svd(solution.T, full_matrices=False)  # 2×3 = u (2×2) diag(s) vt (2×3)
    if s[1] <= 1e-9 * max(s[0], 1e-12):
        return None
    rows = u @ vt  # the nearest 2×3 with orthonormal rows
    third = np.cross(rows[0], rows[1])
    return np.vstack([rows, third])


def head_pose(landmarks: np.ndarray | None) -> HeadPose:
    """Yaw, pitch and roll of a face (module docstring); nulls with a reason when they cannot be had."""
    if landmarks is None:
        return HeadPose(None, None, None, "no_landmarks")
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    roll = roll_degrees(points)
    if roll is None:
        return HeadPose(None, None, None, "no_landmarks" if len(points) not in (2, 5, 68) else "degenerate")
    if len(points) != 68:
        return HeadPose(None, None, round(roll, 2), "no_68_landmarks")
    angle = math.radians(-roll)
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    level = (points - points.mean(axis=0)) @ turn.T
    rotation = fit_rotation(level)
    if rotation is None:
        return HeadPose(None, None, round(roll, 2), "degenerate")
    forward = rotation[:, 2]  # where the model's z axis (out of the face) points: image x, image y, depth
    yaw = math.degrees(math.atan2(forward[0], forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    return HeadPose(round(yaw, 2), round(pitch, 2), round(roll, 2))
