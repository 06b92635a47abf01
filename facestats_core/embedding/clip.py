"""CLIP image embeddings: model loading, a bounded-memory batch loader, batched inference.

The pieces follow the reader → mapper → writer split of clip-retrieval:
``iter_pixel_batches`` decodes images on a background thread (at most
``prefetch`` batches in memory) into uint8 pixels, ``forward_batch`` scales and
normalises them on the model side and runs the vision tower and projection on a
whole batch under ``torch.inference_mode``, ``embed_paths`` ties them together
and L2-normalises. torch and transformers are imported inside the functions that
need them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from facestats_core.embedding.checkpoint import (
    Checkpoint,
    checkpoint_key,
    chunk_size,
    new_run_id,
    read_parts,
    write_part,
)
from facestats_core.io.flags import parse_flag

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16"]
"""A concrete precision: what a loaded model runs and what embeddings record."""
PrecisionSetting = Literal["auto", "fp32", "bf16", "int8"]
"""``int8`` runs only on the OpenVINO backend."""
Backend = Literal["auto", "torch", "openvino"]

NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""``/proc/cpuinfo`` flags of x86 CPUs that run bf16 dot products in hardware (AVX-512 BF16, AMX).
Without them oneDNN emulates bf16 and it is slower than fp32."""

CompileSetting = bool | Literal["auto"]
COMPILE_MIN_IMAGES = 2000
"""``compile="auto"`` compiles the image tower when one ``embed_paths`` call (one shard in the
pipeline) has at least this many images. Measured for ViT-B/32 on a 2-core AVX-512-BF16 CPU
(docs/performance.md): compilation costs about 1,000–2,100 images' worth of its per-image saving
(cold inductor cache, bf16 and fp32 alike), so below this it does not pay for itself."""

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipLoadError(RuntimeError):
    """The CLIP model could not be loaded; the message says what was tried and what to do."""


