"""Every FaceStats setting, in one place: the only module that reads environment variables.

Each field of `Settings` names its environment variable, its default (written here once) and
what it means. `load_settings()` reads them; `defs/resources.py` builds the Dagster resources
from the result; `settings_markdown()` renders the table that README.md shows (a test keeps
the two equal). Settings marked `empty_ok` accept an empty value, which turns the feature off
(e.g. `FACESTATS_RATINGS=` runs without ratings); for the others an empty variable means
"use the default".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from facestats_core.io.flags import parse_flag

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
"""The CLIP FaceStats uses when nothing else is configured (kept equal to `facestats_core.embedding.clip.DEFAULT_MODEL`)."""

CLIP_POINTER_FILE = "CLIP_MODEL"
"""A one-line file in the model root naming the CLIP to use when `FACESTATS_CLIP_MODEL` is unset
(`facestats demo` writes it, so the UI, cron and `facestats score` use the demo's model)."""



def _setting(env: str, default: Any, help: str, *, resource: str, name: str | None = None,
             empty_ok: bool = False, shown: str | None = None) -> Any:
    """A dataclass field carrying its environment variable, the resource (and resource field) it
    configures, and the README text."""
    meta = {"env": env, "help": help, "resource": resource, "name": name, "empty_ok": empty_ok, "shown": shown}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """The configured values (see the module docstring; README.md renders the same table)."""

    data_root: str = _setting(
        "FACESTATS_DATA_ROOT", "data", "data root: local path (relative to the working directory) or fsspec URL "
        "for the parquet artifacts", resource="paths")
    model_root: str = _setting("FACESTATS_MODEL_ROOT", "models", "trained models and local CLIP folders",
                               resource="paths")
    clip_model: str = _setting(
        "FACESTATS_CLIP_MODEL", "", "Hugging Face id or a local `save_pretrained` folder (unset: the model "
        "root's `CLIP_MODEL` file, else `openai/clip-vit-base-patch32`)", resource="clip", name="model",
        shown="`openai/clip-vit-base-patch32`")
    clip_batch_size: int = _setting("FACESTATS_CLIP_BATCH_SIZE", 32, "images per forward pass", resource="clip",
                                    name="batch_size")
    clip_precision: str = _setting(
        "FACESTATS_CLIP_PRECISION", "auto", "`auto` (bf16 where the hardware runs it natively: CPUs with "
        "AVX-512-BF16 or AMX, CUDA GPUs with bf16; else fp32), `fp32`, `bf16` (cosine to fp32 ≥ 0.9999, "
        "2.5–3.4× faster on AVX-512-BF16 CPUs) or `int8` (OpenVINO only: calibrated on ≤ 300 of the data set's "
        "faces, its cosine to fp32 measured and logged); embeddings record the precision used", resource="clip",
        name="precision")
    clip_backend: str = _setting(
        "FACESTATS_CLIP_BACKEND", "torch", "image tower on `torch`, `openvino` (the `openvino` extra, installed by "
        "`make`) or `auto`: OpenVINO for `bf16` on CPUs with native bf16 and for `int8`, torch otherwise (fp32 "
        "stays on torch); the embeddings record it (`openvino-bf16` …) and are never mixed", resource="clip",
        name="backend")
    clip_compile: str = _setting(
        "FACESTATS_CLIP_COMPILE", "auto", "`torch.compile` the image tower: `auto` (when one shard has at least "
        "2000 faces to embed: the start-up, 10–90 s on 2 cores, then pays for itself), `1` (always) or `0` (never); a "
        "failed compilation logs a warning and embeds eagerly", resource="clip", name="compile")
    clip_threads: int = _setting("FACESTATS_CLIP_THREADS", 0, "torch threads (0 = torch default)", resource="clip",
                                 name="threads")
    clip_device: str = _setting("FACESTATS_CLIP_DEVICE", "cpu", "e.g. `cuda`", resource="clip", name="device")
    clip_local_only: bool = _setting("FACESTATS_CLIP_LOCAL_ONLY", False, "`1`: never contact the hub",
                                     resource="clip", name="local_files_only")
    face_mode: str = _setting(
        "FACESTATS_FACE_MODE", "detect", "`detect` (photos: find every face), `whole` (pre-cropped face sets: the "
        "image is the face), `auto` (detect; a near-square portrait with no face found is used whole)",
        resource="faces")
    multi_face: str = _setting("FACESTATS_MULTI_FACE", "all", "faces kept per image: `all`, `largest`, "
                               "`skip_multi` (images with several faces get reason `skipped_multi`)", resource="faces")
    face_detector: str = _setting(
        "FACESTATS_FACE_DETECTOR", "auto", "`retinaface` (RetinaFace-MobileNet0.25 on onnxruntime), `yunet` "
        "(libfacedetection), `dlib` or `hog` (dlib HOG, 2009), `dlib-cnn` (MMOD), `none`, `auto` (RetinaFace when "
        "the detect extra is installed, else dlib HOG); the detector's name and version are part of the detection "
        "cache key", resource="faces", name="detector")
    cnn_detector_weights: str = _setting("FACESTATS_CNN_DETECTOR_WEIGHTS", "", "`mmod_human_face_detector.dat` "
                                         "for `dlib-cnn`", resource="faces", name="cnn_weights", empty_ok=True)
    detect_max_side: int = _setting("FACESTATS_DETECT_MAX_SIDE", 1600, "longest side of the copy the detector "
                                    "sees (boxes are mapped back to the original); a CNN detector also searches "
                                    "larger photos in full-resolution tiles of this side, so no face of "
                                    "`min_face_px` is lost", resource="faces", name="max_side")
    detect_workers: int = _setting("FACESTATS_DETECT_WORKERS", 0, "processes that detect faces in parallel, one "
                                   "core each (`0`: one per CPU core, `1`: in the step's process, where a CNN "
                                   "detector uses every core)", resource="faces", name="workers")
    min_face_px: int = _setting("FACESTATS_MIN_FACE_PX", 24, "smaller faces (box side, original pixels) get "
                                "reason `face_too_small`", resource="faces")
    chip_margin: float = _setting("FACESTATS_CHIP_MARGIN", 0.25, "padding around the face box on each side, as "
                                  "a fraction of the box (FairFace: 0.25)", resource="faces", name="margin")
    composite_size: int = _setting("FACESTATS_COMPOSITE_SIZE", 512, "side of composite face chips and "
                                   "composites", resource="faces")
    landmarks: str = _setting("FACESTATS_LANDMARKS", "labels/demo_truth.csv",
                              "landmarks CSV (raw-image coordinates) for whole-image faces", resource="faces",
                              empty_ok=True)
    shards: int = _setting("FACESTATS_SHARDS", 4, "number of hash shards (partitions) of the image-level assets",
                           resource="definitions")
    fairface_labels: str = _setting(
        "FACESTATS_FAIRFACE_LABELS", "labels/fairface_labels.csv", "FairFace-format labels (relative to the data "
        "root, or absolute)", resource="labels", empty_ok=True)
    fairface_prefix: str = _setting(
        "FACESTATS_FAIRFACE_PREFIX", "", "prefix of FairFace `file` entries under `raw/`, e.g. `fairface/`",
        resource="labels", empty_ok=True)
    truth_labels: str = _setting(
        "FACESTATS_TRUTH_LABELS", "", "FairFace-format true labels used only to evaluate (the true shares of "
        "`face_statistics`, the purity of composites), never to train or as final values (empty: the statistics "
        "use the data set's own labels, no purity)",
        resource="labels", empty_ok=True)
    manual_labels: str = _setting(
        "FACESTATS_MANUAL_LABELS", "labels/manual_labels.csv", "manual overrides `filename,gender,age,ethnicity` "
        "(optional)", resource="labels", empty_ok=True)
    ratings: str = _setting(
        "FACESTATS_RATINGS", "labels/scut_ratings.csv", "SCUT-FBP5500-format ratings; none (and no reference "
        "set or bundle): the attractiveness assets are skipped, the rest builds", resource="labels", empty_ok=True)
    manual_ratings: str = _setting("FACESTATS_MANUAL_RATINGS", "", "manual ratings that override the data set's",
                                   resource="labels", empty_ok=True)
    reference_root: str = _setting(
        "FACESTATS_REFERENCE_ROOT", "", "a labelled reference set to train the probes and the regressor on: a "
        "folder with `raw/` images and the label / rating files below (empty: train on the analysed set's own "
        "labels, else zero-shot); `FACESTATS_MODELS` wins over both", resource="models", empty_ok=True)
    reference_labels: str = _setting("FACESTATS_REFERENCE_LABELS", "labels/fairface_labels.csv", "FairFace-format "
                                     "labels of the reference set (relative to it)", resource="models", empty_ok=True)
    reference_ratings: str = _setting("FACESTATS_REFERENCE_RATINGS", "labels/scut_ratings.csv", "SCUT-format "
                                      "ratings of the reference set (relative to it)", resource="models",
                                      empty_ok=True)
    reference_face_mode: str = _setting("FACESTATS_REFERENCE_FACE_MODE", "whole", "face mode of the reference "
                                        "set (FairFace and SCUT-FBP5500 images are pre-cropped faces)",
                                        resource="models")
    models_bundle: str = _setting("FACESTATS_MODELS", "", "a model bundle (path or URL) to apply instead of "
                                  "training (wins over labels): no labels or ratings needed", resource="models", name="bundle",
                                  empty_ok=True)
    tags_file: str = _setting("FACESTATS_TAGS", "config/tags.yaml", "open-vocabulary tag prompts (zero-shot, "
                              "one `tag_<name>` probability column each; empty: no tags)", resource="models",
                              empty_ok=True)
    seed: int = _setting("FACESTATS_SEED", 0, "seed of splits, models and clustering", resource="analysis")
    cv_folds: int = _setting(
        "FACESTATS_CV_FOLDS", 5, "k of the attractiveness regressor's k-fold cross-validation (`0`: held-out "
        "split only)", resource="analysis", name="attractiveness_cv_folds")
    composites_config: str = _setting("FACESTATS_COMPOSITES_CONFIG", "config/composites.yaml",
                                      "the filter specs to build", resource="composites", name="specs_file")
    min_faces: int = _setting("FACESTATS_MIN_FACES", 10, "fewest matching faces for a composite",
                              resource="composites")
    relax: bool = _setting("FACESTATS_RELAX", False, "`1`: drop filter terms (recorded) when too few faces "
                           "match, instead of recording the spec as not built", resource="composites")
    composite_min_confidence: float = _setting(
        "FACESTATS_COMPOSITE_MIN_CONFIDENCE", 0.9, "a predicted gender or ethnicity counts for a composite's "
        "`gender=`/`ethnicity=` term only at this probability or more (`0`: every prediction)",
        resource="composites", name="min_confidence")
    composite_method: str = _setting("FACESTATS_COMPOSITE_METHOD", "warp", "`warp` (68-point landmarks onto the "
                                     "mean shape) / `eyes` / `none`, for specs without `method=`",
                                     resource="composites", name="method")
    composite_background: str = _setting("FACESTATS_COMPOSITE_BACKGROUND", "average", "`transparent`: warped "
                                         "composites are transparent outside the face hull",
                                         resource="composites", name="background")
    automation: bool = _setting("FACESTATS_AUTOMATION", True, "`0`: the new-images and automation sensors start "
                                "stopped", resource="definitions")
    shard_executor: str = _setting(
        "FACESTATS_SHARD_EXECUTOR", "multiprocess", "executor of the `image_shards` job: `multiprocess`, "
        "`celery` (the `celery` extra) or `k8s`", resource="definitions")
    dagster_home: str = _setting(
        "DAGSTER_HOME", ".dagster_home", "Dagster's instance folder (runs, partitions, sensor cursors) used by "
        "`facestats` and `make ui`", resource="cli")

    def resource_fields(self, resource: str) -> dict[str, Any]:
        """`{resource field: value}` of every setting of one resource (e.g. `"clip"`)."""
        return {
            f.metadata["name"] or f.name: getattr(self, f.name)
            for f in fields(self)
            if f.metadata["resource"] == resource
        }


def _parse(spec: Field[Any], text: str) -> Any:
    kind = type(spec.default)
    env = spec.metadata["env"]
    if kind is bool:
        flag = parse_flag(text)
        if flag is not None:
            return flag
        raise ValueError(f"{env} must be 1/0 (or true/false, yes/no, on/off), got {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{env} must be an integer, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{env} must be a number, got {text!r}") from None
    return text


def load_settings(environ: Mapping[str, str] | None = None, resolve_clip: bool = True) -> Settings:
    """The settings from `environ` (default: the process environment); unset variables take their
    default. An unset `FACESTATS_CLIP_MODEL` becomes `default_clip_model(model_root)` unless
    `resolve_clip` is False (then it stays empty: "not chosen by the user"). Raises `ValueError`
    naming the variable when a value cannot be parsed."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        text = env.get(spec.metadata["env"])
        if text is None or (text == "" and not spec.metadata["empty_ok"]):
            continue
        values[spec.name] = _parse(spec, text)
    settings = Settings(**values)
    if resolve_clip and not settings.clip_model:
        settings = replace(settings, clip_model=default_clip_model(settings.model_root))
    return settings


def environment_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`{variable: value in effect}` of every setting (for reports and `facestats settings --values`)."""
    settings = load_settings(environ)
    return {spec.metadata["env"]: str(getattr(settings, spec.name)) for spec in fields(settings)}


def explicitly_set(variable: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment sets `variable` (to a non-empty value), rather than leaving its default."""
    return bool((os.environ if environ is None else environ).get(variable, ""))


def default_clip_model(model_root: str) -> str:
    """The model root's `CLIP_MODEL` pointer file when present and non-empty, else ViT-B/32."""
    from facestats_core.io.layout import to_upath

    pointer = to_upath(model_root) / CLIP_POINTER_FILE
    if pointer.exists():
        named = pointer.read_text().strip()
        if named:
            return named
    return DEFAULT_CLIP


def _shown_default(spec: Field[Any]) -> str:
    if spec.metadata["shown"]:
        return str(spec.metadata["shown"])
    default = spec.default if spec.default is not MISSING else ""
    if isinstance(default, bool):
        return f"`{int(default)}`"
    return f"`{default}`" if default != "" else "(empty)"


def settings_markdown() -> str:
    """The README's settings table: variable, default, meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{f.metadata['env']}` | {_shown_default(f)} | {f.metadata['help']} |" for f in fields(Settings)]
    return "\n".join(lines)
