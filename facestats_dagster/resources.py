"""Configurable resources: where data lives, which CLIP runs, how images are preprocessed.

Defaults come from environment variables (see ``from_env``) so cron jobs and
deployments configure FaceStats without editing code.
"""

from __future__ import annotations

import os
from functools import lru_cache

import dagster as dg

from facestats_core.embedding import DEFAULT_MODEL, ClipConfig, LoadedClip, load_clip
from facestats_core.layout import Layout
from facestats_core.preprocess import PreprocessConfig


class PathsResource(dg.ConfigurableResource):
    """Data and model roots: local paths (relative to the working directory) or fsspec URLs."""

    data_root: str = "data"
    model_root: str = "models"

    def layout(self) -> Layout:
        return Layout.from_roots(self.data_root, self.model_root)


class PreprocessResource(dg.ConfigurableResource):
    """Settings of ``facestats_core.preprocess.PreprocessConfig``."""

    size: int = 256
    jpeg_quality: int = 95
    max_pixels: int = 80_000_000
    tiny_side: int = 64
    blur_threshold: float = 20.0

    def config(self) -> PreprocessConfig:
        return PreprocessConfig(
            size=self.size,
            jpeg_quality=self.jpeg_quality,
            max_pixels=self.max_pixels,
            tiny_side=self.tiny_side,
            blur_threshold=self.blur_threshold,
        )


@lru_cache(maxsize=2)
def _load_cached(config: ClipConfig) -> LoadedClip:
    return load_clip(config)


class ClipResource(dg.ConfigurableResource):
    """The CLIP image encoder: a Hugging Face id or a local ``save_pretrained`` folder."""

    model: str = DEFAULT_MODEL
    batch_size: int = 32
    precision: str = "fp32"
    threads: int = 0
    device: str = "cpu"
    local_files_only: bool = False
    compile: bool = False

    def config(self) -> ClipConfig:
        return ClipConfig(
            model=self.model,
            batch_size=self.batch_size,
            precision=self.precision,  # type: ignore[arg-type]
            threads=self.threads,
            device=self.device,
            local_files_only=self.local_files_only,
            compile=self.compile,
        )

    def load(self) -> LoadedClip:
        """The loaded model, cached per process (several shards in one run load it once)."""
        return _load_cached(self.config())


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def from_env() -> dict[str, dg.ConfigurableResource]:
    """Resources configured from ``FACESTATS_*`` environment variables."""
    return {
        "paths": PathsResource(
            data_root=_env("FACESTATS_DATA_ROOT", "data"),
            model_root=_env("FACESTATS_MODEL_ROOT", "models"),
        ),
        "preprocess": PreprocessResource(size=int(_env("FACESTATS_IMAGE_SIZE", "256"))),
        "clip": ClipResource(
            model=_env("FACESTATS_CLIP_MODEL", DEFAULT_MODEL),
            batch_size=int(_env("FACESTATS_CLIP_BATCH_SIZE", "32")),
            precision=_env("FACESTATS_CLIP_PRECISION", "fp32"),
            threads=int(_env("FACESTATS_CLIP_THREADS", "0")),
            device=_env("FACESTATS_CLIP_DEVICE", "cpu"),
            local_files_only=_env("FACESTATS_CLIP_LOCAL_ONLY", "0") == "1",
            compile=_env("FACESTATS_CLIP_COMPILE", "0") == "1",
        ),
    }