@dataclass(frozen=True)
class ClipConfig:
    """Which CLIP to run and how.

    ``model`` is a Hugging Face model id or a local directory written by
    ``save_pretrained``. ``threads`` = 0 keeps torch's default. ``precision``:
    ``auto`` (bf16 where the hardware runs it natively, else fp32: :func:`resolve_precision`),
    ``fp32`` or ``bf16``. ``compile`` runs the image tower through ``torch.compile``
    (inductor, frozen weights): ``True``, ``False`` or ``"auto"`` — compile when one
    :func:`embed_paths` call has at least :data:`COMPILE_MIN_IMAGES` images, where the
    speed-up repays the start-up (docs/performance.md). A failed compilation logs a warning
    and the images are embedded eagerly.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 32
    precision: PrecisionSetting = "auto"
    threads: int = 0
    device: str = "cpu"
    local_files_only: bool = False
    compile: CompileSetting = "auto"
    backend: Backend = "torch"
    """``auto``/``openvino``: the image tower on OpenVINO where its policy allows (``openvino_backend``);
    precision ``int8`` exists only there."""
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


@dataclass
class LoadedClip:
    """A ready model plus the pixel preprocessing it expects."""

    model: Any
    model_id: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dim: int
    precision: Precision
    device: str
    revision: str = "unknown"
    compile_mode: CompileSetting = False
    """``True``, ``False`` or ``"auto"`` (:func:`should_compile` decides per :func:`embed_paths` call)."""
    compile_error: str | None = None
    """Why compilation failed (then every later batch runs eager); None when it did not fail."""
    tower: Any = None
    """uint8 pixels → image features (:func:`_image_tower`), built on first use."""
    compiled: Any = None
    compiled_batch: int | None = None
    local_files_only: bool = False
    tokenizer: Any = None
    """Loaded on first use by :func:`facestats_core.embedding.text.clip_tokenizer` (image-only runs never load it)."""
    openvino: Any = None
    """The image tower on OpenVINO (``openvino_backend.OpenVinoTower``), when that backend runs."""

    @property
    def recorded_precision(self) -> str:
        """What the embeddings' ``precision`` column records: ``fp32``/``bf16`` (torch) or the
        OpenVINO label (``openvino-bf16``, ``openvino-int8:<hash>`` …)."""
        return self.openvino.label if self.openvino is not None else self.precision


@dataclass
class EmbedResult:
    """Embeddings for the readable inputs, in input order, and the failures by index."""

    embeddings: np.ndarray
    ok_indices: list[int]
    failures: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    model_seconds: float = 0.0


def _load_image_params(name_or_path: str, image_size: int, local_files_only: bool) -> tuple[
    int, tuple[float, float, float], tuple[float, float, float]
]:
    """Resize size and normalisation from the model's preprocessor config, else OpenAI's."""
    try:  # transformers >= 5 without torchvision: the PIL processor, same parameters
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor

    try:
        processor = CLIPImageProcessor.from_pretrained(name_or_path, local_files_only=local_files_only)
    except (OSError, ValueError):
        return image_size, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    crop = processor.crop_size
    size = int(crop["height"]) if isinstance(crop, dict) and "height" in crop else image_size
    mean = tuple(float(v) for v in processor.image_mean)
    std = tuple(float(v) for v in processor.image_std)
    return size, mean, std  # type: ignore[return-value]


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


def load_clip(config: ClipConfig) -> LoadedClip:
    """Load ``CLIPModel.from_pretrained(config.model)`` for inference, or raise ``ClipLoadError``."""
    import torch
    from transformers import CLIPModel

    if config.threads:
        torch.set_num_threads(config.threads)
    name = config.model
    try:
        model = CLIPModel.from_pretrained(name, local_files_only=config.local_files_only)
    except Exception as exc:  # transformers raises OSError, ValueError, HTTP errors …
        local = Path(name).expanduser()
        hint = (
            f"the local directory {local} exists but holds no loadable CLIP model"
            if local.exists()
            else "no such local directory either"
        )
        raise ClipLoadError(
            f"Could not load CLIP model {name!r} ({type(exc).__name__}: {exc}); {hint}. "
            "To run offline, download it once on a machine with internet "
            f"(python -c \"from transformers import CLIPModel, CLIPImageProcessor as P; "
            f"CLIPModel.from_pretrained('{name}').save_pretrained('models/clip'); "
            f"P.from_pretrained('{name}').save_pretrained('models/clip')\"), copy the folder here "
            "and set FACESTATS_CLIP_MODEL=models/clip (or the clip resource's `model`)."
        ) from exc
    precision = auto_precision(config.device) if config.precision == "auto" else config.precision
    openvino = config.backend != "torch" or precision == "int8"  # float32 first, attach_openvino decides
    # Only the image tower runs in bf16: the text tower (a few prompts) stays fp32, so text
    # embeddings, which are cached per model and revision, do not depend on the precision.
    model = model.to(device=config.device, dtype=torch.float32).eval()
    if precision == "bf16" and not openvino:
        model.vision_model.to(dtype=torch.bfloat16)
        model.visual_projection.to(dtype=torch.bfloat16)
    image_size, mean, std = _load_image_params(
        name, int(model.config.vision_config.image_size), config.local_files_only
    )
    loaded = LoadedClip(
        model=model,
        model_id=name,
        image_size=image_size,
        mean=mean,
        std=std,
        dim=int(model.config.projection_dim),
        precision="fp32" if openvino else precision,  # type: ignore[arg-type]
        device=config.device,
        revision=model_revision(name, model),
        local_files_only=config.local_files_only,
        compile_mode=config.compile,
    )
    if openvino:
        from facestats_core.embedding.openvino_backend import attach_openvino

        # OpenVINO tower, or torch at the resolved precision (with a warning)
        attach_openvino(loaded, dataclasses.replace(config, precision=precision))
    return loaded


def model_revision(name_or_path: str, model: Any) -> str:
    """Identifies the weights: sha256 of a local folder's weight and config files,
    else the hub commit the files came from. Same name, other weights → other revision,
    so embeddings are never reused across different weights."""
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        digest = hashlib.sha256()
        for file in sorted(folder.iterdir()):
            if file.suffix in (".safetensors", ".bin", ".json") and file.is_file():
                digest.update(file.name.encode())
                with open(file, "rb") as fh:
                    while chunk := fh.read(1 << 22):
                        digest.update(chunk)
        return "sha256:" + digest.hexdigest()[:16]
    commit = getattr(model.config, "_commit_hash", None)
    return f"hub:{commit}" if commit else "unknown"


def _image_tower(
    model: Any, mean: Sequence[float], std: Sequence[float], precision: Precision, device: str = "cpu"
) -> Any:
    """The vision transformer and projection as one module: uint8 pixels ``(n, 3, H, W)`` → image features.

    The pixel normalisation ``(x / 255 - mean) / std`` runs here, on the model side, as one
    multiply-add per channel in float32 before the cast to the model's dtype (fused into the
    first kernels under ``torch.compile``), so the loader thread only decodes, resizes and crops.
    It is not folded into the patch convolution's weights: the multiply-add is exact for any
    model, leaves the model untouched for callers that pass float pixels, and costs ~0.2 M
    flops per 224 px image against ViT-B/32's 8.8 G."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32).view(1, 3, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], dtype=torch.float32).view(1, 3, 1, 1)

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vision_model = model.vision_model
            self.visual_projection = model.visual_projection
            self.register_buffer("scale", scale, persistent=False)
            self.register_buffer("shift", shift, persistent=False)

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            pixel_values = (pixels.float() * self.scale + self.shift).to(dtype)
            return self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output)

    return ImageTower().to(device).eval()


