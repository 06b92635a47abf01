"""CLIP image embeddings: model loading, a bounded-memory batch loader, batched inference.

The pieces follow the reader → mapper → writer split of clip-retrieval:
``iter_pixel_batches`` decodes images on a background thread (at most
``prefetch`` batches in memory), ``forward_batch`` runs the vision tower and
projection on a whole batch under ``torch.inference_mode``, ``embed_paths``
ties them together and L2-normalises. torch and transformers are imported
inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16"]
Backend = Literal["auto", "torch", "openvino"]
ConfigPrecision = Literal["fp32", "bf16", "int8"]
"""``int8`` runs only on the OpenVINO backend."""

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipLoadError(RuntimeError):
    """The CLIP model could not be loaded; the message says what was tried and what to do."""


@dataclass(frozen=True)
class ClipConfig:
    """Which CLIP to run and how.

    ``model`` is a Hugging Face model id or a local directory written by
    ``save_pretrained``. ``threads`` = 0 keeps torch's default. ``compile``
    runs the image tower through ``torch.compile`` (inductor, frozen weights):
    about 25 s of start-up for ViT-B/32 and then ~1.7x the eager bf16 speed on
    CPU (docs/performance.md), worth it from a few thousand images on.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 32
    precision: ConfigPrecision = "fp32"
    threads: int = 0
    device: str = "cpu"
    local_files_only: bool = False
    compile: bool = False
    backend: Backend = "torch"
    """``auto``/``openvino``: the image tower on OpenVINO where its policy allows (``openvino_backend``);
    precision ``int8`` exists only there."""
    cache_dir: str = ""
    """Where converted OpenVINO IR is cached (empty: ``~/.cache/facestats/openvino``)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in ("fp32", "bf16", "int8"):
            raise ValueError(f"precision must be 'fp32', 'bf16' or 'int8', got {self.precision!r}")
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
    openvino = config.backend != "torch" or config.precision == "int8"  # float32 first, attach_openvino casts
    dtype = torch.bfloat16 if config.precision == "bf16" and not openvino else torch.float32
    model = model.to(device=config.device, dtype=dtype).eval()
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
        precision="fp32" if openvino else config.precision,  # type: ignore[arg-type]
        device=config.device,
        revision=model_revision(name, model),
        compiled=_compile_image_tower(model) if config.compile else None,
        local_files_only=config.local_files_only,
    )
    if openvino:
        from facestats_core.embedding.openvino_backend import attach_openvino

        attach_openvino(loaded, config)  # OpenVINO tower, or torch at the asked precision (with a warning)
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


def _image_tower(model: Any) -> Any:
    """The vision transformer and projection as one module: pixels → image features."""
    import torch

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vision_model = model.vision_model
            self.visual_projection = model.visual_projection

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output)

    return ImageTower().eval()


def _compile_image_tower(model: Any) -> Any:
    """``torch.compile`` with frozen weights (prepacked for oneDNN); compiled on first call."""
    import torch
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    return torch.compile(_image_tower(model), dynamic=False)


def clip_pixels(image: Image.Image, image_size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """CLIP's pixel preprocessing for one RGB image: shorter side to ``image_size``
    (bicubic), centre crop, scale to [0, 1], normalise; returns float32 (3, H, W)."""
    width, height = image.size
    scale = image_size / min(width, height)
    new_w, new_h = max(image_size, round(width * scale)), max(image_size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
    if (new_w, new_h) != (image_size, image_size):
        image = image.crop((left, top, left + image_size, top + image_size))
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    array *= 1.0 / 255.0
    array -= np.asarray(mean, dtype=np.float32)
    array /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


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
                arrays.append(clip_pixels(image.convert("RGB"), clip.image_size, clip.mean, clip.std))
            ok.append(index)
        except (OSError, ValueError, SyntaxError) as exc:
            failures[index] = f"{type(exc).__name__}: {exc}"
    size = clip.image_size
    batch = np.stack(arrays) if arrays else np.zeros((0, 3, size, size), dtype=np.float32)
    return ok, batch, failures


def iter_pixel_batches(
    paths: Sequence[Path], clip: LoadedClip, batch_size: int, prefetch: int = 2
) -> Iterator[tuple[list[int], np.ndarray, dict[int, str]]]:
    """Yield ``(indices, pixels, failures)`` per batch, decoding ahead on a thread.

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
    """Vision tower + projection on one batch; returns float32 (n, dim), not yet normalised."""
    import torch

    if clip.openvino is not None:
        return clip.openvino(pixels)
    model = clip.model
    dtype = torch.bfloat16 if clip.precision == "bf16" else torch.float32
    with torch.inference_mode():
        tensor = torch.from_numpy(pixels).to(device=clip.device, dtype=dtype)
        if clip.compiled is not None:
            return _forward_compiled(clip, tensor)
        pooled = model.vision_model(pixel_values=tensor).pooler_output
        features = model.visual_projection(pooled)
    return features.float().cpu().numpy()


