"""Loading a CLIP: ``CLIPModel.from_pretrained``, its preprocessing and revision, and the one image tower that runs.

:func:`load_clip` resolves the precision (``config.auto_precision``) and the backend
(``config.resolve_backend``), then builds exactly one tower: OpenVINO's from the float32 model when
the policy picks it and it builds, else torch's at the asked precision (the fall-back is logged and
warned). Towers never call back into this module. torch and transformers are heavy optional
dependencies: they are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

from facestats_core.embedding.config import ClipConfig, Precision, auto_precision, resolve_backend
from facestats_core.embedding.openvino_tower import build_openvino_tower, cache_root
from facestats_core.embedding.pixels import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from facestats_core.embedding.torch_tower import TorchTower
from facestats_core.embedding.tower import ImageTower, LoadedClip

log = logging.getLogger(__name__)


class ClipLoadError(RuntimeError):
    """The CLIP model could not be loaded; the message says what was tried and what to do."""


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


def _from_pretrained(name: str, local_files_only: bool) -> Any:
    from transformers import CLIPModel

    try:
        return CLIPModel.from_pretrained(name, local_files_only=local_files_only)
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


def load_clip(config: ClipConfig) -> LoadedClip:
    """Load ``CLIPModel.from_pretrained(config.model)`` for inference with its image tower, or raise ``ClipLoadError``."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    model = _from_pretrained(config.model, config.local_files_only)
    model = model.to(device=config.device, dtype=torch.float32).eval()
    image_size, mean, std = _load_image_params(
        config.model, int(model.config.vision_config.image_size), config.local_files_only
    )
    revision = model_revision(config.model, model)
    tower = _image_tower(model, config, revision, image_size, mean, std)
    return LoadedClip(model=model, model_id=config.model, revision=revision, image_size=image_size, mean=mean,
                      std=std, dim=int(model.config.projection_dim), device=config.device, tower=tower,
                      local_files_only=config.local_files_only)


def _image_tower(
    model: Any, config: ClipConfig, revision: str, image_size: int,
    mean: tuple[float, float, float], std: tuple[float, float, float],
) -> ImageTower:
    """The tower ``config`` asks for on a float32 ``model``: OpenVINO when ``resolve_backend`` picks it
    and it builds, else torch at the asked precision (with a warning when OpenVINO was asked for)."""
    precision = auto_precision(config.device) if config.precision == "auto" else config.precision
    choice = resolve_backend(config.backend, precision, config.device)
    if choice.backend == "openvino":
        try:
            tower = build_openvino_tower(model, revision, image_size, mean, std, choice.precision,
                                         config.batch_size, cache_root(config.cache_dir), config.threads)
        except Exception as exc:
            log.warning("OpenVINO backend failed (%s: %s); falling back to torch", type(exc).__name__, exc)
            warnings.warn(f"OpenVINO backend failed ({type(exc).__name__}: {exc}); using torch", stacklevel=3)
        else:
            if tower.pending_int8:
                log.warning("int8 asked but no calibrated IR in %s yet: running %s until calibrate_from_paths "
                            "/ quantize_int8 is called", tower.cache_dir, tower.label)
            log.info("CLIP image tower on OpenVINO %s (%s; IR %s, %s)", tower.label, choice.reason, tower.ir_dir,
                     "converted now" if tower.converted else "from cache")
            return tower
    elif config.backend == "openvino" or precision == "int8":
        log.warning("OpenVINO not used: %s; running torch %s", choice.reason, choice.precision)
        warnings.warn(f"OpenVINO not used: {choice.reason}; running torch {choice.precision}", stacklevel=3)
    torch_precision: Precision = "bf16" if precision == "bf16" else "fp32"
    return TorchTower(model, mean, std, torch_precision, config.device, config.compile)