def _tower(clip: LoadedClip) -> Any:
    if clip.tower is None:
        clip.tower = _image_tower(clip.model, clip.mean, clip.std, clip.precision, clip.device)
    return clip.tower


def _maybe_compile(clip: LoadedClip, n_images: int) -> None:
    """Compile the tower for a job of ``n_images`` when :func:`should_compile` says so (once per
    loaded model; never again after a failure)."""
    if clip.compiled is not None or clip.compile_error is not None:
        return
    if not should_compile(clip.compile_mode, n_images):
        return
    if clip.compile_mode == "auto":
        logger.info(
            "compiling the CLIP image tower (torch.compile, %s): %d images >= %d",
            clip.precision, n_images, COMPILE_MIN_IMAGES,
        )
    try:
        clip.compiled = _compile_image_tower(clip)
    except Exception as exc:  # any failure (dynamo, inductor, no C compiler …): run eager
        _compile_failed(clip, exc)


def _compile_failed(clip: LoadedClip, exc: BaseException) -> None:
    clip.compiled = None
    clip.compile_error = f"{type(exc).__name__}: {exc}"
    logger.warning("torch.compile of the CLIP image tower failed (%s); embedding in eager mode", clip.compile_error)


def _compile_image_tower(clip: LoadedClip) -> Any:
    """``torch.compile`` of the uint8 image tower; inductor compiles it on its first call, which
    :func:`_forward_compiled` makes with frozen weights (prepacked for oneDNN) switched on."""
    import torch

    return torch.compile(_tower(clip), dynamic=False)


def _frozen_weights() -> Any:
    """A context in which inductor compiles with frozen weights: the global inductor flag ``freezing``
    set for its duration only and restored after (issue 16 found that
    ``torch.compile(options={"freezing": True})`` has no effect in torch 2.13), so nothing else
    compiled in the process inherits it."""
    import torch._inductor.config as inductor_config

    return inductor_config.patch(freezing=True)


