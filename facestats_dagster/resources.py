"""Configurable resources: where data lives, which CLIP runs, how images are preprocessed.

Defaults come from environment variables (see ``from_env``) so cron jobs and
deployments configure FaceStats without editing code.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import dagster as dg
from upath import UPath

from facestats_core.faces.alignment import AlignmentConfig
from facestats_core.embedding.clip import DEFAULT_MODEL, ClipConfig, LoadedClip, load_clip
from facestats_core.io.layout import Layout, to_upath
from facestats_core.images.preprocess import PreprocessConfig


class PathsResource(dg.ConfigurableResource):
    """Data and model roots: local paths (relative to the working directory) or fsspec URLs."""

    data_root: str = "data"
    model_root: str = "models"

    def layout(self) -> Layout:
        return Layout.from_roots(self.data_root, self.model_root)


class PreprocessResource(dg.ConfigurableResource):
    """Settings of ``facestats_core.images.preprocess.PreprocessConfig``."""

    size: int = 256
    jpeg_quality: int = 95
    max_pixels: int = 80_000_000
    tiny_side: int = 64
    blur_threshold: float = 20.0

    def config(self) -> PreprocessConfig:
        return PreprocessConfig(
            size=self.size,
            jpeg_quality=self.jpeg_quality,
            max_pixels=self.max_pixels,
            tiny_side=self.tiny_side,
            blur_threshold=self.blur_threshold,
        )


@lru_cache(maxsize=2)
def _load_cached(config: ClipConfig) -> LoadedClip:
    return load_clip(config)


class ClipResource(dg.ConfigurableResource):
    """The CLIP image encoder: a Hugging Face id or a local ``save_pretrained`` folder."""

    model: str = DEFAULT_MODEL
    batch_size: int = 32
    precision: str = "fp32"
    threads: int = 0
    device: str = "cpu"
    local_files_only: bool = False
    compile: bool = False

    def config(self) -> ClipConfig:
        return ClipConfig(
            model=self.model,
            batch_size=self.batch_size,
            precision=self.precision,  # type: ignore[arg-type]
            threads=self.threads,
            device=self.device,
            local_files_only=self.local_files_only,
            compile=self.compile,
        )

    def load(self) -> LoadedClip:
        """The loaded model, cached per process (several shards in one run load it once)."""
        return _load_cached(self.config())


class LabelsResource(dg.ConfigurableResource):
    """Label and rating files, relative to the data root (or absolute). Empty = not configured.

    ``fairface_prefix`` is prepended to FairFace ``file`` entries when the
    FairFace tree sits in a sub-folder of ``raw/`` (e.g. ``fairface/``).
    """

    fairface_labels: str = "labels/fairface_labels.csv"
    fairface_prefix: str = ""
    manual_labels: str = "labels/manual_labels.csv"
    ratings: str = "labels/scut_ratings.csv"
    manual_ratings: str = ""

    def resolve(self, layout: Layout, value: str) -> Any | None:
        """The file a setting points at (UPath), or None when the setting is empty."""
        if not value:
            return None
        if "://" in value or UPath(value).is_absolute():
            return to_upath(value)
        return layout.data_root / value


class AnalysisResource(dg.ConfigurableResource):
    """Model-training and flagging settings of the attribute and attractiveness stages."""

    seed: int = 0
    min_accuracy_gender: float = 0.6
    min_accuracy_age: float = 0.25
    min_accuracy_ethnicity: float = 0.3
    low_confidence_gender: float = 0.6
    low_confidence_age: float = 0.3
    low_confidence_ethnicity: float = 0.4
    duplicate_threshold: float = 0.97
    clusters: int = 8
    cluster_pca_dim: int = 32
    mlp_hidden: list[int] = [256, 64]
    mlp_dropout: float = 0.2
    mlp_max_epochs: int = 200
    mlp_patience: int = 15
    # k of the k-fold cross-validation reported next to the held-out split (0 or 1: off)
    attractiveness_cv_folds: int = 5

    def accuracy_floors(self) -> dict[str, float]:
        return {
            "gender": self.min_accuracy_gender,
            "age": self.min_accuracy_age,
            "ethnicity": self.min_accuracy_ethnicity,
        }

    def low_confidence(self) -> dict[str, float]:
        return {
            "gender": self.low_confidence_gender,
            "age": self.low_confidence_age,
            "ethnicity": self.low_confidence_ethnicity,
        }


class CompositesResource(dg.ConfigurableResource):
    """Aligned faces and composites: where specs come from, how faces are aligned, how many are needed.

    ``landmarks``: eye landmarks file (``file,left_eye_x,left_eye_y,right_eye_x,right_eye_y``
    in raw-image pixels, or CelebA's landmark list), relative to the data root
    or absolute; empty = none. ``detector``: ``auto`` (dlib when installed),
    ``dlib`` or ``none``, tried for images the landmarks file lacks.
    ``align = False`` averages the unaligned preprocessed squares instead.
    ``specs_file`` (``config/composites.yaml``) is relative to the working directory.
    """

    specs_file: str = "config/composites.yaml"
    min_faces: int = 10
    relax: bool = False
    align: bool = True
    landmarks: str = "labels/demo_truth.csv"
    landmarks_prefix: str = ""
    detector: str = "auto"
    dlib_upsample: int = 1
    output_size: int = 256
    eye_targets: list[float] = [0.35, 0.40, 0.65, 0.40]
    jpeg_quality: int = 95
    image_format: str = "png"

    def alignment(self) -> AlignmentConfig:
        lx, ly, rx, ry = self.eye_targets
        return AlignmentConfig(
            output_size=self.output_size, eye_targets=((lx, ly), (rx, ry)), jpeg_quality=self.jpeg_quality
        )

    def landmarks_file(self, layout: Layout) -> Any | None:
        if not self.landmarks:
            return None
        if "://" in self.landmarks or UPath(self.landmarks).is_absolute():
            return to_upath(self.landmarks)
        return layout.data_root / self.landmarks

    def eye_detector(self) -> tuple[Any | None, str]:
        """``(detector, name)``; ``(None, reason)`` when none is configured or available."""
        choice = self.detector.lower()
        if choice not in ("auto", "dlib", "none"):
            raise ValueError(f"detector must be auto, dlib or none, got {self.detector!r}")
        if choice == "none":
            return None, "none (disabled)"
        from facestats_core.faces.alignment import DlibDetector, face_recognition_models_dir

        try:
            import dlib  # noqa: F401, PLC0415 - optional
        except ImportError:
            if choice == "dlib":
                raise ImportError("detector=dlib needs: pip install dlib-bin face-recognition-models") from None
            return None, "none (dlib not installed)"
        if face_recognition_models_dir() is None:
            if choice == "dlib":
                raise FileNotFoundError("detector=dlib needs a shape predictor: pip install face-recognition-models")
            return None, "none (no dlib shape predictor)"
        return DlibDetector(upsample=self.dlib_upsample), "dlib"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


CLIP_POINTER_FILE = "CLIP_MODEL"
"""A one-line file in the model root naming the CLIP to use when FACESTATS_CLIP_MODEL is unset
(``facestats demo`` writes it, so the UI, cron and ``facestats score`` use the demo's model)."""


def default_clip_model(model_root: str) -> str:
    """FACESTATS_CLIP_MODEL, else the model root's CLIP_MODEL pointer file, else ViT-B/32."""
    explicit = os.environ.get("FACESTATS_CLIP_MODEL")
    if explicit:
        return explicit
    pointer = Layout.from_roots("data", model_root).model_root / CLIP_POINTER_FILE
    if pointer.exists():
        named = pointer.read_text().strip()
        if named:
            return named
    return DEFAULT_MODEL


def from_env() -> dict[str, dg.ConfigurableResource]:
    """Resources configured from ``FACESTATS_*`` environment variables."""
    model_root = _env("FACESTATS_MODEL_ROOT", "models")
    return {
        "paths": PathsResource(data_root=_env("FACESTATS_DATA_ROOT", "data"), model_root=model_root),
        "preprocess": PreprocessResource(size=int(_env("FACESTATS_IMAGE_SIZE", "256"))),
        "labels": LabelsResource(
            fairface_labels=os.environ.get("FACESTATS_FAIRFACE_LABELS", "labels/fairface_labels.csv"),
            fairface_prefix=os.environ.get("FACESTATS_FAIRFACE_PREFIX", ""),
            manual_labels=os.environ.get("FACESTATS_MANUAL_LABELS", "labels/manual_labels.csv"),
            ratings=os.environ.get("FACESTATS_RATINGS", "labels/scut_ratings.csv"),
            manual_ratings=os.environ.get("FACESTATS_MANUAL_RATINGS", ""),
        ),
        "analysis": AnalysisResource(
            seed=int(_env("FACESTATS_SEED", "0")), attractiveness_cv_folds=int(_env("FACESTATS_CV_FOLDS", "5"))
        ),
        "composites": CompositesResource(
            specs_file=_env("FACESTATS_COMPOSITES_CONFIG", "config/composites.yaml"),
            min_faces=int(_env("FACESTATS_MIN_FACES", "10")),
            relax=_env("FACESTATS_RELAX", "0") == "1",
            align=_env("FACESTATS_ALIGN", "1") != "0",
            landmarks=os.environ.get("FACESTATS_LANDMARKS", "labels/demo_truth.csv"),
            detector=_env("FACESTATS_FACE_DETECTOR", "auto"),
            output_size=int(_env("FACESTATS_ALIGN_SIZE", "256")),
        ),
        "clip": ClipResource(
            model=default_clip_model(model_root),
            batch_size=int(_env("FACESTATS_CLIP_BATCH_SIZE", "32")),
            precision=_env("FACESTATS_CLIP_PRECISION", "fp32"),
            threads=int(_env("FACESTATS_CLIP_THREADS", "0")),
            device=_env("FACESTATS_CLIP_DEVICE", "cpu"),
            local_files_only=_env("FACESTATS_CLIP_LOCAL_ONLY", "0") == "1",
            compile=_env("FACESTATS_CLIP_COMPILE", "0") == "1",
        ),
    }
