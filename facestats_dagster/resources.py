"""Resource classes: where data lives, which CLIP runs, how faces are found and cut out, labels,
analysis and composite settings.

Every user setting is declared here once, as a resource field whose default is
`setting(default, help, env=...)` (`facestats_dagster.setting`); `facestats_dagster.settings`
loads them (flag > environment > project file > default) and generates the flags, the project
file and README's table from these fields. A resource builds its core config object
(`DetectionConfig`, `ChipConfig`, `ClipConfig`, `AlignmentConfig`) field by field, by name.
"""

from __future__ import annotations

import gc
from functools import lru_cache
from typing import Any

import dagster as dg

from facestats_core.attractiveness.training import MLPConfig
from facestats_core.embedding.config import DEFAULT_MODEL, ClipConfig
from facestats_core.embedding.loader import load_clip
from facestats_core.embedding.tower import LoadedClip
from facestats_core.faces.alignment import AlignmentConfig
from facestats_core.faces.chips import ChipConfig
from facestats_core.faces.detectors import DETECTOR_CHOICES, pick_face_detector, quality_score
from facestats_core.faces.face_table import DetectionConfig
from facestats_core.faces.quality import QualityConfig
from facestats_core.io.layout import Layout
from facestats_core.models.bundle import check_compatible, read_bundle
from facestats_dagster.setting import setting

class PathsResource(dg.ConfigurableResource):
    """Data and model roots: local paths (relative to the working directory) or fsspec URLs."""

    data_root: str = setting(
        "data", "data root: the parquet artifacts (`processed/`), label files (`labels/`) and, unless `photos` "
        "is set, the photos (`raw/`); a local path or fsspec URL", env="FACESTATS_DATA_ROOT", path=True)
    model_root: str = setting("models", "trained models and local CLIP folders", env="FACESTATS_MODEL_ROOT",
                              path=True)
    photos: str = setting(
        "", "the folder of photos to analyse, read in place and never modified (empty: `<data root>/raw`)",
        env="FACESTATS_PHOTOS", path=True, shown="(empty: `<data root>/raw`)")

    def layout(self) -> Layout:
        return Layout.from_roots(self.data_root, self.model_root, self.photos or None)