def clip_pixels(image: Image.Image, image_size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """CLIP's pixel preprocessing for one RGB image: shorter side to ``image_size``
    (bicubic), centre crop, scale to [0, 1], normalise; returns float32 (3, H, W).
    (:func:`embed_paths` feeds :func:`clip_pixels_uint8` and normalises on the model side.)"""
    return normalize_pixels(clip_pixels_uint8(image, image_size), mean, std)


def normalize_pixels(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 ``(..., 3, H, W)`` → float32 ``(x / 255 - mean) / std`` per channel."""
    array = np.asarray(pixels, dtype=np.float32) * np.float32(1.0 / 255.0)
    shape = (3, 1, 1)
    array -= np.asarray(mean, dtype=np.float32).reshape(shape)
    array /= np.asarray(std, dtype=np.float32).reshape(shape)
    return array


def clip_pixels_uint8(image: Image.Image, image_size: int) -> np.ndarray:
    """The resize and crop of :func:`clip_pixels` without the normalisation: uint8 (3, H, W)."""
    width, height = image.size
    scale = image_size / min(width, height)
    new_w, new_h = max(image_size, round(width * scale)), max(image_size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
    if (new_w, new_h) != (image_size, image_size):
        image = image.crop((left, top, left + image_size, top + image_size))
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1))


def _decode_batch(
    paths: Sequence[Path], indices: Sequence[int], clip: LoadedClip
) -> tuple[list[int], np.ndarray, dict[int, str]]:
    ok: list[int] = []
    arrays: list[np.ndarray] = []
    failures: dict[int, str] = {}
    for index in indices:
        try:
            with Image.open(io.BytesIO(paths[index].read_bytes())) as image:
                image.draft("RGB", (clip.image_size, clip.image_size))
                arrays.append(clip_pixels_uint8(image.convert("RGB"), clip.image_size))
            ok.append(index)
        except (OSError, ValueError, SyntaxError) as exc:
            failures[index] = f"{type(exc).__name__}: {exc}"
    size = clip.image_size
    batch = np.stack(arrays) if arrays else np.zeros((0, 3, size, size), dtype=np.uint8)
    return ok, batch, failures


def iter_pixel_batches(
    paths: Sequence[Path], clip: LoadedClip, batch_size: int, prefetch: int = 2
) -> Iterator[tuple[list[int], np.ndarray, dict[int, str]]]:
    """Yield ``(indices, pixels, failures)`` per batch, decoding ahead on a thread; ``pixels`` are
    uint8 ``(n, 3, H, W)``, resized and cropped but not normalised (:func:`forward_batch` does that).

    At most ``prefetch`` decoded batches exist at any time, so memory is
    bounded by ``prefetch * batch_size`` images whatever the number of paths.
    """
    chunks = [list(range(start, min(start + batch_size, len(paths)))) for start in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-decode") as pool:
        pending: list[Future[tuple[list[int], np.ndarray, dict[int, str]]]] = []
        next_chunk = 0
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < prefetch:
                pending.append(pool.submit(_decode_batch, paths, chunks[next_chunk], clip))
                next_chunk += 1
            yield pending.pop(0).result()


def forward_batch(clip: LoadedClip, pixels: np.ndarray) -> np.ndarray:
    """Vision tower + projection on one batch; returns float32 (n, dim), not yet L2-normalised.

    ``pixels``: uint8 ``(n, 3, H, W)`` from :func:`iter_pixel_batches` (normalised here, on the
    model side; the compiled tower when there is one), or float32 already normalised by
    :func:`clip_pixels` (eager)."""
    import torch

    if clip.openvino is not None:  # float32 normalised pixels in, features out
        if pixels.dtype == np.uint8:
            pixels = normalize_pixels(pixels, clip.mean, clip.std)
        return clip.openvino(pixels)
    with torch.inference_mode():
        tensor = torch.from_numpy(np.ascontiguousarray(pixels)).to(device=clip.device)
        if tensor.dtype == torch.uint8:
            if clip.compiled is not None:
                return _forward_compiled(clip, tensor)
            features = _tower(clip)(tensor)
        else:
            model = clip.model
            dtype = torch.bfloat16 if clip.precision == "bf16" else torch.float32
            pooled = model.vision_model(pixel_values=tensor.to(dtype)).pooler_output
            features = model.visual_projection(pooled)
    return features.float().cpu().numpy()


def _forward_compiled(clip: LoadedClip, tensor: torch.Tensor) -> np.ndarray:
    """Run the compiled tower at one fixed batch size (short batches padded) to avoid recompiles.
    Compilation happens on the first call; if it (or any compiled call) fails, the batch and all
    later ones run eager."""
    import torch

    batch = clip.compiled_batch or len(tensor)
    clip.compiled_batch = batch
    outputs = []
    try:
        with _frozen_weights():
            for start in range(0, len(tensor), batch):
                chunk = tensor[start : start + batch]
                n = len(chunk)
                if n < batch:
                    chunk = torch.cat([chunk, chunk.new_zeros((batch - n, *chunk.shape[1:]))])
                outputs.append(clip.compiled(chunk)[:n].float().cpu().numpy())
    except Exception as exc:  # compilation happens here, on the first call: keep going eager
        _compile_failed(clip, exc)
        return _tower(clip)(tensor).float().cpu().numpy()
    return np.concatenate(outputs)


def l2_normalize(features: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation in float32; all-zero rows stay zero."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, eps)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (float32)."""
    return (l2_normalize(a) * l2_normalize(b)).sum(axis=1)


def embed_paths(
    clip: LoadedClip,
    paths: Sequence[Path],
    batch_size: int = 32,
    progress: Callable[[int, int, float], None] | None = None,
) -> EmbedResult:
    """Embed images from disk in batches; unreadable files are reported, not raised."""
    started = time.perf_counter()
    _maybe_compile(clip, len(paths))
    if clip.compiled is not None and clip.compiled_batch is None:
        clip.compiled_batch = batch_size
    model_seconds = 0.0
    outputs: list[np.ndarray] = []
    ok_indices: list[int] = []
    failures: dict[int, str] = {}
    done = 0
    for indices, pixels, batch_failures in iter_pixel_batches(paths, clip, batch_size):
        failures.update(batch_failures)
        if indices:
            tick = time.perf_counter()
            outputs.append(forward_batch(clip, pixels))
            model_seconds += time.perf_counter() - tick
            ok_indices.extend(indices)
        done += len(indices) + len(batch_failures)
        if progress is not None:
            progress(done, len(paths), time.perf_counter() - started)
    embeddings = (
        l2_normalize(np.concatenate(outputs)) if outputs else np.zeros((0, clip.dim), dtype=np.float32)
    )
    return EmbedResult(
        embeddings=embeddings,
        ok_indices=ok_indices,
        failures=failures,
        seconds=time.perf_counter() - started,
        model_seconds=model_seconds,
    )


def embedding_schema(dim: int) -> dict[str, Any]:
    import polars as pl

    return {
        "face_id": pl.String,
        "image_id": pl.String,
        "path": pl.String,
        "embedding": pl.Array(pl.Float32, dim),
        "model_id": pl.String,
        "model_revision": pl.String,
        "precision": pl.String,
        "chip_version": pl.String,
        "source_key": pl.String,
    }


@dataclass(frozen=True)
class EmbedStats:
    images: int
    embedded: int
    reused: int
    failed: int
    seconds: float
    model_seconds: float
    resumed: int = 0
    """Faces taken from checkpoint parts of an earlier, unfinished run (not counted in ``reused``)."""
    checkpoint_skipped: tuple[str, ...] = ()
    """Why checkpoint part files were not read (another model, unreadable, inconsistent)."""

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def _reusable(candidates: Any, ok_rows: Any, clip: LoadedClip, schema: dict[str, Any]) -> Any:
    """Rows of ``candidates`` embedded by ``clip`` (model, revision, precision) from the chip an ``ok`` row
    still names (same face id, chip version, source key), with that row's image id and path."""
    import polars as pl

    if candidates is None or not candidates.height or candidates.schema != pl.Schema(schema):
        return pl.DataFrame(schema=schema)
    return (
        candidates.filter(
            (pl.col("model_id") == clip.model_id)
            & (pl.col("model_revision") == clip.revision)
            & (pl.col("precision") == clip.recorded_precision)
        )
        .drop("path", "image_id")
        .join(ok_rows.select("face_id", "image_id", "chip_version", "source_key", "path"),
              on=["face_id", "chip_version", "source_key"])
        .unique("face_id", keep="first")
        .select(list(schema))
    )


def _embedded_rows(clip: LoadedClip, rows: Any, result: EmbedResult, schema: dict[str, Any]) -> Any:
    import polars as pl

    done = rows[result.ok_indices]
    return pl.DataFrame(
        {
            "face_id": done["face_id"],
            "image_id": done["image_id"],
            "path": done["path"],
            "embedding": pl.Series("embedding", result.embeddings, dtype=schema["embedding"]),
            "model_id": [clip.model_id] * done.height,
            "model_revision": [clip.revision] * done.height,
            "precision": [clip.recorded_precision] * done.height,
            "chip_version": done["chip_version"],
            "source_key": done["source_key"],
        },
        schema=schema,
    )


def embed_manifest(
    chips: Any,
    clip: LoadedClip,
    batch_size: int,
    chips_dir: Any,
    previous: Any = None,
    progress: Callable[[int, int, float], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> tuple[Any, EmbedStats, dict[str, str]]:
    """Embeddings of every ``ok`` face chip of a face-chips table (polars frames), one row per ``face_id``.

    ``chips_dir`` (Path or UPath) holds the chips named by ``chip_path``. Faces already
    embedded by the same model, precision and chip version in ``previous`` are reused, so only
    new faces and faces whose chip was cut again (another ``source_key``) reach the model. Returns the table, stats and ``{face_id: reason}`` for failures.

    With a ``checkpoint`` (:mod:`facestats_core.embedding.checkpoint`) the faces are embedded in chunks
    of ``checkpoint.chunk_faces`` (whole batches) and each finished chunk is written as a part file;
    parts of an earlier, killed run are read first and their faces reused under the same rules
    (counted in ``stats.resumed``). The caller removes the parts once it has stored the table.
    """
    import polars as pl

    schema = embedding_schema(clip.dim)
    ok_rows = chips.filter(pl.col("ok"))
    reuse = _reusable(previous, ok_rows, clip, schema)
    resumed = pl.DataFrame(schema=schema)
    skipped: list[str] = []
    if checkpoint is not None:
        model = (clip.model_id, clip.revision, clip.recorded_precision)  # what the rows record
        key = checkpoint_key(*model, clip.dim)
        parts = read_parts(checkpoint.directory, key, schema, model)
        skipped = parts.skipped
        resumed = _reusable(parts.rows, ok_rows, clip, schema).join(reuse.select("face_id"), on="face_id", how="anti")
    todo = ok_rows.join(pl.concat([reuse, resumed]).select("face_id"), on="face_id", how="anti")
    paths = [chips_dir / name for name in todo["chip_path"].to_list()]
    chunk = chunk_size(checkpoint.chunk_faces, batch_size) if checkpoint is not None else max(1, len(paths))
    run_id = new_run_id()
    started = time.perf_counter()
    fresh: list[Any] = []
    failures: dict[str, str] = {}
    seconds = model_seconds = 0.0
    for start in range(0, len(paths), chunk):
        rows = todo[start : start + chunk]
        step = None if progress is None else (
            lambda done, _total, _s, offset=start: progress(offset + done, len(paths), time.perf_counter() - started)
        )
        result = embed_paths(clip, paths[start : start + chunk], batch_size=batch_size, progress=step)
        seconds, model_seconds = seconds + result.seconds, model_seconds + result.model_seconds
        fresh.append(_embedded_rows(clip, rows, result, schema))
        failures.update({rows["face_id"][i]: reason for i, reason in result.failures.items()})
        if checkpoint is not None and fresh[-1].height:
            write_part(checkpoint.directory, key, run_id, start // chunk, fresh[-1])
    table = pl.concat([reuse, resumed, *fresh]).sort("face_id")
    stats = EmbedStats(
        images=table.height,
        embedded=sum(frame.height for frame in fresh),
        reused=reuse.height,
        failed=len(failures),
        seconds=seconds,
        model_seconds=model_seconds,
        resumed=resumed.height,
        checkpoint_skipped=tuple(skipped),
    )
    return table, stats, failures
