"""Composite faces: average images into one picture and write it with its json sidecar.

* :func:`average_images` streams images into a float64 running sum (one image
  in memory at a time), so memory does not grow with the number of faces.
* :func:`composite_meta` is the json sidecar of a composite.
* :func:`write_composite` writes ``<slug>.png`` and ``<slug>.json`` atomically
  (the json last: its presence marks a complete composite).

Face selection is in :mod:`facestats_core.composites.select`; tiling composites
into a sheet in :mod:`facestats_core.composites.contact_sheet`. Sharpness of a
composite is measured with :func:`facestats_core.images.preprocess.laplacian_variance`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facestats_core.composites.filter_spec import FilterSpec
from facestats_core.composites.not_built import BUILT
from facestats_core.composites.select import Selection
from facestats_core.images.preprocess import laplacian_variance, square_resize
from facestats_core.io.atomic import atomic_write_bytes, atomic_write_json

_SLUG_OK = re.compile(r"[a-z0-9_][a-z0-9_.\-]*")


class MeanAccumulator:
    """Running float64 sum of equally sized RGB images (memory: one ``size²×3`` float64 array)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.count = 0
        self._sum = np.zeros((size, size, 3), dtype=np.float64)

    def add(self, image: Image.Image) -> None:
        """Add one image (converted to RGB and square-resized to ``size`` if needed)."""
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        if rgb.size != (self.size, self.size):
            rgb = square_resize(rgb, self.size)
        np.add(self._sum, np.asarray(rgb, dtype=np.uint8), out=self._sum, casting="unsafe")
        self.count += 1

    def mean(self) -> np.ndarray:
        """The mean image (HxWx3 float64); all zeros when nothing was added."""
        return self._sum / self.count if self.count else np.zeros_like(self._sum)


class WeightedMeanAccumulator:
    """Running float64 sum of ``size×size×3`` pixel values with a per-pixel count, for warped
    faces that do not cover every output pixel (memory: one sum and one count array)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.count = 0
        self._sum = np.zeros((size * size, 3), dtype=np.float64)
        self._weight = np.zeros(size * size, dtype=np.float64)

    def add(self, values: np.ndarray, inside: np.ndarray) -> None:
        """Add one face: ``values`` ``(size², 3)``, counted where ``inside`` ``(size²,)`` is true."""
        if values.shape != self._sum.shape or inside.shape != self._weight.shape:
            raise ValueError(f"expected {self._sum.shape} values and {self._weight.shape} mask")
        from facestats_core.composites.kernels import accumulate  # noqa: PLC0415 - numba compiles on first use

        samples = np.ascontiguousarray(values, dtype=np.float32 if values.dtype == np.float32 else np.float64)
        accumulate(self._sum, self._weight, samples, np.ascontiguousarray(inside, dtype=bool))
        self.count += 1

    def mean(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean HxWx3 float64, covered HxW bool)``; uncovered pixels are 0."""
        covered = self._weight > 0
        mean = np.zeros_like(self._sum)
        mean[covered] = self._sum[covered] / self._weight[covered, None]
        return mean.reshape(self.size, self.size, 3), covered.reshape(self.size, self.size)


def average_images(
    paths: Iterable[Path],
    size: int,
    transform: Callable[[Image.Image, Path], Image.Image] | None = None,
) -> tuple[np.ndarray, int, list[tuple[str, str]]]:
    """Mean of the images at ``paths`` as float64 ``size×size×3``, streamed one at a time.

    ``transform(image, path)`` (e.g. face alignment) is applied before
    averaging. Unreadable images are skipped and reported in ``failures`` as
    ``(path, error)``. Returns ``(mean, used, failures)``; ``mean`` is zeros if
    ``used == 0``.
    """
    acc = MeanAccumulator(size)
    failures: list[tuple[str, str]] = []
    for path in paths:
        try:
            with Image.open(path) as opened:
                opened.load()
                image = transform(opened, Path(path)) if transform is not None else opened
                acc.add(image)
        except Exception as exc:  # noqa: BLE001 - one bad image must not sink the composite
            failures.append((str(path), f"{type(exc).__name__}: {exc}"))
    return acc.mean(), acc.count, failures


def to_uint8(mean: np.ndarray) -> np.ndarray:
    """Round and clip a float mean image to uint8."""
    return np.clip(np.rint(np.asarray(mean, dtype=np.float64)), 0, 255).astype(np.uint8)


def composite_sharpness(image: Image.Image | np.ndarray) -> float:
    """Laplacian variance of a composite (higher = crisper; see ``preprocess.laplacian_variance``)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(to_uint8(image) if image.dtype != np.uint8 else image)
    return laplacian_variance(image)


def composite_meta(
    spec: FilterSpec,
    selection: Selection,
    used: int,
    failures: list[tuple[str, str]] | None = None,
    alignment: dict[str, Any] | None = None,
    sharpness: float | None = None,
) -> dict[str, Any]:
    """The json sidecar of a composite."""
    return {
        "spec": spec.canonical,
        "slug": spec.slug,
        "status": BUILT,
        "effective_spec": selection.spec.canonical,
        "relaxed": list(selection.relaxed),
        "matched": selection.matched,
        "used": used,
        "n": spec.n,
        "seed": spec.seed,
        "face_ids": list(selection.face_ids),
        "failures": [list(f) for f in failures or []],
        "alignment": alignment or {},
        "sharpness": sharpness,
    }


def write_composite(
    out_dir: Any, slug: str, image: Image.Image | np.ndarray, meta: dict[str, Any], fmt: str = "png"
) -> tuple[Any, Any]:
    """Atomically write ``<slug>.<fmt>`` then ``<slug>.json``; return both paths.

    ``out_dir`` may be a Path, str or UPath. ``fmt`` is ``png`` or ``jpg``.
    """
    if not _SLUG_OK.fullmatch(slug) or ".." in slug:
        raise ValueError(f"unsafe slug {slug!r}: use [a-z0-9_.-], no '..'")
    if fmt not in ("png", "jpg"):
        raise ValueError(f"fmt must be 'png' or 'jpg', got {fmt!r}")
    if isinstance(image, np.ndarray):
        image = Image.fromarray(to_uint8(image) if image.dtype != np.uint8 else image, "RGB")
    base = Path(out_dir) if isinstance(out_dir, str) else out_dir
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", optimize=False)
    else:
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    image_path = base / f"{slug}.{fmt}"
    json_path = base / f"{slug}.json"
    atomic_write_bytes(image_path, buffer.getvalue())
    atomic_write_json(json_path, {**meta, "image_file": f"{slug}.{fmt}"})
    return image_path, json_path