class FacesResource(dg.ConfigurableResource):
    """How faces are found, cut out and judged (`facestats_core.faces`: `DetectionConfig`, `ChipConfig`,
    `QualityConfig`).

    `face_mode`: `detect`, `whole` (pre-cropped sets) or `auto`; `multi_face`: `all`, `largest`,
    `skip_multi`; `detector`: `auto` (RetinaFace when installed, else dlib HOG), `retinaface`, `yunet`,
    `dlib` (= `hog`), `dlib-cnn` (needs `cnn_weights`) or `none`; `min_score`: None = the detector's default;
    `landmarks`: a landmarks CSV (raw-image pixels) used for whole-image faces, relative to the data
    root or absolute; empty = none.
    """

    face_mode: str = setting(
        "detect", "`detect` (photos: find every face), `whole` (pre-cropped face sets: the image is the face), "
        "`auto` (detect; a near-square portrait with no face found is used whole)", env="FACESTATS_FACE_MODE",
        choices=("detect", "whole", "auto"))
    multi_face: str = setting("all", "faces kept per image: `all`, `largest`, `skip_multi` (images with several "
                              "faces get reason `skipped_multi`)", env="FACESTATS_MULTI_FACE",
                              choices=("all", "largest", "skip_multi"))
    detector: str = setting(
        "auto", "`retinaface` (RetinaFace-MobileNet0.25 on onnxruntime), `yunet` (libfacedetection), `dlib` or "
        "`hog` (dlib HOG, 2009), `dlib-cnn` (MMOD), `none`, `auto` (RetinaFace when the detect extra is installed, "
        "else dlib HOG); the detector's name and version are part of the detection cache key",
        env="FACESTATS_FACE_DETECTOR", choices=DETECTOR_CHOICES)
    cnn_weights: str = setting("", "`mmod_human_face_detector.dat` for `dlib-cnn`",
                               env="FACESTATS_CNN_DETECTOR_WEIGHTS", empty_ok=True, path=True)
    dlib_upsample: int = 1
    min_score: float | None = None
    max_side: int = setting(1600, "longest side of the copy the detector sees (boxes are mapped back to the "
                            "original); a CNN detector also searches larger photos in full-resolution tiles of "
                            "this side, so no face of `min_face_px` is lost", env="FACESTATS_DETECT_MAX_SIDE")
    workers: int = setting(0, "processes that detect faces in parallel, one core each (`0`: one per CPU core, "
                           "`1`: in the step's process, where a CNN detector uses every core)",
                           env="FACESTATS_DETECT_WORKERS")
    min_face_px: int = setting(24, "smaller faces (box side, original pixels) get reason `face_too_small`",
                               env="FACESTATS_MIN_FACE_PX")
    landmarks: str = setting("labels/demo_truth.csv", "landmarks CSV (raw-image coordinates) for whole-image "
                             "faces, relative to the data root", env="FACESTATS_LANDMARKS", empty_ok=True)
    landmarks_prefix: str = ""
    margin: float = setting(0.25, "padding around the face box on each side, as a fraction of the box "
                            "(FairFace: 0.25)", env="FACESTATS_CHIP_MARGIN")
    embed_size: int = ChipConfig.embed_size
    composite_size: int = setting(512, "side of composite face chips and composites",
                                  env="FACESTATS_COMPOSITE_SIZE")
    jpeg_quality: int = ChipConfig.jpeg_quality
    tiny_px: int = QualityConfig.tiny_px
    blur_threshold: float = QualityConfig.blur_threshold
    max_yaw: float = QualityConfig.max_yaw
    max_pitch: float = QualityConfig.max_pitch
    min_quality_score: float | None = None
    max_pixels: int = ChipConfig.max_pixels

    def face_detector(self) -> tuple[Any | None, str]:
        """`(detector, name)`; `(None, reason)` when none is configured or installed."""

        return pick_face_detector(self.detector, self.dlib_upsample, self.min_score, self.cnn_weights,
                                  max_side=self.max_side, min_face_px=self.min_face_px)

    def detection(self, detector_name: str, face_mode: str | None = None) -> DetectionConfig:
        """The detection settings; `face_mode` overrides this resource's (e.g. for a reference set)."""
        return DetectionConfig(
            face_mode=self.face_mode if face_mode is None else face_mode, multi_face=self.multi_face,
            max_side=self.max_side, min_face_px=self.min_face_px, max_pixels=self.max_pixels,
            detector_name=detector_name.split(" ")[0])

    def detect_workers(self) -> int:
        """`workers`, with 0 meaning one per CPU core."""
        import os

        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def chips(self) -> ChipConfig:
        return ChipConfig(margin=self.margin, embed_size=self.embed_size, composite_size=self.composite_size,
                          jpeg_quality=self.jpeg_quality, max_pixels=self.max_pixels)

    def quality(self) -> QualityConfig:
        """The face-quality thresholds (`facestats_core.faces.quality`); `min_quality_score` None: the
        configured detector's own (`facestats_core.faces.detectors.quality_score`)."""
        score = quality_score(self.detector) if self.min_quality_score is None else self.min_quality_score
        return QualityConfig(tiny_px=self.tiny_px, blur_threshold=self.blur_threshold, max_yaw=self.max_yaw,
                             max_pitch=self.max_pitch, min_quality_score=score)


@lru_cache(maxsize=2)
def _load_cached(config: ClipConfig) -> LoadedClip:
    return load_clip(config)


