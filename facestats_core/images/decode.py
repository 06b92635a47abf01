"""Reading raw images robustly: inspection, EXIF orientation and mode normalisation.

Nothing in here raises on a bad file. ``inspect_image`` returns an
``ImageInfo`` whose ``error`` names the reason (see ``ERROR_REASONS``), and
``load_rgb`` raises ``ImageReadError`` carrying the same reason, which callers
record as a flag instead of failing the run.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 80_000_000
"""Images above this many pixels are refused as possible decompression bombs."""

SUPPORTED_FORMATS: frozenset[str] = frozenset(
    {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO", "PPM"}
)

ERROR_REASONS: dict[str, str] = {
    "empty_file": "the file is empty (0 bytes)",
    "not_an_image": "the content is not a recognised image (e.g. text named .jpg)",
    "unsupported_format": "the image format is not one FaceStats reads",
    "truncated": "the image data is truncated",
    "corrupt": "the image data is corrupt and cannot be decoded",
    "too_large": "the image has more pixels than the configured limit (decompression bomb guard)",
    "unreadable_file": "the file could not be read (no permission, a broken link, or it vanished)",
}

_ODD_MODE_NOTES: dict[str, str] = {
    "CMYK": "converted from CMYK",
    "I;16": "scaled from 16-bit",
    "I;16B": "scaled from 16-bit",
    "I;16L": "scaled from 16-bit",
    "I": "scaled from 32-bit integer",
    "F": "scaled from 32-bit float",
    "P": "expanded from palette",
    "PA": "expanded from palette with alpha",
    "RGBA": "alpha composited on grey",
    "LA": "alpha composited on grey",
    "La": "alpha composited on grey",
    "RGBa": "alpha composited on grey",
    "L": "expanded from grayscale",
    "1": "expanded from 1-bit",
    "YCbCr": "converted from YCbCr",
    "LAB": "converted from LAB",
    "HSV": "converted from HSV",
}

_BACKGROUND = (128, 128, 128)


class ImageReadError(Exception):
    """A raw file that cannot be turned into an RGB image; ``reason`` is a key of ERROR_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    """What inspection learned about one raw file (sizes are after EXIF orientation)."""

    width: int | None
    height: int | None
    format: str | None
    mode: str | None
    exif_orientation: int | None
    readable: bool
    error: str | None
    error_detail: str | None
    note: str | None


def iter_image_files(root: Any) -> Iterator[Any]:
    """Every regular, non-hidden file below ``root``, and every broken link, in sorted order.

    No extension filter: a text file named ``.jpg``, an unsupported format or a link to
    nothing is listed and later recorded as unreadable with a reason, never skipped silently.
    Links to folders are not followed (no loops); other special files (FIFOs, sockets) are
    not photos and are left out.
    """
    for path in sorted(root.rglob("*")):
        rel_parts = path.relative_to(root).parts
        if any(part.startswith(".") for part in rel_parts):
            continue
        if path.is_file() or _is_broken_link(path):
            yield path


def _is_broken_link(path: Any) -> bool:
    try:
        return bool(path.is_symlink()) and not path.exists()
    except (OSError, NotImplementedError):  # a remote filesystem without links
        return False


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily and check format and pixel count before any decoding."""
    if not data:
        raise ImageReadError("empty_file", ERROR_REASONS["empty_file"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageReadError("too_large", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError("not_an_image", "cannot identify the content as an image") from exc
    except OSError as exc:
        raise ImageReadError("corrupt", str(exc)) from exc
    if image.format not in SUPPORTED_FORMATS:
        image.close()
        raise ImageReadError("unsupported_format", f"format {image.format} is not supported")
    pixels = image.width * image.height
    if pixels > max_pixels:
        image.close()
        raise ImageReadError(
            "too_large", f"{image.width}x{image.height} = {pixels} pixels > limit {max_pixels}"
        )
    return image


def _decode(image: Image.Image, draft_size: int | None) -> Image.Image:
    """Fully decode (optionally with JPEG draft downscaling); map decoder failures to reasons."""
    try:
        if draft_size is not None and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except OSError as exc:
        message = str(exc)
        reason = "truncated" if "truncated" in message or "broken data stream" in message else "corrupt"
        raise ImageReadError(reason, message) from exc
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageReadError("corrupt", str(exc)) from exc
    return image


def _exif_orientation(image: Image.Image) -> int | None:
    try:
        value = image.getexif().get(0x0112)
    except Exception:  # malformed EXIF must not make an image unreadable
        return None
    return int(value) if value else None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: alpha over grey, 16-bit and float rescaled."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            array = array / 257.0
        else:
            low, high = float(np.nanmin(array)), float(np.nanmax(array))
            array = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
        gray = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode="L")
        return gray.convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _note(mode: str, frames: int) -> str | None:
    """The conversions reading applies: an odd mode's, and that only the first of several frames
    (an animated GIF/WebP, a multi-page TIFF) is analysed."""
    parts = [part for part in (_ODD_MODE_NOTES.get(mode), f"first of {frames} frames used" if frames > 1 else None)
             if part]
    return "; ".join(parts) or None


def inspect_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Identify, fully decode and describe one file's bytes without raising."""
    image: Image.Image | None = None
    try:
        image = _open_checked(data, max_pixels)
        fmt, mode = image.format, image.mode
        orientation = _exif_orientation(image)
        frames = int(getattr(image, "n_frames", 1) or 1)
        _decode(image, draft_size=None)
        width, height = image.size
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        return ImageInfo(
            width=width,
            height=height,
            format=fmt,
            mode=mode,
            exif_orientation=orientation,
            readable=True,
            error=None,
            error_detail=None,
            note=_note(mode, frames),
        )
    except ImageReadError as exc:
        return ImageInfo(
            width=image.width if image is not None else None,
            height=image.height if image is not None else None,
            format=image.format if image is not None else None,
            mode=image.mode if image is not None else None,
            exif_orientation=None,
            readable=False,
            error=exc.reason,
            error_detail=exc.detail,
            note=None,
        )
    finally:
        if image is not None:
            image.close()


def load_rgb(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: int | None = None) -> Image.Image:
    """Decode an image file's bytes as upright 8-bit RGB or raise ``ImageReadError``.

    ``draft_size`` lets the JPEG decoder downscale by powers of two while
    decoding (much faster for huge photos); the result is never smaller than
    ``draft_size`` on its shorter side when the source is larger than that.
    """
    image = _open_checked(data, max_pixels)
    try:
        _decode(image, draft_size)
        upright = ImageOps.exif_transpose(image)
        return to_rgb(upright if upright is not None else image)
    except ImageReadError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError("corrupt", str(exc)) from exc
    finally:
        image.close()
