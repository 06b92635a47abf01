"""The face detector a setting names: RetinaFace by default, YuNet, dlib HOG or MMOD, or none."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facestats_core.faces.cnn_detector import MODELS, CnnFaceDetector
from facestats_core.faces.detection import DEFAULT_MAX_SIDE, FaceDetector
from facestats_core.faces.dlib_detector import DEFAULT_MIN_SCORE, DlibFaceDetector, face_recognition_models_dir

DETECTOR_CHOICES: tuple[str, ...] = ("auto", "retinaface", "yunet", "dlib", "hog", "dlib-cnn", "none")
"""``hog`` is another name of ``dlib`` (dlib's HOG detector)."""
DEFAULT_CNN = "retinaface"
_INSTALL = "pip install 'facestats[detect]'"
_MODULES = {"retinaface": ("retinaface", "onnxruntime"), "yunet": ("yuface",)}


def _missing_dlib() -> str | None:
    if importlib.util.find_spec("dlib") is None:
        return f"dlib not installed: {_INSTALL} (dlib-bin, face-recognition-models)"
    if face_recognition_models_dir() is None:
        return "no dlib shape predictor: pip install face-recognition-models"
    return None


def _missing_cnn(model: str) -> str | None:
    absent = [name for name in _MODULES[model] if importlib.util.find_spec(name) is None]
    if absent:
        return f"{model} needs {MODELS[model].package} ({', '.join(absent)} missing): {_INSTALL}"
    return _missing_dlib()  # the 68 landmarks come from dlib's shape predictor


def resolved_choice(choice: str) -> str:
    """The detector ``choice`` stands for on this machine (``auto`` → ``retinaface`` when installed,
    else ``dlib``; ``hog`` → ``dlib``), without building it; ``none`` when ``auto`` finds nothing."""
    wanted = choice.lower()
    if wanted not in DETECTOR_CHOICES:
        raise ValueError(f"detector must be one of {', '.join(DETECTOR_CHOICES)}, got {choice!r}")
    if wanted == "hog":
        return "dlib"
    if wanted == "auto":
        if _missing_cnn(DEFAULT_CNN) is None:
            return DEFAULT_CNN
        return "dlib" if _missing_dlib() is None else "none"
    return wanted


DLIB_QUALITY_SCORE = 0.5


def quality_score(choice: str) -> float:
    """The detection score below which a face of the ``choice`` detector is judged ``low_score``: on
    the CNNs' probability scale their ``CnnModel.quality_score``, on dlib's SVM-margin scale 0.5 (the
    group photo's faces score 0.37-2.8)."""
    name = resolved_choice(choice)
    return MODELS[name].quality_score if name in MODELS else DLIB_QUALITY_SCORE


def pick_face_detector(
    choice: str, upsample: int = 1, min_score: float | None = None, cnn_weights: str = "",
    max_side: int = DEFAULT_MAX_SIDE, min_face_px: int = 24,
) -> tuple[FaceDetector | None, str]:
    """The detector a setting names, as ``(detector, name)``.

    ``auto`` is RetinaFace when its packages are installed, else dlib HOG, else ``(None, reason)``;
    a named detector whose packages are missing raises with the line that fixes it; ``none``
    disables detection (only ``face_mode=whole`` then finds faces). ``min_score`` None means the
    detector's own default; ``max_side`` and ``min_face_px`` bound the CNN's copies and tiles
    (dlib is given the copy bounded to ``max_side`` by the caller).
    """
    wanted = resolved_choice(choice)
    if wanted == "none":
        return None, "none (disabled)" if choice.lower() == "none" else f"none ({_missing_cnn(DEFAULT_CNN)})"
    if wanted in MODELS:
        missing = _missing_cnn(wanted)
        if missing is not None:
            raise ImportError(f"detector={wanted}: {missing}")
        cnn = CnnFaceDetector(model=wanted, min_score=min_score, max_side=max_side, min_face_px=min_face_px)
        return cnn, cnn.name
    missing = _missing_dlib()
    if missing is not None:
        raise ImportError(f"detector={wanted}: {missing}")
    weights = None
    if wanted == "dlib-cnn":
        if not cnn_weights or not Path(cnn_weights).is_file():
            raise FileNotFoundError(
                f"detector=dlib-cnn needs mmod_human_face_detector.dat: set FACESTATS_CNN_DETECTOR_WEIGHTS "
                f"(got {cnn_weights!r})"
            )
        weights = Path(cnn_weights)
    score = DEFAULT_MIN_SCORE if min_score is None else min_score
    detector = DlibFaceDetector(upsample=upsample, min_score=score, cnn_weights=weights)
    return detector, detector.name
