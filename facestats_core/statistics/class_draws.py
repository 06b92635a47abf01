"""The Gibbs sampler's class draw, compiled by numba: each face's class from its cumulative weights and one
uniform number, counted per chain, in one pass.

It computes exactly what the numpy statement in
:func:`~facestats_core.statistics.share_posterior.gibbs_shares` computed (``u · cum[-1]`` in float32, the
number of cumulative weights at or below it, capped at ``k - 1``, then a ``bincount`` per chain), so the
draws and the intervals are the same numbers; it skips the ``(B, n, k)`` comparison array and its reduction,
the sampler's largest cost after the matrix product. ``nogil``: the per-target threads run it side by side.
"""

from __future__ import annotations

import numpy as np

from facestats_core.io.compiled import compiled


@compiled(nogil=True)
def count_classes(cum: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """``(B, k)`` int64 counts of the classes drawn for ``B`` chains of ``n`` faces: face ``i`` of chain ``b``
    takes class ``min(#{j : u·cum[b, i, -1] >= cum[b, i, j]}, k - 1)`` with ``u = uniforms[b, i, 0]``
    (``cum``: ``(B, n, k)`` float32 cumulative weights; ``uniforms``: ``(B, n, 1)`` float32 in ``[0, 1)``)."""
    chains, faces, k = cum.shape
    counts = np.zeros((chains, k), dtype=np.int64)
    for b in range(chains):
        for i in range(faces):
            threshold = uniforms[b, i, 0] * cum[b, i, k - 1]
            z = 0
            for j in range(k):
                if threshold >= cum[b, i, j]:
                    z += 1
            counts[b, min(z, k - 1)] += 1
    return counts
