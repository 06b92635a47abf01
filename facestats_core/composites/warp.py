"""Warp one face into a composite's output frame, resampling its source image once.

* :func:`eye_centres` of 68 iBUG landmarks (means of points 36-41 and 42-47);
* :func:`frame_transform`: the similarity putting a face's eyes on the eye targets
  of the output frame (the "eyes" alignment);
* :func:`face_vertices`: a face's mesh vertices in its own image (its 68 landmarks
  plus the frame's border points mapped back through the inverse similarity);
* :func:`bilinear_sample`: bilinear interpolation of an RGB array (or of its
  :func:`packed_pixels`, one 32-bit word per pixel, packed once per image), compiled by numba
  (:mod:`~facestats_core.composites.kernels`);
* :func:`warp_face` (piecewise affine onto a :class:`~facestats_core.composites.mesh.WarpMesh`)
  and :func:`eye_align` (similarity only), both straight from the source pixels;
* :func:`load_pixels` / :class:`SourcePixels`: read an image (once), box-reduced first when the
  face would be shrunk more than 2x (so bilinear sampling does not alias).

Coordinates are pixel-index coordinates in the source image.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facestats_core.composites.mesh import N_LANDMARKS, WarpMesh, border_points, pixel_centres
from facestats_core.faces.alignment import DEFAULT_EYE_TARGETS, Point, eye_target_pixels, similarity_transform

LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``landmarks`` as finite ``(68, 2)`` float64 with distinct eye centres; ``ValueError`` otherwise."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"landmarks must be (68, 2), got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks must be finite")
    left, right = points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)
    if math.dist(left, right) < 1.0:
        raise ValueError("eye centres coincide")
    return points


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """``(2, 2)``: the image-left eye (points 36-41) and the image-right eye (42-47)."""
    points = np.asarray(landmarks, dtype=np.float64)
    return np.vstack([points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)])


def frame_transform(
    eyes: np.ndarray, size: int, eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS
) -> np.ndarray:
    """2x3 similarity mapping source pixels to the ``size`` output frame (eyes onto the targets)."""
    return similarity_transform(np.asarray(eyes, dtype=np.float64), eye_target_pixels(size, eye_targets))


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2, :]


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(k, 2)`` points through a 2x3 affine ``matrix``."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def face_vertices(landmarks: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The face's mesh vertices in its source image: its 68 landmarks, then the frame's border
    points mapped back through the inverse of ``matrix`` (source -> frame)."""
    return np.vstack([np.asarray(landmarks, dtype=np.float64), apply(invert(matrix), border_points(size))])


def packed_pixels(pixels: np.ndarray) -> np.ndarray:
    """``h×w`` uint32: each pixel of ``pixels`` (``h×w×3`` uint8) as one 32-bit word (RGB and a zero pad
    byte), the form :func:`bilinear_sample` gathers from. An image sampled several times is packed once."""
    height, width = pixels.shape[:2]
    padded = np.zeros((height, width, 4), dtype=np.uint8)
    padded[..., :3] = pixels
    return padded.view(np.uint32).reshape(height, width)


