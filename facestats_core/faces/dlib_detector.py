"""dlib's face detectors (HOG, or the CNN MMOD model) with its 68-point shape predictor.

Optional: the ``detect`` extra installs ``dlib-bin`` and ``face-recognition-models``
(which ships ``shape_predictor_68_face_landmarks.dat``; nothing is downloaded at
run time). The CNN detector needs ``mmod_human_face_detector.dat``, given by path.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facestats_core.faces.detection import DetectedFace, FaceDetector

DETECTOR_CHOICES: tuple[str, ...] = ("auto", "dlib", "dlib-cnn", "none")
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
        return f"dlib-{kind}-up{self.upsample}-s{self.min_score:g}-lm68"

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


def pick_face_detector(
    choice: str, upsample: int = 1, min_score: float = DEFAULT_MIN_SCORE, cnn_weights: str = ""
) -> tuple[FaceDetector | None, str]:
    """The detector a setting names, as ``(detector, name)``.

    ``auto`` is dlib HOG when dlib and the shape predictor are installed, else
    ``(None, reason)``; ``dlib`` / ``dlib-cnn`` without them raise with the line that fixes it;
    ``none`` disables detection (only ``face_mode=whole`` then finds faces).
    """
    wanted = choice.lower()
    if wanted not in DETECTOR_CHOICES:
        raise ValueError(f"detector must be one of {', '.join(DETECTOR_CHOICES)}, got {choice!r}")
    if wanted == "none":
        return None, "none (disabled)"
    missing = None
    if importlib.util.find_spec("dlib") is None:
        missing = "dlib not installed: pip install 'facestats[detect]' (dlib-bin, face-recognition-models)"
    elif face_recognition_models_dir() is None:
        missing = "no dlib shape predictor: pip install face-recognition-models"
    if missing is not None:
        if wanted == "auto":
            return None, f"none ({missing})"
        raise ImportError(f"detector={wanted}: {missing}")
    weights = None
    if wanted == "dlib-cnn":
        if not cnn_weights or not Path(cnn_weights).is_file():
            raise FileNotFoundError(
                f"detector=dlib-cnn needs mmod_human_face_detector.dat: set FACESTATS_CNN_DETECTOR_WEIGHTS "
                f"(got {cnn_weights!r})"
            )
        weights = Path(cnn_weights)
    detector = DlibFaceDetector(upsample=upsample, min_score=min_score, cnn_weights=weights)
    return detector, detector.name
