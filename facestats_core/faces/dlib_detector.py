"""dlib's face detectors (HOG, or the CNN MMOD model) with its 68-point shape predictor.

Optional: the ``detect`` extra installs ``dlib-bin`` and ``face-recognition-models``
(which ships ``shape_predictor_68_face_landmarks.dat``; nothing is downloaded at
run time). The MMOD detector needs ``mmod_human_face_detector.dat``, given by path.
The default detector is a CNN (:mod:`facestats_core.faces.cnn_detector`); these are options
(:mod:`facestats_core.faces.detectors` picks one).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facestats_core.faces.detection import DetectedFace

DEFAULT_MIN_SCORE = 0.25
"""HOG detections scoring below this are dropped (dlib's own threshold is 0). On the
real test photos every face scored ≥ 0.37 and the one false positive 0.12."""


def face_recognition_models_dir() -> Path | None:
    """Folder of the ``face_recognition_models`` ``.dat`` files, or None (found without importing
    the package, whose ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder if folder.is_dir() else None


def dlib_version() -> str:
    """Installed dlib version (the ``dlib-bin`` or ``dlib`` distribution), or ``missing``."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    for dist in ("dlib-bin", "dlib"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "missing"


def shape_predictor_file(predictor_path: Path | None = None) -> Path:
    """The 68-point shape predictor: ``predictor_path`` or the one of ``face-recognition-models``."""
    if predictor_path is not None:
        return Path(predictor_path)
    folder = face_recognition_models_dir()
    if folder is not None and (folder / "shape_predictor_68_face_landmarks.dat").is_file():
        return folder / "shape_predictor_68_face_landmarks.dat"
    raise FileNotFoundError("no dlib 68-point shape predictor: pip install face-recognition-models")


@dataclass(frozen=True)
class DlibFaceDetector:
    """dlib HOG (default) or CNN face detector + 68 landmarks per face, best score first.

    ``upsample`` is dlib's pyramid upsampling count: 1 finds faces down to ~40 px in the
    image it is given (2: ~20 px at ~4x the time). Models load lazily on first use.
    """

    upsample: int = 1
    min_score: float = DEFAULT_MIN_SCORE
    cnn_weights: Path | None = None
    predictor_path: Path | None = None
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        kind = "cnn" if self.cnn_weights is not None else "hog"
        return f"dlib-{kind}-{dlib_version()}-up{self.upsample}-s{self.min_score:g}-lm68"

    def _models(self) -> tuple[Any, Any]:
        if "detector" not in self._cache:
            import dlib  # noqa: PLC0415 - optional dependency

            if self.cnn_weights is not None:
                self._cache["detector"] = dlib.cnn_face_detection_model_v1(str(self.cnn_weights))
            else:
                self._cache["detector"] = dlib.get_frontal_face_detector()
            self._cache["predictor"] = dlib.shape_predictor(str(shape_predictor_file(self.predictor_path)))
        return self._cache["detector"], self._cache["predictor"]

    def _rects(self, detector: Any, pixels: np.ndarray) -> list[tuple[Any, float]]:
        if self.cnn_weights is not None:
            return [(d.rect, float(d.confidence)) for d in detector(pixels, self.upsample)
                    if d.confidence >= self.min_score]
        rects, scores, _ = detector.run(pixels, self.upsample, self.min_score)
        return [(rect, float(score)) for rect, score in zip(rects, scores, strict=True)]

    def detect(self, image: Image.Image) -> list[DetectedFace]:
        detector, predictor = self._models()
        pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        found = []
        for rect, score in self._rects(detector, pixels):
            shape = predictor(pixels, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            box = (float(rect.left()), float(rect.top()), float(rect.right() + 1), float(rect.bottom() + 1))
            found.append(DetectedFace(box=box, score=score, landmarks=points))
        return sorted(found, key=lambda face: -face.score)
