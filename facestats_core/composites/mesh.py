"""The warp mesh of a composite: a Delaunay triangulation of the mean landmark shape.

A composite's output frame is covered by triangles whose vertices are the 68
mean landmarks plus :func:`border_points` (corners and edge midpoints), so the
background warps with the face. :func:`build_mesh` triangulates once per
composite and caches, for every output pixel, the three vertices of its
triangle and its barycentric weights: each face is then warped by a weighted
sum of its own vertex positions (:func:`source_coordinates`, the numpy statement
of it; :func:`~facestats_core.composites.warp.warp_face` computes the same
numbers fused with the sampling in one compiled loop).

Coordinates are pixel-index coordinates (``(0, 0)`` is the centre of the
top-left pixel); the output frame spans ``[-0.5, size - 0.5]`` on both axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 68


def border_points(size: int) -> np.ndarray:
    """The 8 frame points (corners and edge midpoints) of a ``size`` square, ``(8, 2)`` float64."""
    lo, mid, hi = -0.5, (size - 1) / 2.0, size - 0.5
    return np.array(
        [(lo, lo), (mid, lo), (hi, lo), (hi, mid), (hi, hi), (mid, hi), (lo, hi), (lo, mid)], dtype=np.float64
    )


def pixel_centres(size: int) -> np.ndarray:
    """``(size*size, 2)`` float64 ``(x, y)`` of every pixel, row-major."""
    ys, xs = np.mgrid[0:size, 0:size]
    return np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float64)


@dataclass(frozen=True)
class WarpMesh:
    """A triangulated output frame.

    ``points``: ``(68 + 8, 2)`` mesh vertices (mean shape, then border points);
    ``simplices``: ``(t, 3)`` vertex indices; ``pixel_vertices``: ``(3, size²)``
    int32 vertices of each pixel's triangle; ``pixel_weights``: ``(3, size²)``
    float32 barycentric weights (one contiguous row per corner); ``face_mask``: ``(size, size)`` bool, inside
    the convex hull of the 68 mean landmarks.
    """

    size: int
    points: np.ndarray
    simplices: np.ndarray
    pixel_vertices: np.ndarray
    pixel_weights: np.ndarray
    face_mask: np.ndarray


def _barycentric(tri: object, simplex: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Barycentric weights of ``xy`` in their triangles (scipy's stored affine transforms)."""
    transform = tri.transform[simplex]  # type: ignore[attr-defined]
    partial = np.einsum("pij,pj->pi", transform[:, :2, :], xy - transform[:, 2, :])
    return np.column_stack([partial, 1.0 - partial.sum(axis=1)])


def build_mesh(mean_shape: np.ndarray, size: int) -> WarpMesh:
    """Triangulate ``mean_shape`` (``(68, 2)`` in output pixels) plus the frame's border points.

    Raises ``ValueError`` when the shape is not ``(68, 2)`` finite or leaves a
    pixel outside every triangle (e.g. landmarks outside the frame).
    """
    from scipy.spatial import Delaunay  # noqa: PLC0415 - scipy is imported where it is used

    shape = np.asarray(mean_shape, dtype=np.float64)
    if shape.shape != (N_LANDMARKS, 2) or not np.isfinite(shape).all():
        raise ValueError(f"mean shape must be finite (68, 2), got {shape.shape}")
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    points = np.vstack([shape, border_points(size)])
    tri = Delaunay(points)
    xy = pixel_centres(size)
    simplex = tri.find_simplex(xy)
    if (simplex < 0).any():
        raise ValueError(f"{int((simplex < 0).sum())} output pixels lie outside the mesh (landmarks off-frame?)")
    weights = _barycentric(tri, simplex, xy)
    hull = Delaunay(shape).find_simplex(xy) >= 0
    return WarpMesh(
        size=size,
        points=points,
        simplices=tri.simplices.astype(np.int32),
        pixel_vertices=np.ascontiguousarray(tri.simplices[simplex].T, dtype=np.int32),
        pixel_weights=np.ascontiguousarray(weights.T, dtype=np.float32),
        face_mask=hull.reshape(size, size),
    )


def source_coordinates(mesh: WarpMesh, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel samples a face whose mesh vertices are ``vertices`` (``(76, 2)``).

    Piecewise affine: a pixel's source point is the barycentric combination of
    its triangle's vertices in the face. Returns ``(x, y)``, each ``(size²,)`` float32.
    """
    v = np.asarray(vertices, dtype=np.float32)
    if v.shape != mesh.points.shape:
        raise ValueError(f"vertices must be {mesh.points.shape}, got {v.shape}")
    (i0, i1, i2), (w0, w1, w2) = mesh.pixel_vertices, mesh.pixel_weights
    term = np.empty(len(w0), dtype=np.float32)
    axes = []
    for column in (0, 1):  # ((v[i0]·w0 + v[i1]·w1) + v[i2]·w2) in float32, without temporaries per term
        values = np.ascontiguousarray(v[:, column])
        total = values.take(i0)
        total *= w0
        for index, weight in ((i1, w1), (i2, w2)):
            values.take(index, out=term)
            term *= weight
            total += term
        axes.append(total)
    return axes[0], axes[1]
