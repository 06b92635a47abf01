"""The pixel reader: images from disk to CLIP-sized uint8 batches, decoded ahead on a thread.

:func:`iter_pixel_batches` decodes, resizes (shorter side, bicubic) and centre-crops on a
background thread, keeping at most ``prefetch`` batches in memory; its uint8 pixels are normalised
on the model side by the image towers. :func:`clip_pixels` / :func:`normalize_pixels` give the
normalised float32 pixels of CLIP's preprocessing for callers that want them on the host.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

PixelBatch = tuple[list[int], np.ndarray, dict[int, str]]
"""``(indices, pixels, failures)``: the indices decoded, their uint8 ``(n, 3, H, W)`` pixels, and
``{index: reason}`` for the files that could not be read."""


def clip_pixels(image: Image.Image, image_size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """CLIP's pixel preprocessing for one RGB image: shorter side to ``image_size``
    (bicubic), centre crop, scale to [0, 1], normalise; returns float32 (3, H, W)."""
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


def decode_batch(paths: Sequence[Path], indices: Sequence[int], image_size: int) -> PixelBatch:
    """Read and crop ``paths[i]`` for each ``i`` in ``indices``; unreadable files become failures."""
    ok: list[int] = []
    arrays: list[np.ndarray] = []
    failures: dict[int, str] = {}
    for index in indices:
        try:
            with Image.open(io.BytesIO(paths[index].read_bytes())) as image:
                image.draft("RGB", (image_size, image_size))
                arrays.append(clip_pixels_uint8(image.convert("RGB"), image_size))
            ok.append(index)
        except (OSError, ValueError, SyntaxError) as exc:
            failures[index] = f"{type(exc).__name__}: {exc}"
    batch = np.stack(arrays) if arrays else np.zeros((0, 3, image_size, image_size), dtype=np.uint8)
    return ok, batch, failures


def iter_pixel_batches(
    paths: Sequence[Path], image_size: int, batch_size: int, prefetch: int = 2
) -> Iterator[PixelBatch]:
    """Yield ``(indices, pixels, failures)`` per batch of ``batch_size`` paths, decoding ahead on a
    thread; ``pixels`` are uint8 ``(n, 3, image_size, image_size)``, resized and cropped but not
    normalised.

    At most ``prefetch`` decoded batches exist at any time, so memory is
    bounded by ``prefetch * batch_size`` images whatever the number of paths.
    """
    chunks = [list(range(start, min(start + batch_size, len(paths)))) for start in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-decode") as pool:
        pending: list[Future[PixelBatch]] = []
        next_chunk = 0
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < prefetch:
                pending.append(pool.submit(decode_batch, paths, chunks[next_chunk], image_size))
                next_chunk += 1
            yield pending.pop(0).result()
