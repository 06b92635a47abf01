"""The composite's per-pixel loops, compiled by numba: bilinear sampling, the piecewise-affine warp
and the running sum, each one pass over the output pixels.

They compute exactly what the numpy recipes they replace computed, operation for operation in the
same float precision and order (:func:`~facestats_core.composites.mesh.source_coordinates` then
:func:`~facestats_core.composites.warp.bilinear_sample`; a masked float64 sum), so the composites are
the same bytes; fused into one loop they skip the numpy temporaries (a 512-px warp: 9 ms → 3.4 ms on
one core). No ``fastmath``: every product and sum is rounded as numpy rounds it (no fused multiply-add).
``nogil``, so the composite's worker threads run them side by side; compiled once and cached on disk
(:func:`~facestats_core.io.compiled.compiled`).

Pixels are *packed*: one 32-bit word per pixel, red in the low byte
(:func:`~facestats_core.composites.warp.packed_pixels`).
"""

from __future__ import annotations

import numpy as np

from facestats_core.io.compiled import compiled

_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_HALF = np.float32(0.5)


@compiled(nogil=True, inline="always")
def _sample_point(words, width, height, xs, ys, p, out, inside):  # type: ignore[no-untyped-def]
    """Sample point ``p`` at ``(xs, ys)`` (float32) into ``out[p]`` and ``inside[p]``."""
    inside[p] = (xs >= -_HALF) & (xs <= np.float32(width) - _HALF) & (ys >= -_HALF) & (ys <= np.float32(height) - _HALF)
    x = min(max(xs, _ZERO), np.float32(width - 1))
    y = min(max(ys, _ZERO), np.float32(height - 1))
    x0 = min(np.int64(x), width - 2)
    y0 = min(np.int64(y), height - 2)
    fx = x - np.float32(x0)
    fy = y - np.float32(y0)
    gx = _ONE - fx
    gy = _ONE - fy
    k00 = gx * gy
    k10 = fx * gy
    k01 = gx * fy
    k11 = fx * fy
    base = y0 * width + x0
    q00 = words[base]
    q10 = words[base + 1]
    q01 = words[base + width]
    q11 = words[base + width + 1]
    for channel in range(3):
        shift = 8 * channel
        total = np.float32((q00 >> shift) & 255) * k00
        total = total + np.float32((q10 >> shift) & 255) * k10
        total = total + np.float32((q01 >> shift) & 255) * k01
        total = total + np.float32((q11 >> shift) & 255) * k11
        out[p, channel] = total


@compiled(nogil=True)
def sample_points(words, width, height, xs, ys, out, inside):  # type: ignore[no-untyped-def]
    """Bilinear samples of the packed ``words`` (``height × width``, flattened) at float32 points
    ``(xs, ys)``: ``out`` ``(p, 3)`` float32 and ``inside`` ``(p,)`` bool, filled in place."""
    for p in range(xs.shape[0]):
        _sample_point(words, width, height, xs[p], ys[p], p, out, inside)


@compiled(nogil=True)
def sample_mesh(words, width, height, corners, weights, vx, vy, out, inside):  # type: ignore[no-untyped-def]
    """The piecewise-affine warp: output pixel ``p`` samples ``words`` at the barycentric combination
    ``((v[c0]·w0 + v[c1]·w1) + v[c2]·w2)`` (float32) of its triangle's vertices ``corners[:, p]``
    (int32) with ``weights[:, p]`` (float32); ``vx``, ``vy``: the face's vertex coordinates (float32)."""
    for p in range(corners.shape[1]):
        a = corners[0, p]
        b = corners[1, p]
        c = corners[2, p]
        wa = weights[0, p]
        wb = weights[1, p]
        wc = weights[2, p]
        xs = vx[a] * wa
        xs = xs + vx[b] * wb
        xs = xs + vx[c] * wc
        ys = vy[a] * wa
        ys = ys + vy[b] * wb
        ys = ys + vy[c] * wc
        _sample_point(words, width, height, xs, ys, p, out, inside)


@compiled(nogil=True)
def accumulate(total, weight, values, inside):  # type: ignore[no-untyped-def]
    """``total[p] += values[p]`` (float64 sums of float32 samples) and ``weight[p] += 1`` where ``inside[p]``."""
    for p in range(values.shape[0]):
        if inside[p]:
            for channel in range(values.shape[1]):
                total[p, channel] += np.float64(values[p, channel])
            weight[p] += 1.0
