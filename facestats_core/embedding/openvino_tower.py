"""The CLIP image tower on OpenVINO (the ``openvino`` extra): converted IR, cached on disk, compiled for the CPU.

The vision transformer and projection of a float32 ``CLIPModel`` (normalised float32 pixels →
image features, ``torch_tower.vision_features``) are converted once with
``openvino.convert_model`` and cached as OpenVINO IR, then compiled for the CPU at a static batch
with a bf16 inference-precision hint where the CPU has bf16 (AVX-512-BF16 or AMX), else f32.
int8 IR is made by :mod:`facestats_core.embedding.openvino_int8`; this module loads it when cached.
Which backend runs is decided by ``config.resolve_backend`` in the loader.

Whatever runs is recorded: :attr:`OpenVinoTower.label` (``openvino-fp32``, ``openvino-bf16``,
``openvino-int8:<8 hex of the int8 weights>``) goes into the embeddings' ``precision`` column, so
embeddings of another backend, precision or int8 calibration are never mixed or reused.

The IR cache: ``<cache_dir>/<variant>-<key>/image_tower.{xml,bin}`` + ``meta.json``, where the
key hashes the weights' revision and the image size, and variant is ``fp32`` (compiled at f32 or
bf16) or ``int8``. Folders are written under a temporary name and renamed into place; the first
writer wins, so processes that convert at the same time end up using the same files.

openvino and torch are heavy optional dependencies: they are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from facestats_core.embedding.config import TowerPrecision, openvino_has_bf16
from facestats_core.embedding.pixels import normalize_pixels
from facestats_core.embedding.torch_tower import vision_features

log = logging.getLogger(__name__)

IR_NAME = "image_tower.xml"
META_NAME = "meta.json"


def cache_root(cache_dir: str = "") -> Path:
    """Where IR is cached: ``cache_dir`` (the clip resource's setting), else ``~/.cache/facestats/openvino``."""
    return Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "facestats" / "openvino"


def ir_key(revision: str, image_size: int) -> str:
    return hashlib.sha256(f"{revision}|{image_size}".encode()).hexdigest()[:16]


def ir_dir(cache_dir: Path, variant: Literal["fp32", "int8"], revision: str, image_size: int) -> Path:
    return Path(cache_dir) / f"{variant}-{ir_key(revision, image_size)}"


def convert_image_tower(model: Any, image_size: int) -> Any:
    """``openvino.convert_model`` of the image tower of a float32 ``CLIPModel``, batch dimension dynamic."""
    import openvino as ov
    import torch

    tower = vision_features(model).float().eval()
    example = torch.zeros((2, 3, image_size, image_size), dtype=torch.float32)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript tracer warnings about shape checks
        return ov.convert_model(tower, example_input=example, input=[(-1, 3, image_size, image_size)])


def publish_ir(ov_model: Any, meta: dict[str, Any], final: Path) -> bool:
    """Write ``ov_model`` and ``meta`` into a temporary sibling folder, then rename it to ``final``.
    False when another writer got there first (its files are kept, ours dropped)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        _save_ir(ov_model, meta, staging)
        try:
            os.rename(staging, final)
            return True
        except OSError:
            if (final / META_NAME).exists():
                return False
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _save_ir(ov_model: Any, meta: dict[str, Any], folder: Path) -> None:
    import openvino as ov

    ov.save_model(ov_model, folder / IR_NAME, compress_to_fp16=False)  # keep the fp32 weights
    (folder / META_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))  # last: marks it complete


def read_ir(folder: Path) -> tuple[Any, dict[str, Any]] | None:
    """The cached IR and its metadata, or None when absent or unreadable."""
    if not (folder / META_NAME).exists():
        return None
    import openvino as ov

    try:
        meta = json.loads((folder / META_NAME).read_text())
        return ov.Core().read_model(folder / IR_NAME), meta
    except Exception as exc:
        log.warning("ignoring unreadable OpenVINO cache %s (%s: %s)", folder, type(exc).__name__, exc)
        return None


def fp32_ir(model: Any, revision: str, image_size: int, cache_dir: Path) -> tuple[Any, Path, bool]:
    """``(ov.Model, folder, converted)``: the cached fp32 IR, converted and written first when missing."""
    folder = ir_dir(cache_dir, "fp32", revision, image_size)
    cached = read_ir(folder)
    if cached is not None:
        return cached[0], folder, False
    started = time.perf_counter()
    ov_model = convert_image_tower(model, image_size)
    meta = {"variant": "fp32", "revision": revision, "image_size": image_size,
            "openvino": ov_version(), "convert_seconds": round(time.perf_counter() - started, 2)}
    publish_ir(ov_model, meta, folder)
    cached = read_ir(folder)
    if cached is None:
        raise RuntimeError(f"the OpenVINO IR written to {folder} cannot be read back")
    return cached[0], folder, True


def ov_version() -> str:
    import openvino as ov

    return str(ov.__version__)


def compile_ir(ov_model: Any, precision: TowerPrecision, batch: int, threads: int = 0) -> Any:
    """Compile for the CPU at a static batch, one stream (one synchronous request uses every core)."""
    import openvino as ov

    model = ov_model.clone()
    shape = list(model.input(0).get_partial_shape())
    model.reshape([batch, *[int(d.get_length()) for d in shape[1:]]])
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "bf16" if precision in ("bf16", "int8") and openvino_has_bf16() else "f32",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return ov.Core().compile_model(model, "CPU", config)


def int8_label(folder: Path) -> str:
    """``openvino-int8:<8 hex of the sha256 of the int8 weights>``."""
    digest = hashlib.sha256()
    with open(folder / IR_NAME.replace(".xml", ".bin"), "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return f"openvino-int8:{digest.hexdigest()[:8]}"


@dataclass(frozen=True)
class OpenVinoTower:
    """A compiled image tower at a fixed batch size (an :class:`~facestats_core.embedding.tower.ImageTower`).

    ``precision`` is what runs (``fp32``, ``bf16``, ``int8``); ``label`` is what the embeddings
    record. ``pending_int8``: int8 was asked for but no calibrated IR exists yet (the tower runs
    at ``precision`` until ``openvino_int8.calibrate_from_paths`` gives a calibrated one)."""

    backend: ClassVar[str] = "openvino"

    compiled: Any
    batch: int
    precision: TowerPrecision
    label: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    ir_dir: Path
    cache_dir: Path
    converted: bool
    threads: int = 0
    pending_int8: bool = False
    int8_report: dict[str, Any] = field(default_factory=dict)

    def prepare(self, n_images: int, batch_size: int) -> None:
        """Nothing to do: the tower is compiled when it is built."""

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Features of one batch: uint8 pixels are normalised first; run in chunks of :attr:`batch`
        (static shape: the last chunk padded)."""
        if pixels.dtype == np.uint8:
            pixels = normalize_pixels(pixels, self.mean, self.std)
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        outputs = []
        for start in range(0, len(pixels), self.batch):
            chunk = pixels[start : start + self.batch]
            n = len(chunk)
            if n < self.batch:
                chunk = np.concatenate([chunk, np.zeros((self.batch - n, *chunk.shape[1:]), np.float32)])
            outputs.append(np.array(self.compiled(chunk)[0][:n], dtype=np.float32))
        return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


def build_openvino_tower(
    model: Any,
    revision: str,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    precision: TowerPrecision,
    batch: int,
    cache_dir: Path,
    threads: int = 0,
) -> OpenVinoTower:
    """The OpenVINO tower of a float32 ``CLIPModel``: cached IR (converted when missing), compiled.

    int8: the cached calibrated IR when there is one; else the fp32 IR at bf16/f32 with
    ``pending_int8`` set."""
    cache_dir = Path(cache_dir)
    ov_model, folder, converted = fp32_ir(model, revision, image_size, cache_dir)
    report: dict[str, Any] = {}
    pending = False
    runs: TowerPrecision
    if precision == "int8":
        int8_folder = ir_dir(cache_dir, "int8", revision, image_size)
        cached = read_ir(int8_folder)
        if cached is not None:
            ov_model, meta = cached
            folder, label, runs = int8_folder, int8_label(int8_folder), precision
            report = meta.get("calibration", {})
        else:
            runs = "bf16" if openvino_has_bf16() else "fp32"
            label, pending = f"openvino-{runs}", True
    else:
        runs = "bf16" if precision == "bf16" and openvino_has_bf16() else "fp32"
        label = f"openvino-{runs}"
    return OpenVinoTower(compile_ir(ov_model, runs, batch, threads), batch, runs, label,
                         (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), folder, cache_dir, converted,
                         threads, pending_int8=pending, int8_report=report)
