"""The mean landmark shape of a composite, computed streaming (one face at a time).

Every face's 68 landmarks are first put into the output frame by the similarity
that puts its eyes on the eye targets (:func:`frame_shape`); :class:`ShapeMean`
keeps only their running float64 sum, so memory does not grow with faces.
"""

from __future__ import annotations

import numpy as np

from facestats_core.composites.mesh import N_LANDMARKS
from facestats_core.composites.warp import apply, check_landmarks, eye_centres, frame_transform
from facestats_core.faces.alignment import DEFAULT_EYE_TARGETS, Point


def frame_shape(
    landmarks: np.ndarray, size: int, eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS
) -> np.ndarray:
    """A face's 68 landmarks in the ``size`` output frame after eye alignment (``(68, 2)``)."""
    points = check_landmarks(landmarks)
    return apply(frame_transform(eye_centres(points), size, eye_targets), points)


class ShapeMean:
    """Running mean of ``(68, 2)`` shapes (memory: one ``68×2`` float64 sum)."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = np.zeros((N_LANDMARKS, 2), dtype=np.float64)

    def add(self, shape: np.ndarray) -> None:
        points = np.asarray(shape, dtype=np.float64)
        if points.shape != (N_LANDMARKS, 2):
            raise ValueError(f"shape must be (68, 2), got {points.shape}")
        self._sum += points
        self.count += 1

    def mean(self) -> np.ndarray:
        """The mean shape; ``ValueError`` when nothing was added."""
        if not self.count:
            raise ValueError("no shapes added")
        return self._sum / self.count