def _forward_compiled(clip: LoadedClip, tensor: torch.Tensor) -> np.ndarray:
    """Run the compiled tower at one fixed batch size (short batches padded) to avoid recompiles."""
    import torch

    batch = clip.compiled_batch or len(tensor)
    clip.compiled_batch = batch
    outputs = []
    for start in range(0, len(tensor), batch):
        chunk = tensor[start : start + batch]
        n = len(chunk)
        if n < batch:
            chunk = torch.cat([chunk, chunk.new_zeros((batch - n, *chunk.shape[1:]))])
        outputs.append(clip.compiled(chunk)[:n].float().cpu().numpy())
    return np.concatenate(outputs)


def l2_normalize(features: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation in float32; all-zero rows stay zero."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, eps)


def embed_paths(
    clip: LoadedClip,
    paths: Sequence[Path],
    batch_size: int = 32,
    progress: Callable[[int, int, float], None] | None = None,
) -> EmbedResult:
    """Embed images from disk in batches; unreadable files are reported, not raised."""
    started = time.perf_counter()
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

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def embed_manifest(
    chips: Any,
    clip: LoadedClip,
    batch_size: int,
    chips_dir: Any,
    previous: Any = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Any, EmbedStats, dict[str, str]]:
    """Embeddings of every ``ok`` face chip of a face-chips table (polars frames), one row per ``face_id``.

    ``chips_dir`` (Path or UPath) holds the chips named by ``chip_path``. Faces already
    embedded by the same model, precision and chip version in ``previous`` are reused, so only
    new faces and faces whose chip was cut again (another ``source_key``) reach the model. Returns the table, stats and ``{face_id: reason}`` for failures.
    """
    import polars as pl

    schema = embedding_schema(clip.dim)
    ok_rows = chips.filter(pl.col("ok"))
    reuse = pl.DataFrame(schema=schema)
    if previous is not None and previous.height and previous.schema == pl.Schema(schema):
        reuse = (
            previous.filter(
                (pl.col("model_id") == clip.model_id)
                & (pl.col("model_revision") == clip.revision)
                & (pl.col("precision") == clip.recorded_precision)
            )
            .drop("path", "image_id")
            .join(ok_rows.select("face_id", "image_id", "chip_version", "source_key", "path"),
                  on=["face_id", "chip_version", "source_key"])
            .unique("face_id", keep="first")
        )
    todo = ok_rows.join(reuse.select("face_id"), on="face_id", how="anti")
    paths = [chips_dir / name for name in todo["chip_path"].to_list()]
    result = embed_paths(clip, paths, batch_size=batch_size, progress=progress)
    done = todo[result.ok_indices]
    fresh = pl.DataFrame(
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
    table = pl.concat([reuse.select(list(schema)), fresh]).sort("face_id")
    failures = {todo["face_id"][i]: reason for i, reason in result.failures.items()}
    stats = EmbedStats(
        images=table.height,
        embedded=fresh.height,
        reused=reuse.height,
        failed=len(failures),
        seconds=result.seconds,
        model_seconds=result.model_seconds,
    )
    return table, stats, failures