class ClipResource(dg.ConfigurableResource):
    """The CLIP image encoder (`facestats_core.embedding.config.ClipConfig`): a Hugging Face id or a
    local `save_pretrained` folder."""

    model: str = setting(DEFAULT_MODEL, "Hugging Face id or a local `save_pretrained` folder",
                         env="FACESTATS_CLIP_MODEL")
    batch_size: int = setting(32, "images per forward pass", env="FACESTATS_CLIP_BATCH_SIZE")
    precision: str = setting(
        "auto", "`auto` (bf16 where the hardware runs it natively: CPUs with AVX-512-BF16 or AMX, CUDA GPUs with "
        "bf16; else fp32), `fp32`, `bf16` (cosine to fp32 ≥ 0.9999, 2.5–3.4× faster on AVX-512-BF16 CPUs) or "
        "`int8` (OpenVINO only: calibrated on ≤ 300 of the data set's faces, its cosine to fp32 measured and "
        "logged); embeddings record the precision used", env="FACESTATS_CLIP_PRECISION",
        choices=("auto", "fp32", "bf16", "int8"))
    threads: int = setting(0, "torch threads (0 = torch default)", env="FACESTATS_CLIP_THREADS")
    device: str = setting("cpu", "e.g. `cuda`", env="FACESTATS_CLIP_DEVICE")
    local_files_only: bool = setting(False, "`1`: never contact the hub", env="FACESTATS_CLIP_LOCAL_ONLY")
    compile: str = setting(
        "auto", "`torch.compile` the image tower: `auto` (when one shard has at least 2000 faces to embed: the "
        "start-up, 10–90 s on 2 cores, then pays for itself), `1` (always) or `0` (never); a failed compilation "
        "logs a warning and embeds eagerly", env="FACESTATS_CLIP_COMPILE")
    backend: str = setting(
        "torch", "image tower on `torch`, `openvino` (the `openvino` extra, installed by `make`) or `auto`: "
        "OpenVINO for `bf16` on CPUs with native bf16 and for `int8`, torch otherwise (fp32 stays on torch); the "
        "embeddings record it (`openvino-bf16` …) and are never mixed", env="FACESTATS_CLIP_BACKEND",
        choices=("torch", "openvino", "auto"))
    cache_dir: str = ""
    """Cache of converted OpenVINO IR (empty: `~/.cache/facestats/openvino`)."""

    def config(self) -> ClipConfig:
        return ClipConfig(model=self.model, batch_size=self.batch_size, precision=self.precision,  # type: ignore[arg-type]
                          threads=self.threads, device=self.device, local_files_only=self.local_files_only,
                          compile=self.compile, backend=self.backend, cache_dir=self.cache_dir)  # type: ignore[arg-type]

    def load(self) -> LoadedClip:
        """The loaded model, cached per process until :meth:`release` (a step that calls it twice loads once)."""
        return _load_cached(self.config())

    def release(self) -> None:
        """Forget this process's loaded CLIP models: each step that loads one releases it when done, so the
        weights (and a compiled tower: 0.5-1 GB together for ViT-B/32) are not held through the steps after it
        (the composites, statistics and model training run in the same process). A later `load` reads the
        model again: a second or two, its files still in the page cache."""
        _load_cached.cache_clear()
        gc.collect()


class LabelsResource(dg.ConfigurableResource):
    """Label and rating files, relative to the data root (or absolute, or URLs). Empty = not
    configured. `fairface_prefix` is prepended to FairFace `file` entries when the FairFace tree
    sits in a sub-folder of `raw/` (e.g. `fairface/`)."""

    fairface_labels: str = setting(
        "labels/fairface_labels.csv", "FairFace-format labels (relative to the data root, or absolute)",
        env="FACESTATS_FAIRFACE_LABELS", empty_ok=True)
    fairface_prefix: str = setting("", "prefix of FairFace `file` entries under the photos folder, e.g. "
                                   "`fairface/`", env="FACESTATS_FAIRFACE_PREFIX", empty_ok=True)
    truth_labels: str = setting(
        "", "FairFace-format true labels used only to evaluate (the true shares of `face_statistics`, the purity "
        "of composites), never to train or as final values (empty: the statistics use the data set's own labels, "
        "no purity)", env="FACESTATS_TRUTH_LABELS", empty_ok=True)
    manual_labels: str = setting("labels/manual_labels.csv", "manual overrides `filename,gender,age,ethnicity` "
                                 "(optional)", env="FACESTATS_MANUAL_LABELS", empty_ok=True)
    ratings: str = setting(
        "labels/scut_ratings.csv", "SCUT-FBP5500-format ratings; none (and no reference set or bundle): the "
        "attractiveness assets are skipped, the rest builds", env="FACESTATS_RATINGS", empty_ok=True)
    manual_ratings: str = setting("", "manual ratings that override the data set's", env="FACESTATS_MANUAL_RATINGS",
                                  empty_ok=True)


