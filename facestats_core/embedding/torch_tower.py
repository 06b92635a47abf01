"""The CLIP image tower on torch, fp32 or bf16, eager or compiled (``torch.compile``, inductor).

:class:`TorchTower` runs ``visual_projection(vision_model(pixels).pooler_output)`` on a whole
batch under ``torch.inference_mode``. uint8 pixels from the reader are normalised on the model side
(:func:`_uint8_tower`). With compilation on (``config.should_compile``) the tower is compiled once,
run at one fixed batch size with frozen weights, and falls back to eager — with one warning — on any
compilation failure. torch is a heavy optional dependency: it is imported inside the functions that
need it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from facestats_core.embedding.config import COMPILE_MIN_IMAGES, CompileSetting, Precision, should_compile

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _module_classes() -> tuple[type, type]:
    """The two torch modules, defined on first use (torch is imported here, not at import time)."""
    import torch

    class VisionFeatures(torch.nn.Module):
        """Normalised float pixels ``(n, 3, H, W)`` → image features (vision transformer + projection)."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.vision_model = model.vision_model
            self.visual_projection = model.visual_projection

        def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output)

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.features(pixel_values)

    class Uint8Features(VisionFeatures):
        """uint8 pixels → ``(x * scale + shift)`` in float32, cast to ``dtype``, → image features."""

        def __init__(self, model: Any, scale: torch.Tensor, shift: torch.Tensor, dtype: torch.dtype) -> None:
            super().__init__(model)
            self.register_buffer("scale", scale, persistent=False)
            self.register_buffer("shift", shift, persistent=False)
            self.pixel_dtype = dtype

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.features((pixels.float() * self.scale + self.shift).to(self.pixel_dtype))

    return VisionFeatures, Uint8Features


def vision_features(model: Any) -> Any:
    """``vision_model`` + ``visual_projection`` of a ``CLIPModel`` as one module: normalised float
    pixels ``(n, 3, H, W)`` → image features. Shares the model's weights."""
    return _module_classes()[0](model)


def _uint8_tower(
    model: Any, mean: Sequence[float], std: Sequence[float], precision: Precision, device: str = "cpu"
) -> Any:
    """The image tower on uint8 pixels ``(n, 3, H, W)`` → image features.

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
    return _module_classes()[1](model, scale, shift, dtype).to(device).eval()


def _compile_module(module: Any) -> Any:
    """``torch.compile`` of the uint8 image tower; inductor compiles it on its first call, which
    :meth:`TorchTower._embed_compiled` makes with frozen weights (prepacked for oneDNN) switched on."""
    import torch

    return torch.compile(module, dynamic=False)


def _frozen_weights() -> Any:
    """A context in which inductor compiles with frozen weights: the global inductor flag ``freezing``
    set for its duration only and restored after, so nothing else compiled in the process inherits it.
    (``torch.compile(options={"freezing": True})`` has no effect in torch 2.13.)"""
    import torch._inductor.config as inductor_config

    return inductor_config.patch(freezing=True)


class TorchTower:
    """The image tower of ``model`` on torch at ``precision`` (an :class:`~facestats_core.embedding.tower.ImageTower`).

    Building it casts the model's ``vision_model`` and ``visual_projection`` to bf16 when
    ``precision`` is ``bf16``; the text tower stays float32, so text embeddings (cached per model
    and revision) never depend on the precision. ``compile_mode`` (``True``, ``False``, ``"auto"``)
    is decided per job in :meth:`prepare`; the compiled module, its batch size and a compilation
    error are this tower's own state."""

    backend: ClassVar[str] = "torch"

    def __init__(
        self, model: Any, mean: Sequence[float], std: Sequence[float], precision: Precision,
        device: str = "cpu", compile_mode: CompileSetting = False,
    ) -> None:
        import torch

        if precision == "bf16":
            model.vision_model.to(dtype=torch.bfloat16)
            model.visual_projection.to(dtype=torch.bfloat16)
        self._precision: Precision = precision
        self.device = device
        self.compile_mode = compile_mode
        self.module = _uint8_tower(model, mean, std, precision, device)
        self.compiled: Any = None
        self.compiled_batch: int | None = None
        self.compile_error: str | None = None
        """Why compilation failed (then every later batch runs eager); None when it did not fail."""

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def label(self) -> str:
        return self._precision

    def prepare(self, n_images: int, batch_size: int) -> None:
        """Compile for a job of ``n_images`` when ``should_compile`` says so (once per tower; never
        again after a failure); the first job's ``batch_size`` is the compiled batch size."""
        if self.compiled is None and self.compile_error is None and should_compile(self.compile_mode, n_images):
            if self.compile_mode == "auto":
                logger.info("compiling the CLIP image tower (torch.compile, %s): %d images >= %d",
                            self._precision, n_images, COMPILE_MIN_IMAGES)
            try:
                self.compiled = _compile_module(self.module)
            except Exception as exc:  # any failure (dynamo, inductor, no C compiler …): run eager
                self._compile_failed(exc)
        if self.compiled is not None and self.compiled_batch is None:
            self.compiled_batch = batch_size

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Features of uint8 pixels (normalised here; the compiled module when there is one) or of
        float32 pixels already normalised (eager)."""
        import torch

        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(pixels)).to(device=self.device)
            if tensor.dtype == torch.uint8:
                if self.compiled is not None:
                    return self._embed_compiled(tensor)
                features = self.module(tensor)
            else:
                features = self.module.features(tensor.to(self.module.pixel_dtype))
        return features.float().cpu().numpy()

    def _embed_compiled(self, tensor: torch.Tensor) -> np.ndarray:
        """Run the compiled module at one fixed batch size (short batches padded) to avoid recompiles.
        Compilation happens on the first call; if it (or any compiled call) fails, the batch and all
        later ones run eager."""
        import torch

        batch = self.compiled_batch or len(tensor)
        self.compiled_batch = batch
        outputs = []
        try:
            with _frozen_weights():
                for start in range(0, len(tensor), batch):
                    chunk = tensor[start : start + batch]
                    n = len(chunk)
                    if n < batch:
                        chunk = torch.cat([chunk, chunk.new_zeros((batch - n, *chunk.shape[1:]))])
                    outputs.append(self.compiled(chunk)[:n].float().cpu().numpy())
        except Exception as exc:  # compilation happens here, on the first call: keep going eager
            self._compile_failed(exc)
            return self.module(tensor).float().cpu().numpy()
        return np.concatenate(outputs)

    def _compile_failed(self, exc: BaseException) -> None:
        self.compiled = None
        self.compile_error = f"{type(exc).__name__}: {exc}"
        logger.warning("torch.compile of the CLIP image tower failed (%s); embedding in eager mode",
                       self.compile_error)
