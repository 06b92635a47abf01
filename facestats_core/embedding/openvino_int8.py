"""int8 for the OpenVINO image tower: NNCF post-training quantisation calibrated on the data set's own faces.

``int8`` asked for with no calibrated IR in the cache gives a tower with ``pending_int8`` set
(:func:`needs_calibration`). :func:`calibrate_from_paths` quantises on up to
:data:`CALIBRATION_FACES` of the caller's faces (``ModelType.TRANSFORMER``), measures the cosine
of the int8 features to the torch fp32 tower on those faces — recorded, never assumed — publishes
the int8 IR in the cache (the first writer wins) and returns a new :class:`LoadedClip` on the int8
tower with the report. The loaded model it was given is left as it was.

openvino, nncf and torch are heavy optional dependencies: they are imported inside the functions
that need them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facestats_core.embedding.openvino_tower import (
    OpenVinoTower,
    compile_ir,
    int8_label,
    ir_dir,
    ov_version,
    publish_ir,
    read_ir,
)
from facestats_core.embedding.pixels import iter_pixel_batches, normalize_pixels
from facestats_core.embedding.torch_tower import vision_features
from facestats_core.embedding.tower import LoadedClip
from facestats_core.embedding.vectors import cosine_rows

log = logging.getLogger(__name__)

MIN_INT8_COSINE = 0.999
"""Mean cosine to torch fp32 (on the calibration faces) below which int8 is reported as inaccurate."""
CALIBRATION_FACES = 300


def needs_calibration(clip: LoadedClip) -> bool:
    """Whether int8 was asked for and still has to be calibrated (see :func:`calibrate_from_paths`)."""
    return isinstance(clip.tower, OpenVinoTower) and clip.tower.pending_int8


def _collect(batches: Iterable[np.ndarray], max_faces: int) -> list[np.ndarray]:
    """Up to ``max_faces`` faces from an iterable of normalised float (n, 3, H, W) batches, as (1, 3, H, W)
    items; uint8 batches (the loader's, not normalised) are refused."""
    items: list[np.ndarray] = []
    for batch in batches:
        if np.asarray(batch).dtype == np.uint8:
            raise TypeError("calibration batches must be normalised float pixels, not the loader's uint8")
        for face in np.asarray(batch, dtype=np.float32):
            items.append(face[None])
            if len(items) >= max_faces:
                return items
    return items


def torch_fp32_features(model: Any, pixels: np.ndarray, batch: int = 32) -> np.ndarray:
    """The reference: the torch float32 image tower of a float32 ``CLIPModel`` (features, not normalised)."""
    import torch

    tower = vision_features(model).float().eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch):
            out.append(tower(torch.from_numpy(np.ascontiguousarray(pixels[start : start + batch]))).numpy())
    return np.concatenate(out)


def quantize_ir(ov_model: Any, faces: Sequence[np.ndarray]) -> Any:
    """NNCF post-training int8 quantisation (transformer preset: SmoothQuant, no batch-wise
    statistics) calibrated on ``faces``, one (1, 3, H, W) face per sample as NNCF recommends."""
    import nncf

    logging.getLogger("nncf").setLevel(logging.WARNING)
    return nncf.quantize(
        ov_model,
        nncf.Dataset(list(faces)),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(faces),
    )


def _nncf_version() -> str:
    import nncf

    return str(nncf.__version__)