class AnalysisResource(dg.ConfigurableResource):
    """Model-training and flagging settings of the attribute and attractiveness stages."""

    seed: int = setting(0, "seed of splits, models and clustering", env="FACESTATS_SEED")
    attractiveness_cv_folds: int = setting(
        5, "k of the attractiveness regressor's k-fold cross-validation (`0`: held-out split only)",
        env="FACESTATS_CV_FOLDS")
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

    reference_root: str = setting(
        "", "a labelled reference set to train the probes and the regressor on: a folder with `raw/` images and "
        "the label / rating files below (empty: train on the analysed set's own labels, else zero-shot); a "
        "bundle wins over both", env="FACESTATS_REFERENCE_ROOT", empty_ok=True, path=True)
    reference_labels: str = setting("labels/fairface_labels.csv", "FairFace-format labels of the reference set "
                                    "(relative to it)", env="FACESTATS_REFERENCE_LABELS", empty_ok=True)
    reference_ratings: str = setting("labels/scut_ratings.csv", "SCUT-format ratings of the reference set "
                                     "(relative to it)", env="FACESTATS_REFERENCE_RATINGS", empty_ok=True)
    reference_face_mode: str = setting("whole", "face mode of the reference set (FairFace and SCUT-FBP5500 "
                                       "images are pre-cropped faces)", env="FACESTATS_REFERENCE_FACE_MODE",
                                       choices=("detect", "whole", "auto"))
    bundle: str = setting("", "a model bundle (path or URL) to apply instead of training (wins over labels): no "
                          "labels or ratings needed", env="FACESTATS_MODELS", flag="--bundle", empty_ok=True,
                          path=True)
    tags_file: str = setting("config/tags.yaml", "open-vocabulary tag prompts (zero-shot, one `tag_<name>` "
                             "probability column each; empty: no tags)", env="FACESTATS_TAGS", flag="--tags",
                             empty_ok=True, path=True)
    oof_folds: int = 5

    def compatible_bundle(self, clip: LoadedClip, chip_version: str) -> Any:
        """The configured bundle, read sha256-checked and refused (`BundleMismatchError`) when made with
        another CLIP or chip version; `ModelIntegrityError` when missing or corrupt."""

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

    specs_file: str = setting("config/composites.yaml", "the filter specs to build",
                              env="FACESTATS_COMPOSITES_CONFIG", path=True)
    min_faces: int = setting(10, "fewest matching faces for a composite", env="FACESTATS_MIN_FACES")
    relax: bool = setting(False, "`1`: drop filter terms (recorded) when too few faces match, instead of "
                          "recording the spec as not built", env="FACESTATS_RELAX")
    min_confidence: float = setting(
        0.9, "a predicted gender or ethnicity counts for a composite's `gender=`/`ethnicity=` term only at this "
        "probability or more (`0`: every prediction)", env="FACESTATS_COMPOSITE_MIN_CONFIDENCE")
    method: str = setting("warp", "`warp` (68-point landmarks onto the mean shape) / `eyes` / `none`, for specs "
                          "without `method=`", env="FACESTATS_COMPOSITE_METHOD", choices=("warp", "eyes", "none"))
    background: str = setting("average", "`transparent`: warped composites are transparent outside the face hull",
                              env="FACESTATS_COMPOSITE_BACKGROUND", choices=("average", "transparent"))
    eye_targets: list[float] = [0.35, 0.40, 0.65, 0.40]
    jpeg_quality: int = AlignmentConfig.jpeg_quality
    image_format: str = "png"

    def alignment(self) -> AlignmentConfig:
        lx, ly, rx, ry = self.eye_targets
        return AlignmentConfig(eye_targets=((lx, ly), (rx, ry)), jpeg_quality=self.jpeg_quality)