def _as_packed(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` packed, unless they already are (``h×w`` uint32)."""
    return pixels if pixels.ndim == 2 and pixels.dtype == np.uint32 else packed_pixels(pixels)


def _sampled_words(pixels: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``(words, width, height)``: ``pixels`` packed and flattened for the compiled samplers; ``ValueError``
    for an image under 2×2 (bilinear sampling needs two pixels each way)."""
    packed = np.ascontiguousarray(_as_packed(pixels))
    height, width = packed.shape
    if height < 2 or width < 2:
        raise ValueError(f"image too small to sample: {width}x{height}")
    return packed.ravel(), width, height


def bilinear_sample(pixels: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``pixels`` (``h×w×3`` uint8, or its :func:`packed_pixels`) at float points (taken as
    float32); returns ``(values (p, 3) float32, inside (p,) bool)``.

    Points within the image (``[-0.5, side - 0.5]``) are interpolated (edges clamped); points
    outside get ``inside = False`` and the nearest edge value. Each value is
    ``((a·w00 + b·w10) + c·w01) + d·w11`` in float32 (``a..d`` the four neighbours, ``w00 = (1 - fx)(1 - fy)``
    and so on), one compiled loop over the points (:func:`~facestats_core.composites.kernels.sample_points`).
    """
    from facestats_core.composites.kernels import sample_points  # noqa: PLC0415 - numba compiles on first use

    words, width, height = _sampled_words(pixels)
    x = np.ascontiguousarray(xs, dtype=np.float32).ravel()
    y = np.ascontiguousarray(ys, dtype=np.float32).ravel()
    if x.shape != y.shape:
        raise ValueError(f"xs and ys differ in length: {x.shape} vs {y.shape}")
    out = np.empty((len(x), 3), dtype=np.float32)
    inside = np.empty(len(x), dtype=bool)
    sample_points(words, width, height, x, y, out, inside)
    return out, inside


def warp_face(
    pixels: np.ndarray, landmarks: np.ndarray, mesh: WarpMesh, eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a face piecewise-affinely onto ``mesh``: ``(values (size², 3) float32, inside (size²,) bool)``.

    ``landmarks`` are the face's 68 points in ``pixels``' coordinates; ``pixels`` may be packed
    (:func:`packed_pixels`). The same numbers as :func:`bilinear_sample` at
    :func:`~facestats_core.composites.mesh.source_coordinates`, in one compiled loop over the output
    pixels (:func:`~facestats_core.composites.kernels.sample_mesh`).
    """
    from facestats_core.composites.kernels import sample_mesh  # noqa: PLC0415 - numba compiles on first use

    points = check_landmarks(landmarks)
    matrix = frame_transform(eye_centres(points), mesh.size, eye_targets)
    vertices = face_vertices(points, matrix, mesh.size).astype(np.float32)
    words, width, height = _sampled_words(pixels)
    out = np.empty((mesh.size * mesh.size, 3), dtype=np.float32)
    inside = np.empty(mesh.size * mesh.size, dtype=bool)
    sample_mesh(words, width, height, mesh.pixel_vertices, mesh.pixel_weights,
                np.ascontiguousarray(vertices[:, 0]), np.ascontiguousarray(vertices[:, 1]), out, inside)
    return out, inside


def eye_align(
    pixels: np.ndarray, eyes: np.ndarray, size: int, eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate/scale/shift a face so its eyes land on the targets of a ``size`` frame (no warp);
    same return as :func:`warp_face`."""
    inverse = invert(frame_transform(eyes, size, eye_targets))
    src = apply(inverse, pixel_centres(size)).astype(np.float32)
    return bilinear_sample(pixels, src[:, 0], src[:, 1])


def reduction_factor(scale: float) -> int:
    """Integer box-reduction applied before sampling a face shrunk by ``scale`` (1 = none)."""
    return max(1, int(math.floor(1.0 / scale))) if 0.0 < scale < 0.5 else 1


def to_reduced(points: np.ndarray, factor: int) -> np.ndarray:
    """Pixel-index points of an image in the coordinates of its ``Image.reduce(factor)`` copy."""
    return (np.asarray(points, dtype=np.float64) + 0.5) / factor - 0.5


class SourcePixels:
    """One image at ``path`` (Path or UPath), decoded once on first use (EXIF-oriented RGB), with
    its box-reduced copies (``Image.reduce(factor)``) cached by factor: the source of every
    composite a face belongs to, however many there are."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self._image: Image.Image | None = None
        self._stored_size: tuple[int, int] = (0, 0)
        self._pixels: dict[int, np.ndarray] = {}
        self._packed: dict[int, np.ndarray] = {}

    def _decoded(self) -> Image.Image:
        if self._image is None:
            with self.path.open("rb") as fh:
                data = fh.read()
            try:
                opened = Image.open(io.BytesIO(data))
            except UnidentifiedImageError:  # Pillow names the BytesIO object: name the file instead
                raise UnidentifiedImageError(f"cannot identify image file {self.path.name}") from None
            with opened:
                self._stored_size = opened.size
                self._image = ImageOps.exif_transpose(opened).convert("RGB")
        return self._image

    @property
    def stored_size(self) -> tuple[int, int]:
        """``(width, height)`` as stored in the file (before EXIF orientation)."""
        self._decoded()
        return self._stored_size

    def pixels(self, factor: int = 1) -> np.ndarray:
        """The RGB pixels (``h×w×3`` uint8), box-reduced by ``factor``."""
        if factor not in self._pixels:
            image = self._decoded()
            self._pixels[factor] = np.asarray(image.reduce(factor) if factor > 1 else image, dtype=np.uint8)
        return self._pixels[factor]

    def packed(self, factor: int = 1) -> np.ndarray:
        """:meth:`pixels` as :func:`packed_pixels` (made once per factor: what the warps sample)."""
        if factor not in self._packed:
            self._packed[factor] = packed_pixels(self.pixels(factor))
        return self._packed[factor]


def load_pixels(path: Any, factor: int = 1) -> np.ndarray:
    """The RGB pixels (``h×w×3`` uint8) of the image at ``path`` (Path or UPath), EXIF-oriented,
    box-reduced by ``factor``."""
    return SourcePixels(path).pixels(factor)


def scale_of(matrix: np.ndarray) -> float:
    """Uniform scale of a 2x3 similarity."""
    return math.sqrt(abs(float(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))