def quantize_int8(
    clip: LoadedClip,
    batches: Iterable[np.ndarray],
    max_faces: int = CALIBRATION_FACES,
    min_cosine: float = MIN_INT8_COSINE,
) -> tuple[LoadedClip, dict[str, Any]]:
    """Calibrate int8 on the caller's faces (normalised float32 pixel batches), measure the cosine to
    torch fp32 on them and cache the IR. Returns ``clip`` on the int8 tower and the report (also
    logged): faces, cosine mean/min, seconds, ``accurate`` (mean cosine ≥ ``min_cosine``), label.

    When a calibrated IR is already published for this model (another process, an earlier call),
    that one is used, with its report."""
    tower = clip.tower
    if not isinstance(tower, OpenVinoTower):
        raise ValueError("quantize_int8 needs a CLIP loaded with the OpenVINO backend")
    folder = ir_dir(tower.cache_dir, "int8", clip.revision, clip.image_size)
    published = read_ir(folder)
    if published is not None:
        log.info("int8 already calibrated for this model: using the IR in %s", folder)
    else:
        faces = _collect(batches, max_faces)
        if not faces:
            raise ValueError("no calibration faces")
        int8_model, compiled, report = _calibrate(clip, tower, faces, min_cosine)
        meta = {"variant": "int8", "revision": clip.revision, "image_size": clip.image_size,
                "openvino": ov_version(), "calibration": report}
        if not publish_ir(int8_model, meta, folder):
            log.warning("another process calibrated int8 first; using its IR in %s", folder)
            published = read_ir(folder)
            if published is None:
                raise RuntimeError(f"cannot read the int8 IR in {folder}")
    if published is not None:
        int8_model, meta = published
        compiled = compile_ir(int8_model, "int8", tower.batch, tower.threads)
        report = meta.get("calibration", {})
    int8_tower = dataclasses.replace(tower, compiled=compiled, precision="int8", label=int8_label(folder),
                                     ir_dir=folder, pending_int8=False, int8_report=report)
    int8 = dataclasses.replace(clip, tower=int8_tower)
    level = logging.INFO if report.get("accurate") else logging.WARNING
    log.log(level, "int8 calibrated on %s faces: cosine to torch fp32 mean %.5f, min %.5f (%s %.3f)",
            report.get("faces"), report.get("cosine_mean", float("nan")), report.get("cosine_min", float("nan")),
            "≥" if report.get("accurate") else "BELOW", min_cosine)
    return int8, {**report, "label": int8.recorded_precision}


def _calibrate(
    clip: LoadedClip, tower: OpenVinoTower, faces: list[np.ndarray], min_cosine: float
) -> tuple[Any, Any, dict[str, Any]]:
    """The int8 IR quantised on ``faces``, compiled, and its report: its cosine to torch fp32 on ``faces``."""
    started = time.perf_counter()
    fp32_folder = ir_dir(tower.cache_dir, "fp32", clip.revision, clip.image_size)
    cached = read_ir(fp32_folder)
    if cached is None:
        raise RuntimeError(f"the fp32 IR in {fp32_folder} is missing")
    int8_model = quantize_ir(cached[0], faces)
    quantize_seconds = time.perf_counter() - started
    pixels = np.concatenate(faces)
    compiled = compile_ir(int8_model, "int8", tower.batch, tower.threads)
    cosine = cosine_rows(dataclasses.replace(tower, compiled=compiled).embed(pixels),
                         torch_fp32_features(clip.model, pixels))
    return int8_model, compiled, {
        "faces": len(faces),
        "cosine_mean": float(cosine.mean()),
        "cosine_min": float(cosine.min()),
        "min_cosine": min_cosine,
        "accurate": bool(cosine.mean() >= min_cosine),
        "quantize_seconds": round(quantize_seconds, 2),
        "nncf": _nncf_version(),
    }


def calibrate_from_paths(
    clip: LoadedClip, paths: Sequence[Path], max_faces: int = CALIBRATION_FACES
) -> tuple[LoadedClip, dict[str, Any]]:
    """:func:`quantize_int8` on up to ``max_faces`` images from disk (e.g. the data set's face chips)."""
    chosen = list(paths)[:max_faces]
    # the reader yields uint8 batches; quantisation takes normalised float32 pixels
    batches = (normalize_pixels(pixels, clip.mean, clip.std)
               for _, pixels, _ in iter_pixel_batches(chosen, clip.image_size, 32) if len(pixels))
    return quantize_int8(clip, batches, max_faces=max_faces)
