"""Which CLIP runs and how: :class:`ClipConfig`, and the policies that turn its settings into what runs.

* precision (:func:`resolve_precision`): ``auto`` is bf16 where the hardware runs it natively
  (:func:`cpu_flags`, the CUDA capability), else fp32;
* compilation (:func:`should_compile`): ``auto`` compiles the torch image tower for jobs of at
  least :data:`COMPILE_MIN_IMAGES` images;
* backend (:func:`resolve_backend`): torch or OpenVINO, never silently changing the numbers.

Pure functions over hardware facts, plus the probes that read those facts. torch and openvino
are heavy optional imports: they are imported inside the probes that need them.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from facestats_core.io.flags import parse_flag

Precision = Literal["fp32", "bf16"]
"""A concrete torch precision: what the torch image tower runs."""
PrecisionSetting = Literal["auto", "fp32", "bf16", "int8"]
"""``int8`` runs only on the OpenVINO backend."""
TowerPrecision = Literal["fp32", "bf16", "int8"]
"""What an image tower runs (``int8``: OpenVINO only)."""
Backend = Literal["auto", "torch", "openvino"]
CompileSetting = bool | Literal["auto"]

NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""``/proc/cpuinfo`` flags of x86 CPUs that run bf16 dot products in hardware (AVX-512 BF16, AMX).
Without them oneDNN emulates bf16 and it is slower than fp32."""

COMPILE_MIN_IMAGES = 2000
"""``compile="auto"`` compiles the image tower when one ``embed_paths`` call (one shard in the
pipeline) has at least this many images. Measured for ViT-B/32 on a 2-core AVX-512-BF16 CPU
(docs/performance.md): compilation costs about 1,000–2,100 images' worth of its per-image saving
(cold inductor cache, bf16 and fp32 alike), so below this it does not pay for itself."""

DEFAULT_MODEL = "openai/clip-vit-base-patch32"


@dataclass(frozen=True)
class ClipConfig:
    """Which CLIP to run and how.

    ``model`` is a Hugging Face model id or a local directory written by
    ``save_pretrained``. ``threads`` = 0 keeps torch's default. ``precision``:
    ``auto`` (bf16 where the hardware runs it natively, else fp32: :func:`resolve_precision`),
    ``fp32``, ``bf16`` or ``int8`` (OpenVINO only). ``compile`` runs the torch image tower through
    ``torch.compile`` (inductor, frozen weights): ``True``, ``False`` or ``"auto"`` — compile when one
    ``embed_paths`` call has at least :data:`COMPILE_MIN_IMAGES` images, where the speed-up repays
    the start-up (docs/performance.md). A failed compilation logs a warning and the images are
    embedded eagerly.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 32
    precision: PrecisionSetting = "auto"
    threads: int = 0
    device: str = "cpu"
    local_files_only: bool = False
    compile: CompileSetting = "auto"
    backend: Backend = "torch"
    """``auto``/``openvino``: the image tower on OpenVINO where :func:`resolve_backend` allows."""
    cache_dir: str = ""
    """Where converted OpenVINO IR is cached (empty: ``~/.cache/facestats/openvino``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "compile", parse_compile(self.compile))
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in ("auto", "fp32", "bf16", "int8"):
            raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'int8', got {self.precision!r}")
        if self.backend not in ("auto", "torch", "openvino"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'openvino', got {self.backend!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")


def resolve_precision(
    requested: str, device: str, cpu_flags: Collection[str] = (), cuda_bf16: bool = False
) -> Precision:
    """The concrete precision for ``requested`` (``auto``, ``fp32`` or ``bf16``) on ``device``.

    ``auto`` is bf16 where the hardware runs it natively — a CPU with one of
    :data:`NATIVE_BF16_CPU_FLAGS` in ``cpu_flags``, a CUDA device with ``cuda_bf16`` — else fp32.
    Pure: the caller passes the hardware facts (:func:`auto_precision` reads them)."""
    if requested in ("fp32", "bf16"):
        return requested  # type: ignore[return-value]
    if requested != "auto":
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {requested!r}")
    kind = device.split(":", 1)[0]
    if kind == "cuda":
        return "bf16" if cuda_bf16 else "fp32"
    if kind == "cpu":
        return "bf16" if NATIVE_BF16_CPU_FLAGS & set(cpu_flags) else "fp32"
    return "fp32"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from ``/proc/cpuinfo`` (Linux); empty elsewhere or when unreadable.

    torch 2.13 has no dependable alternative: ``torch.backends.cpu.get_cpu_capability()`` says
    ``AVX512`` with or without BF16, and ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is also
    true on AVX-512 CPUs that only emulate bf16."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return frozenset(flags)


def _cuda_bf16_native() -> bool:
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch without the argument
        return bool(torch.cuda.is_bf16_supported())


def auto_precision(device: str) -> Precision:
    """``resolve_precision("auto", device)`` with this machine's CPU flags / CUDA capability."""
    kind = device.split(":", 1)[0]
    return resolve_precision(
        "auto",
        device,
        cpu_flags=cpu_flags() if kind == "cpu" else (),
        cuda_bf16=_cuda_bf16_native() if kind == "cuda" else False,
    )


def parse_compile(value: Any) -> CompileSetting:
    """``True``/``False``/``"auto"`` from a bool or the text of ``FACESTATS_CLIP_COMPILE`` (``auto``, ``1``, ``0``, …)."""
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() == "auto":
        return "auto"
    flag = parse_flag(str(value))
    if flag is not None:
        return flag
    raise ValueError(f"compile (FACESTATS_CLIP_COMPILE) must be auto, 1 or 0, got {value!r}")


def should_compile(mode: CompileSetting, n_images: int) -> bool:
    """Whether to ``torch.compile`` the image tower for a job of ``n_images``: ``mode`` when it
    is a bool, else (``"auto"``) from :data:`COMPILE_MIN_IMAGES` images on."""
    if isinstance(mode, bool):
        return mode
    return n_images >= COMPILE_MIN_IMAGES


def openvino_missing() -> str | None:
    """Why OpenVINO cannot be used (``None`` when it can be imported)."""
    try:
        import openvino  # noqa: F401
    except Exception as exc:  # ImportError, or a broken native library
        return (f"openvino is not importable ({type(exc).__name__}: {exc}); "
                "install the extra: pip install 'facestats[openvino]'")
    return None


def openvino_has_bf16() -> bool:
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
    precision: TowerPrecision
    reason: str


def resolve_backend(
    backend: str,
    precision: str,
    device: str = "cpu",
    missing: Callable[[], str | None] = openvino_missing,
    has_bf16: Callable[[], bool] = openvino_has_bf16,
) -> BackendChoice:
    """Which backend runs the image tower, at which precision, and why ("never silently change numbers").

    * ``torch``: torch (``int8`` asked → fp32, which torch runs instead).
    * ``auto``: OpenVINO only where it does not change what was asked for — precision ``bf16`` on a
      CPU whose OpenVINO plugin reports BF16 (x86 with AVX-512-BF16/AMX), or ``int8`` (which only
      OpenVINO provides). Precision ``fp32`` stays on torch, so existing fp32 embeddings keep being
      reused. int8 is never chosen automatically.
    * ``openvino``: OpenVINO at the asked precision (bf16 becomes f32 where the CPU has no bf16,
      and is recorded as such).
    * OpenVINO not importable, or another device than ``cpu``: torch. ``precision`` is a concrete
      one (``auto`` already resolved)."""
    if backend not in ("auto", "torch", "openvino"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'openvino', got {backend!r}")
    torch_precision: TowerPrecision = "bf16" if precision == "bf16" else "fp32"
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
