"""A small set of awkward files: what real face folders contain besides clean JPEGs.

Written next to the demo faces (``raw/edge_cases``) so the demo shows how
each is recorded, and used by the tests as the bad-input matrix.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from facestats_core.io.atomic import atomic_write_bytes

EXPECTED: dict[str, str | None] = {
    "empty.jpg": "empty_file",
    "text_named.jpg": "not_an_image",
    "truncated.jpg": "truncated",
    "document.pdf": "not_an_image",
    "unsupported.tga": "unsupported_format",
    "bomb.png": "too_large",
    "cmyk.jpg": None,
    "gray16.png": None,
    "palette_alpha.png": None,
    "rgba.png": None,
    "grayscale.jpg": None,
    "exif_rotated.jpg": None,
}
"""File name → the ``error`` reason FaceStats records (None: readable, converted)."""


def _face_like(size: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth colour image with structure (not noise), so it survives JPEG and blur checks."""
    rng = np.random.default_rng(seed)
    height, width = size[1], size[0]
    yy, xx = np.mgrid[0:height, 0:width]
    base = rng.uniform(60, 200, size=3)
    image = np.empty((height, width, 3), dtype=np.float64)
    for channel in range(3):
        image[..., channel] = base[channel] + 40 * np.sin(xx / (7 + channel)) + 40 * np.cos(yy / 9)
    return np.clip(image, 0, 255).astype(np.uint8)


def _jpeg(image: Image.Image, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **kwargs)
    return buffer.getvalue()


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming a huge size with almost no data: a decompression bomb's header."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def edge_case_files(seed: int = 0) -> dict[str, bytes]:
    """The bytes of every edge-case file, deterministic for a seed."""
    rgb = Image.fromarray(_face_like((160, 120), seed))
    full_jpeg = _jpeg(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate 90° clockwise
    gray16 = Image.fromarray((np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    palette.info["transparency"] = 0
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (120, 1))))
    return {
        "empty.jpg": b"",
        "text_named.jpg": b"this is a text file, not a JPEG\n",
        "truncated.jpg": full_jpeg[: len(full_jpeg) // 2],
        "unsupported.tga": _encode(rgb, "TGA"),
        "document.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        "bomb.png": _png_header_only(30_000, 30_000),
        "cmyk.jpg": _jpeg(rgb.convert("CMYK")),
        "gray16.png": _encode(gray16, "PNG"),
        "palette_alpha.png": _encode(palette, "PNG"),
        "rgba.png": _encode(rgba, "PNG"),
        "grayscale.jpg": _jpeg(rgb.convert("L")),
        "exif_rotated.jpg": _jpeg(rgb, exif=exif.tobytes()),
    }


def write_edge_cases(folder: Path, seed: int = 0) -> list[Path]:
    """Write every edge-case file into ``folder``; returns the paths."""
    written = []
    for name, data in edge_case_files(seed).items():
        atomic_write_bytes(folder / name, data)
        written.append(folder / name)
    return written
