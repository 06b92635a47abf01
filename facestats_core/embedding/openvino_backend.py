"""An optional OpenVINO backend for the CLIP image tower (the ``openvino`` extra).

The vision transformer and projection (normalised float32 pixels → image features) are
converted once with ``openvino.convert_model`` and cached on disk as OpenVINO IR, then compiled
for the CPU with a bf16 inference-precision hint where the CPU has bf16 (AVX-512-BF16 or AMX),
else f32. ``int8`` is NNCF post-training quantisation (``ModelType.TRANSFORMER``) calibrated on
the data set's own faces; its cosine to the torch fp32 tower on those faces is measured and
recorded, never assumed.

Policy ("never silently change numbers"), :func:`resolve_backend`:

* ``backend="torch"``: torch, as before.
* ``backend="auto"``: OpenVINO only where it does not change what was asked for — precision
  ``bf16`` on a CPU whose OpenVINO plugin reports BF16 (x86 with AVX-512-BF16/AMX), or ``int8``
  (which only OpenVINO provides). Precision ``fp32`` stays on torch, so existing fp32 embeddings
  keep being reused. int8 is never chosen automatically.
* ``backend="openvino"``: OpenVINO at the asked precision (bf16 becomes f32 where the CPU has no
  bf16, and is recorded as such).
* OpenVINO not importable, another device than ``cpu``, or any conversion/compilation failure:
  torch, with a warning.

Whatever runs is recorded: :attr:`OpenVinoTower.label` (``openvino-fp32``, ``openvino-bf16``,
``openvino-int8:<8 hex of the int8 weights>``) goes into the embeddings' ``precision`` column, so
the reuse filter of ``embed_manifest`` never mixes embeddings of another backend, precision or
int8 calibration.

The IR cache: ``<cache_dir>/<variant>-<key>/image_tower.{xml,bin}`` + ``meta.json``, where the
key hashes the weights' revision and the image size, and variant is ``fp32`` (compiled at f32 or
bf16) or ``int8``. Folders are written under a temporary name and renamed into place; the first
writer wins, so processes that convert at the same time end up using the same files.

openvino and nncf are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from facestats_core.embedding.clip import ClipConfig, LoadedClip

log = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "openvino"]
OvPrecision = Literal["fp32", "bf16", "int8"]

MIN_INT8_COSINE = 0.999
"""Mean cosine to torch fp32 (on the calibration faces) below which int8 is reported as inaccurate."""
CALIBRATION_FACES = 300
IR_NAME = "image_tower.xml"
META_NAME = "meta.json"


def default_cache_dir() -> Path:
    """``~/.cache/facestats/openvino`` (the clip resource's ``cache_dir`` overrides it)."""
    return Path.home() / ".cache" / "facestats" / "openvino"


def openvino_missing() -> str | None:
    """Why OpenVINO cannot be used (``None`` when it can be imported)."""
    try:
        import openvino  # noqa: F401
    except Exception as exc:  # ImportError, or a broken native library
        return (f"openvino is not importable ({type(exc).__name__}: {exc}); "
                "install the extra: pip install 'facestats[openvino]'")
    return None


def cpu_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively here (x86 with AVX-512-BF16 or AMX)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    import openvino as ov

    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:
        return False


@dataclass(frozen=True)
class BackendChoice:
    backend: Literal["torch", "openvino"]
    precision: OvPrecision
    reason: str


def resolve_backend(
    backend: str,
    precision: str,
    device: str = "cpu",
    missing: Callable[[], str | None] = openvino_missing,
    has_bf16: Callable[[], bool] = cpu_has_bf16,
) -> BackendChoice:
    """The policy of the module docstring: which backend runs, at which precision, and why.

    For torch the precision is the torch one (int8 asked without OpenVINO → fp32)."""
    if backend not in ("auto", "torch", "openvino"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'openvino', got {backend!r}")
    torch_precision: OvPrecision = "bf16" if precision == "bf16" else "fp32"
    if backend == "torch":
        return BackendChoice("torch", torch_precision, "backend=torch")
    if backend == "auto" and precision == "fp32":
        return BackendChoice("torch", "fp32", "auto keeps fp32 on torch (the reference numbers)")
    if device != "cpu":
        return BackendChoice("torch", torch_precision, f"OpenVINO runs on the CPU only, device is {device!r}")
    why_not = missing()
    if why_not is not None:
        return BackendChoice("torch", torch_precision, why_not)
    if precision == "bf16" and not has_bf16():
        if backend == "auto":
            return BackendChoice("torch", "bf16", "auto: this CPU has no native bf16 for OpenVINO")
        return BackendChoice("openvino", "fp32", "backend=openvino, bf16 asked but this CPU has no native bf16: f32")
    return BackendChoice("openvino", precision, f"backend={backend}, precision={precision}")  # type: ignore[arg-type]


def ir_key(revision: str, image_size: int) -> str:
    return hashlib.sha256(f"{revision}|{image_size}".encode()).hexdigest()[:16]


def ir_dir(cache_dir: Path, variant: Literal["fp32", "int8"], revision: str, image_size: int) -> Path:
    return Path(cache_dir) / f"{variant}-{ir_key(revision, image_size)}"


def _image_tower_module(model: Any) -> Any:
    """vision_model + visual_projection as one float32 module: pixels → features."""
    import torch

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vision_model = model.vision_model
            self.visual_projection = model.visual_projection

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output)

    return ImageTower().float().eval()


def convert_image_tower(model: Any, image_size: int) -> Any:
    """``openvino.convert_model`` of the image tower of a float32 ``CLIPModel``, batch dimension dynamic."""
    import openvino as ov
    import torch

    tower = _image_tower_module(model)
    example = torch.zeros((2, 3, image_size, image_size), dtype=torch.float32)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript tracer warnings about shape checks
        return ov.convert_model(tower, example_input=example, input=[(-1, 3, image_size, image_size)])


def _publish(write: Callable[[Path], None], final: Path) -> bool:
    """Write into a temporary sibling folder, then rename it to ``final``. False when another
    writer got there first (its files are kept, ours dropped)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(staging)
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


def _save_ir(ov_model: Any, meta: dict[str, Any]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        import openvino as ov

        ov.save_model(ov_model, folder / IR_NAME, compress_to_fp16=False)  # keep the fp32 weights
        (folder / META_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))  # last: marks it complete

    return write


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
            "openvino": _ov_version(), "convert_seconds": round(time.perf_counter() - started, 2)}
    _publish(_save_ir(ov_model, meta), folder)
    cached = read_ir(folder)
    if cached is None:
        raise RuntimeError(f"the OpenVINO IR written to {folder} cannot be read back")
    return cached[0], folder, True


def _ov_version() -> str:
    import openvino as ov

    return str(ov.__version__)


@dataclass
class OpenVinoTower:
    """A compiled image tower at a fixed batch size; call it on a float32 (n, 3, H, W) batch.

    ``precision`` is what runs (``fp32``, ``bf16``, ``int8``); ``label`` is what the embeddings
    record. ``pending_int8``: int8 was asked for but no calibrated IR exists yet (the tower runs
    at ``precision`` until :func:`quantize_int8` or :func:`calibrate_from_paths` is called)."""

    compiled: Any
    batch: int
    precision: OvPrecision
    label: str
    ir_dir: Path
    cache_dir: Path
    converted: bool
    threads: int = 0
    pending_int8: bool = False
    int8_report: dict[str, Any] = field(default_factory=dict)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        outputs = []
        for start in range(0, len(pixels), self.batch):
            chunk = pixels[start : start + self.batch]
            n = len(chunk)
            if n < self.batch:  # static shape: pad the last batch
                chunk = np.concatenate([chunk, np.zeros((self.batch - n, *chunk.shape[1:]), np.float32)])
            outputs.append(np.array(self.compiled(chunk)[0][:n], dtype=np.float32))
        return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


def compile_tower(ov_model: Any, precision: OvPrecision, batch: int, threads: int = 0) -> Any:
    """Compile for the CPU at a static batch, one stream (one synchronous request uses every core)."""
    import openvino as ov

    model = ov_model.clone()
    shape = list(model.input(0).get_partial_shape())
    model.reshape([batch, *[int(d.get_length()) for d in shape[1:]]])
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "bf16" if precision in ("bf16", "int8") and cpu_has_bf16() else "f32",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return ov.Core().compile_model(model, "CPU", config)


def _int8_label(folder: Path) -> str:
    digest = hashlib.sha256()
    with open(folder / IR_NAME.replace(".xml", ".bin"), "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return f"openvino-int8:{digest.hexdigest()[:8]}"


def build_tower(
    model: Any,
    revision: str,
    image_size: int,
    precision: OvPrecision,
    batch: int,
    cache_dir: Path,
    threads: int = 0,
) -> OpenVinoTower:
    """The OpenVINO tower of a float32 ``CLIPModel``: cached IR (converted when missing), compiled.

    int8: the cached calibrated IR when there is one; else the fp32 IR at bf16/f32 with
    ``pending_int8`` set."""
    cache_dir = Path(cache_dir)
    ov_model, folder, converted = fp32_ir(model, revision, image_size, cache_dir)
    if precision == "int8":
        int8_folder = ir_dir(cache_dir, "int8", revision, image_size)
        cached = read_ir(int8_folder)
        if cached is not None:
            int8_model, meta = cached
            return OpenVinoTower(
                compile_tower(int8_model, "int8", batch, threads), batch, "int8", _int8_label(int8_folder),
                int8_folder, cache_dir, converted, threads, int8_report=meta.get("calibration", {}),
            )
        fallback: OvPrecision = "bf16" if cpu_has_bf16() else "fp32"
        tower = OpenVinoTower(compile_tower(ov_model, fallback, batch, threads), batch, fallback,
                              f"openvino-{fallback}", folder, cache_dir, converted, threads, pending_int8=True)
        return tower
    effective: OvPrecision = "bf16" if precision == "bf16" and cpu_has_bf16() else "fp32"
    return OpenVinoTower(compile_tower(ov_model, effective, batch, threads), batch, effective,
                         f"openvino-{effective}", folder, cache_dir, converted, threads)


def attach_openvino(loaded: LoadedClip, config: ClipConfig) -> None:
    """``load_clip``'s hook: give ``loaded`` an OpenVINO tower when the policy picks OpenVINO.

    ``loaded.model`` must be float32 here. On the torch route (policy or failure, with a
    warning) the model is cast to the asked torch precision and ``loaded.precision`` set to it."""
    import torch

    asked = str(config.precision)
    choice = resolve_backend(str(config.backend), asked, config.device)
    if choice.backend == "openvino":
        try:
            cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
            tower = build_tower(loaded.model, loaded.revision, loaded.image_size, choice.precision,
                                config.batch_size, cache_dir, config.threads)
        except Exception as exc:
            log.warning("OpenVINO backend failed (%s: %s); falling back to torch", type(exc).__name__, exc)
            warnings.warn(f"OpenVINO backend failed ({type(exc).__name__}: {exc}); using torch", stacklevel=2)
        else:
            loaded.openvino = tower
            loaded.compiled = None
            loaded.precision = "fp32"  # the torch model (text tower, reference) stays float32
            if tower.pending_int8:
                log.warning("int8 asked but no calibrated IR in %s yet: running %s until calibrate_from_paths "
                            "/ quantize_int8 is called", tower.cache_dir, tower.label)
            log.info("CLIP image tower on OpenVINO %s (%s; IR %s, %s)", tower.label, choice.reason, tower.ir_dir,
                     "converted now" if tower.converted else "from cache")
            return
    elif config.backend == "openvino" or asked == "int8":
        log.warning("OpenVINO not used: %s; running torch %s", choice.reason, choice.precision)
        warnings.warn(f"OpenVINO not used: {choice.reason}; running torch {choice.precision}", stacklevel=2)
    torch_precision = "bf16" if asked == "bf16" else "fp32"
    if torch_precision == "bf16":  # the image tower only, as load_clip does: the text tower stays float32
        loaded.model.vision_model.to(dtype=torch.bfloat16)
        loaded.model.visual_projection.to(dtype=torch.bfloat16)
    loaded.precision = torch_precision  # type: ignore[assignment]


def needs_calibration(loaded: Any) -> bool:
    """Whether int8 was asked for and still has to be calibrated (see :func:`calibrate_from_paths`)."""
    tower = getattr(loaded, "openvino", None)
    return bool(tower is not None and tower.pending_int8)


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
    """The reference: the torch float32 image tower (features, not normalised)."""
    import torch

    tower = _image_tower_module(model)
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


def quantize_int8(
    loaded: LoadedClip,
    batches: Iterable[np.ndarray],
    max_faces: int = CALIBRATION_FACES,
    min_cosine: float = MIN_INT8_COSINE,
) -> dict[str, Any]:
    """Calibrate int8 on the caller's faces (float32 pixel batches), measure the cosine to torch
    fp32 on them, cache the IR and switch ``loaded`` to it. Returns the report (also logged):
    faces, cosine mean/min, seconds, label, ``accurate`` (mean cosine ≥ ``min_cosine``).

    When another process published a calibrated IR first, that one is used (and its report)."""
    from facestats_core.embedding.clip import cosine_rows

    tower: OpenVinoTower | None = loaded.openvino
    if tower is None:
        raise ValueError("quantize_int8 needs a CLIP loaded with the OpenVINO backend")
    faces = _collect(batches, max_faces)
    if not faces:
        raise ValueError("no calibration faces")
    started = time.perf_counter()
    fp32_folder = ir_dir(tower.cache_dir, "fp32", loaded.revision, loaded.image_size)
    cached = read_ir(fp32_folder)
    if cached is None:
        raise RuntimeError(f"the fp32 IR in {fp32_folder} is missing")
    int8_model = quantize_ir(cached[0], faces)
    quantize_seconds = time.perf_counter() - started
    pixels = np.concatenate(faces)
    int8_tower = compile_tower(int8_model, "int8", tower.batch, tower.threads)
    candidate = OpenVinoTower(int8_tower, tower.batch, "int8", "", fp32_folder, tower.cache_dir, False, tower.threads)
    cosine = cosine_rows(candidate(pixels), torch_fp32_features(loaded.model, pixels))
    report = {
        "faces": len(faces),
        "cosine_mean": float(cosine.mean()),
        "cosine_min": float(cosine.min()),
        "min_cosine": min_cosine,
        "accurate": bool(cosine.mean() >= min_cosine),
        "quantize_seconds": round(quantize_seconds, 2),
        "nncf": _nncf_version(),
    }
    folder = ir_dir(tower.cache_dir, "int8", loaded.revision, loaded.image_size)
    meta = {"variant": "int8", "revision": loaded.revision, "image_size": loaded.image_size,
            "openvino": _ov_version(), "calibration": report}
    if not _publish(_save_ir(int8_model, meta), folder):
        log.warning("another process calibrated int8 first; using its IR in %s", folder)
        published = read_ir(folder)
        if published is None:
            raise RuntimeError(f"cannot read the int8 IR in {folder}")
        int8_model, meta = published
        int8_tower = compile_tower(int8_model, "int8", tower.batch, tower.threads)
        report = meta.get("calibration", {})
    loaded.openvino = OpenVinoTower(int8_tower, tower.batch, "int8", _int8_label(folder), folder, tower.cache_dir,
                                    tower.converted, tower.threads, int8_report=report)
    level = logging.INFO if report.get("accurate") else logging.WARNING
    log.log(level, "int8 calibrated on %s faces: cosine to torch fp32 mean %.5f, min %.5f (%s %.3f)",
            report.get("faces"), report.get("cosine_mean", float("nan")), report.get("cosine_min", float("nan")),
            "≥" if report.get("accurate") else "BELOW", min_cosine)
    return {**report, "label": loaded.openvino.label}


def _nncf_version() -> str:
    import nncf

    return str(nncf.__version__)


def calibrate_from_paths(
    loaded: LoadedClip, paths: Sequence[Path], max_faces: int = CALIBRATION_FACES
) -> dict[str, Any]:
    """:func:`quantize_int8` on up to ``max_faces`` images from disk (e.g. the data set's face chips)."""
    from facestats_core.embedding.clip import iter_pixel_batches, normalize_pixels

    chosen = list(paths)[:max_faces]
    # the loader yields uint8 batches; the tower (and quantize_int8) take normalised float32 pixels
    batches = (normalize_pixels(pixels, loaded.mean, loaded.std)
               for _, pixels, _ in iter_pixel_batches(chosen, loaded, 32) if len(pixels))
    return quantize_int8(loaded, batches, max_faces=max_faces)
