"""Resource classes: where data lives, which CLIP runs, how images are preprocessed, labels,
analysis and composite settings. Their defaults are the `Settings` defaults (written once, in
`facestats_dagster.settings`); `defs/resources.py` configures them from the environment. Each
resource builds its core config object with `core_config`, which copies the fields the two share
by name.
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from typing import Any, TypeVar

import dagster as dg

from facestats_core.embedding.clip import ClipConfig, LoadedClip, load_clip
from facestats_core.faces.alignment import AlignmentConfig
from facestats_core.faces.chips import ChipConfig
from facestats_core.faces.face_table import DetectionConfig
from facestats_core.faces.quality import QualityConfig
from facestats_core.io.layout import Layout
from facestats_core.models.regressor import MLPConfig
from facestats_dagster.settings import DEFAULT_CLIP, Settings

ConfigT = TypeVar("ConfigT")


def core_config(resource: dg.ConfigurableResource, config_class: type[ConfigT], **overrides: Any) -> ConfigT:
    """An instance of the core dataclass `config_class` from the resource fields of the same name."""
    names = {f.name for f in fields(config_class)}  # type: ignore[arg-type]
    values = {name: getattr(resource, name) for name in names if name in type(resource).model_fields}
    return config_class(**{**values, **overrides})


class PathsResource(dg.ConfigurableResource):
    """Data and model roots: local paths (relative to the working directory) or fsspec URLs."""

    data_root: str = Settings.data_root
    model_root: str = Settings.model_root

    def layout(self) -> Layout:
        return Layout.from_roots(self.data_root, self.model_root)


class FacesResource(dg.ConfigurableResource):
    """How faces are found, cut out and judged (`facestats_core.faces`: `DetectionConfig`, `ChipConfig`,
    `QualityConfig`).

    `face_mode`: `detect`, `whole` (pre-cropped sets) or `auto`; `multi_face`: `all`, `largest`,
    `skip_multi`; `detector`: `auto` (RetinaFace when installed, else dlib HOG), `retinaface`, `yunet`,
    `dlib` (= `hog`), `dlib-cnn` (needs `cnn_weights`) or `none`; `min_score`: None = the detector's default;
    `landmarks`: a landmarks CSV (raw-image pixels) used for whole-image faces, relative to the data
    root or absolute; empty = none.
    """

    face_mode: str = Settings.face_mode
    multi_face: str = Settings.multi_face
    detector: str = Settings.face_detector
    cnn_weights: str = Settings.cnn_detector_weights
    dlib_upsample: int = 1
    min_score: float | None = None
    max_side: int = Settings.detect_max_side
    workers: int = Settings.detect_workers
    min_face_px: int = Settings.min_face_px
    landmarks: str = Settings.landmarks
    landmarks_prefix: str = ""
    margin: float = Settings.chip_margin
    embed_size: int = ChipConfig.embed_size
    composite_size: int = Settings.composite_size
    jpeg_quality: int = ChipConfig.jpeg_quality
    tiny_px: int = QualityConfig.tiny_px
    blur_threshold: float = QualityConfig.blur_threshold
    max_yaw: float = QualityConfig.max_yaw
    max_pitch: float = QualityConfig.max_pitch
    min_quality_score: float = QualityConfig.min_quality_score
    max_pixels: int = ChipConfig.max_pixels

    def face_detector(self) -> tuple[Any | None, str]:
        """`(detector, name)`; `(None, reason)` when none is configured or installed."""
        from facestats_core.faces.detectors import pick_face_detector

        return pick_face_detector(self.detector, self.dlib_upsample, self.min_score, self.cnn_weights,
                                  max_side=self.max_side, min_face_px=self.min_face_px)

    def detection(self, detector_name: str, face_mode: str | None = None) -> DetectionConfig:
        """The detection settings; `face_mode` overrides this resource's (e.g. for a reference set)."""
        overrides: dict[str, Any] = {"detector_name": detector_name.split(" ")[0]}
        if face_mode is not None:
            overrides["face_mode"] = face_mode
        return core_config(self, DetectionConfig, **overrides)

    def detect_workers(self) -> int:
        """`workers`, with 0 meaning one per CPU core."""
        import os

        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def chips(self) -> ChipConfig:
        return core_config(self, ChipConfig)

    def quality(self) -> QualityConfig:
        """The face-quality thresholds (`facestats_core.faces.quality`)."""
        return core_config(self, QualityConfig)


@lru_cache(maxsize=2)
def _load_cached(config: ClipConfig) -> LoadedClip:
    return load_clip(config)


class ClipResource(dg.ConfigurableResource):
    """The CLIP image encoder (`facestats_core.embedding.clip.ClipConfig`): a Hugging Face id or a
    local `save_pretrained` folder."""

    model: str = DEFAULT_CLIP
    batch_size: int = Settings.clip_batch_size
    precision: str = Settings.clip_precision
    threads: int = Settings.clip_threads
    device: str = Settings.clip_device
    local_files_only: bool = Settings.clip_local_only
    compile: str = Settings.clip_compile
    backend: str = Settings.clip_backend
    cache_dir: str = ""
    """Cache of converted OpenVINO IR (empty: `~/.cache/facestats/openvino`)."""

    def config(self) -> ClipConfig:
        return core_config(self, ClipConfig)

    def load(self) -> LoadedClip:
        """The loaded model, cached per process (several shards in one run load it once)."""
        return _load_cached(self.config())


