"""Composite faces: select images by filter spec, average them, write the result.

* :func:`select_images` applies a :class:`~facestats_core.composites.filter_spec.FilterSpec`
  to the master table and samples ``n`` images deterministically.
* :func:`average_images` streams images into a float64 running sum (one image
  in memory at a time), so memory does not grow with the number of faces.
* :func:`write_composite` writes ``<slug>.png`` and ``<slug>.json`` atomically
  (the json last: its presence marks a complete composite).
* :func:`contact_sheet` tiles composites with captions.

Sharpness of a composite is measured with
:func:`facestats_core.images.preprocess.laplacian_variance`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from PIL import Image, ImageDraw, ImageFont

from facestats_core.io.atomic import atomic_write_bytes, atomic_write_json
from facestats_core.composites.filter_spec import FilterSpec
from facestats_core.images.preprocess import laplacian_variance, square_resize

RELAX_ORDER: tuple[str, ...] = ("attractiveness", "age", "cluster", "ethnicity", "gender")
"""Filters dropped, in this order, when ``relax=True`` and too few faces match:
the finest-grained / least identity-defining filters go first."""

_SLUG_OK = re.compile(r"[a-z0-9_][a-z0-9_.\-]*")


class TooFewFacesError(ValueError):
    """Fewer faces match a spec than a composite needs."""

    def __init__(
        self,
        spec: FilterSpec,
        matched: int,
        min_faces: int,
        relaxed: list[str] | None = None,
        excluded: int = 0,
        excluded_reason: str = "without eye landmarks",
    ):
        self.spec = spec
        self.matched = matched
        self.min_faces = min_faces
        self.relaxed = list(relaxed or [])
        self.excluded = excluded
        extra = f" even after relaxing {', '.join(self.relaxed)}" if self.relaxed else ""
        if excluded:
            counted = (
                f"matched {matched + excluded} faces{extra}, {excluded} of them {excluded_reason} "
                f"(excluded), leaving {matched}"
            )
        else:
            counted = f"matched {matched} faces{extra}"
        super().__init__(
            f"filter spec {spec.canonical!r} {counted}; a composite needs at least "
            f"{min_faces} (widen the spec, lower min_faces, or relax)"
        )


@dataclass(frozen=True)
class Selection:
    """Result of :func:`select_images`.

    ``matched``: rows matching the effective spec; ``image_ids``: the sampled
    ids (sorted); ``relaxed``: dropped terms as ``key=value``, in drop order;
    ``spec``: the effective (possibly relaxed) spec.
    """

    matched: int
    image_ids: list[str]
    relaxed: list[str] = field(default_factory=list)
    spec: FilterSpec = field(default_factory=FilterSpec)


def _matching_ids(master: pl.DataFrame, spec: FilterSpec) -> list[str]:
    missing = [c for c in ("image_id", *spec.required_columns()) if c not in master.columns]
    if missing:
        raise ValueError(f"master table lacks columns {missing} needed by spec {spec.canonical!r}")
    ids = master.filter(spec.to_polars_expr()).get_column("image_id").drop_nulls().unique().sort()
    return [str(v) for v in ids.to_list()]


def sample_ids(ids: list[str], n: int | None, seed: int) -> list[str]:
    """Up to ``n`` of ``ids`` chosen with ``numpy.random.default_rng(seed)``, returned sorted.

    The input is sorted first, so the draw depends only on the set of ids.
    """
    ordered = sorted(ids)
    if n is None or n >= len(ordered):
        return ordered
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(ordered), size=n, replace=False))
    return [ordered[int(i)] for i in picked]


def select_images(
    master: pl.DataFrame, spec: FilterSpec, min_faces: int, relax: bool = False
) -> Selection:
    """Filter ``master`` (needs ``image_id`` + the spec's columns) by ``spec`` and sample ``spec.n``.

    When fewer than ``min_faces`` rows match: raise :class:`TooFewFacesError`,
    or with ``relax`` drop the spec's filters in :data:`RELAX_ORDER` one at a
    time until enough match (raising if even the last one is not enough).
    """
    if min_faces < 1:
        raise ValueError(f"min_faces must be >= 1, got {min_faces}")
    current = spec
    relaxed: list[str] = []
    ids = _matching_ids(master, current)
    if len(ids) < min_faces and relax:
        for key in RELAX_ORDER:
            if len(ids) >= min_faces:
                break
            if getattr(current, key) is None:
                continue
            relaxed.append(f"{key}={current.terms()[key]}")
            current = current.without(key)
            ids = _matching_ids(master, current)
    if len(ids) < min_faces:
        raise TooFewFacesError(spec, len(ids), min_faces, relaxed)
    return Selection(
        matched=len(ids), image_ids=sample_ids(ids, current.n, current.seed), relaxed=relaxed, spec=current
    )


def select_usable(
    master: pl.DataFrame,
    spec: FilterSpec,
    min_faces: int,
    relax: bool = False,
    usable: pl.Expr | None = None,
    excluded_reason: str = "without eye landmarks",
) -> tuple[Selection, int]:
    """:func:`select_images` over the rows where ``usable`` holds (e.g. ``aligned_ok``).

    Returns the selection and how many rows match its effective spec but are
    not usable (``excluded``). When too few usable faces match, the
    :class:`TooFewFacesError` counts both the matches and the exclusions.
    """
    if usable is None:
        return select_images(master, spec, min_faces, relax), 0
    eligible = master.filter(usable.fill_null(False))
    try:
        selection = select_images(eligible, spec, min_faces, relax)
    except TooFewFacesError as exc:
        effective = spec.without(*(term.split("=")[0] for term in exc.relaxed)) if exc.relaxed else spec
        everything = len(_matching_ids(master, effective))
        raise TooFewFacesError(
            spec, exc.matched, min_faces, exc.relaxed, excluded=everything - exc.matched,
            excluded_reason=excluded_reason,
        ) from None
    return selection, len(_matching_ids(master, selection.spec)) - selection.matched


# --------------------------------------------------------------------------- averaging


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
        "effective_spec": selection.spec.canonical,
        "relaxed": list(selection.relaxed),
        "matched": selection.matched,
        "used": used,
        "n": spec.n,
        "seed": spec.seed,
        "image_ids": list(selection.image_ids),
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


# --------------------------------------------------------------------------- contact sheet


def _fit_caption(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int, max_lines: int) -> list[str]:
    """Greedy-wrap ``text`` (breaking at ',', ' ' or anywhere) into at most ``max_lines`` lines."""
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        cut = len(rest)
        while cut > 1 and draw.textlength(rest[:cut], font=font) > width:
            cut -= 1
        if cut < len(rest):
            soft = max(rest.rfind(",", 0, cut), rest.rfind(" ", 0, cut))
            if soft > 0:
                cut = soft + 1
        lines.append(rest[:cut].strip())
        rest = rest[cut:]
    if rest and lines:
        last = lines[-1]
        while last and draw.textlength(last + "...", font=font) > width:
            last = last[:-1]
        lines[-1] = last + "..."
    return lines


def contact_sheet(
    items: list[tuple[Image.Image, str]],
    columns: int = 4,
    tile: int = 192,
    caption_lines: int = 2,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Grid of ``tile``-px images, each with its caption below (PIL default font)."""
    if columns < 1 or tile < 16:
        raise ValueError(f"columns must be >= 1 and tile >= 16, got {columns}, {tile}")
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), "Ag,|", font=font)
    line_h = int(y1 - y0) + 3
    pad = 4
    cell_w, cell_h = tile + 2 * pad, tile + 2 * pad + caption_lines * line_h
    rows = max(1, -(-len(items) // columns))
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), background)
    draw = ImageDraw.Draw(sheet)
    for index, (image, caption) in enumerate(items):
        r, c = divmod(index, columns)
        left, top = c * cell_w + pad, r * cell_h + pad
        thumb = image.convert("RGB")
        if thumb.size != (tile, tile):
            thumb = square_resize(thumb, tile)
        sheet.paste(thumb, (left, top))
        for k, line in enumerate(_fit_caption(draw, caption, font, tile, caption_lines)):
            draw.text((left, top + tile + 2 + k * line_h - y0), line, fill=(0, 0, 0), font=font)
    return sheet
