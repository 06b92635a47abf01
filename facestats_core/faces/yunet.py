"""YuNet (libfacedetection, Shiqi Yu et al.; BSD-3) through the ``yuface`` wheel, weights compiled in.

Runs the network on one RGB array: boxes, scores (0-1) and the 5 points (image-left eye,
image-right eye, nose tip, left and right mouth corner of an upright face) in that array's
pixel-index coordinates. libfacedetection reports integer pixels and runs its own NMS;
its OpenMP threads follow ``threads`` (0: the library's default, every core).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PACKAGE = "yuface"


def package_version() -> str | None:
    """Installed ``yuface`` version, or None."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


@dataclass(frozen=True)
class YuNetNet:
    """libfacedetection's YuNet with ``threads`` OpenMP threads (0: its default)."""

    threads: int = 0

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(scores (n,), boxes (n, 4) x0 y0 x1 y1, points (n, 5, 2))`` of an ``h×w×3`` uint8 RGB array."""
        from yuface.yuface import detect  # noqa: PLC0415 - optional dependency (the C function: no size warning)

        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        if self.threads > 0:
            from threadpoolctl import threadpool_limits  # noqa: PLC0415

            with threadpool_limits(self.threads, user_api="openmp"):
                result = np.asarray(detect(bgr), dtype=np.float64)
        else:
            result = np.asarray(detect(bgr), dtype=np.float64)
        if result.size == 0:
            return np.zeros(0), np.zeros((0, 4)), np.zeros((0, 5, 2))
        result = result.reshape(-1, result.shape[-1])
        scores = result[:, 0] / 100.0
        x, y, w, h = result[:, 1], result[:, 2], result[:, 3], result[:, 4]
        boxes = np.stack([x, y, x + w, y + h], axis=1)
        return scores, boxes, result[:, 5:15].reshape(-1, 5, 2)