class LabelsResource(dg.ConfigurableResource):
    """Label and rating files, relative to the data root (or absolute, or URLs). Empty = not
    configured. `fairface_prefix` is prepended to FairFace `file` entries when the FairFace tree
    sits in a sub-folder of `raw/` (e.g. `fairface/`)."""

    fairface_labels: str = Settings.fairface_labels
    fairface_prefix: str = Settings.fairface_prefix
    truth_labels: str = Settings.truth_labels
    manual_labels: str = Settings.manual_labels
    ratings: str = Settings.ratings
    manual_ratings: str = Settings.manual_ratings


class AnalysisResource(dg.ConfigurableResource):
    """Model-training and flagging settings of the attribute and attractiveness stages."""

    seed: int = Settings.seed
    attractiveness_cv_folds: int = Settings.cv_folds
    """k of the k-fold cross-validation reported next to the held-out split (0 or 1: off)."""
    min_accuracy_gender: float = 0.6
    min_accuracy_age: float = 0.25
    min_accuracy_ethnicity: float = 0.3
    low_confidence_gender: float = 0.6
    low_confidence_age: float = 0.3
    low_confidence_ethnicity: float = 0.4
    duplicate_threshold: float = 0.97
    clusters: int = 8
    cluster_pca_dim: int = 32
    mlp_hidden: list[int] = list(MLPConfig.hidden)
    mlp_dropout: float = MLPConfig.dropout
    mlp_max_epochs: int = MLPConfig.max_epochs
    mlp_patience: int = MLPConfig.patience

    def accuracy_floors(self) -> dict[str, float]:
        return {attr: getattr(self, f"min_accuracy_{attr}") for attr in ("gender", "age", "ethnicity")}

    def low_confidence(self) -> dict[str, float]:
        return {attr: getattr(self, f"low_confidence_{attr}") for attr in ("gender", "age", "ethnicity")}


class ModelsResource(dg.ConfigurableResource):
    """Where the attribute probes and the regressor come from: a `bundle` to apply when set, else
    a labelled reference set (`reference_root` with `raw/` and the label / rating files, relative
    to it), else the analysed set's own labels, else CLIP zero-shot prompts (no regressor then);
    and the open-vocabulary tag prompts (`tags_file`, relative to the working directory)."""

    reference_root: str = Settings.reference_root
    reference_labels: str = Settings.reference_labels
    reference_ratings: str = Settings.reference_ratings
    reference_face_mode: str = Settings.reference_face_mode
    bundle: str = Settings.models_bundle
    tags_file: str = Settings.tags_file
    oof_folds: int = 5

    def compatible_bundle(self, clip: LoadedClip, chip_version: str) -> Any:
        """The configured bundle, read sha256-checked and refused (`BundleMismatchError`) when made with
        another CLIP or chip version; `ModelIntegrityError` when missing or corrupt."""
        from facestats_core.models.bundle import check_compatible, read_bundle

        bundle = read_bundle(self.bundle)
        check_compatible(bundle, clip.model_id, clip.revision, clip.dim, None, chip_version)
        return bundle

    def reference_layout(self) -> Layout | None:
        """The reference set's artifact tree (its models never go there), or None when not configured."""
        if not self.reference_root:
            return None
        return Layout.from_roots(self.reference_root, self.reference_root)


class CompositesResource(dg.ConfigurableResource):
    """Composites: where specs come from, how many faces they need, how chips are aligned.

    Composites average the faces' composite chips (`FacesResource.composite_size`). `method`:
    `warp` (each chip warped onto the mean 68-point shape), `eyes` (similarity-aligned so the eyes
    land on `eye_targets`, fractions of the side) or `none`, for specs without `method=`;
    `background`: `average` or `transparent` (outside the face hull, warp only).
    `min_confidence`: a predicted gender or ethnicity counts for a spec's term only at this
    probability or more (`facestats_core.composites.confidence`).
    `specs_file` (`config/composites.yaml`) is relative to the working directory.
    """

    specs_file: str = Settings.composites_config
    min_faces: int = Settings.min_faces
    relax: bool = Settings.relax
    min_confidence: float = Settings.composite_min_confidence
    method: str = Settings.composite_method
    background: str = Settings.composite_background
    eye_targets: list[float] = [0.35, 0.40, 0.65, 0.40]
    jpeg_quality: int = AlignmentConfig.jpeg_quality
    image_format: str = "png"

    def alignment(self) -> AlignmentConfig:
        lx, ly, rx, ry = self.eye_targets
        return core_config(self, AlignmentConfig, eye_targets=((lx, ly), (rx, ry)))
