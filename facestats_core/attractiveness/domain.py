"""Out-of-domain flags: faces unlike anything a model was trained on.

(a) **Embedding distance.** The distance of a face to the training set is the
cosine distance ``1 - max_j cos(x, t_j)`` to its nearest training embedding,
computed as a chunked matrix product (``chunk_rows`` query rows at a time, so
100k × 10k embeddings need ``chunk_rows × 10k`` floats at once, not 4 GB).
The threshold comes from the training set itself: the ``quantile`` (default
0.99) of the training embeddings' leave-one-out nearest-neighbour distances
(each training row against the others). A face is ``out_of_domain`` when its
distance is above that: farther from the training set than 99 % of training
faces are from their nearest neighbour. Duplicates in the training set give
distance 0 and pull the threshold down, so deduplicate first when you can.

(b) **Rated groups.** SCUT-FBP5500's raters rated East Asian and White faces
only (:data:`~facestats_core.labels.ratings.SCUT_RATED_ETHNICITIES`); a score
for a face of another (final) ethnicity is an extrapolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facestats_core.embedding.vectors import l2_normalize
from facestats_core.labels.ratings import SCUT_RATED_ETHNICITIES

DEFAULT_QUANTILE = 0.99
DEFAULT_CHUNK_ROWS = 1024


@dataclass(frozen=True, eq=False)
class DomainReference:
    """The training embeddings (L2-normalised float32) and the distance above which a face is out of domain."""

    embeddings: np.ndarray
    threshold: float
    quantile: float = DEFAULT_QUANTILE


def nearest_distances(
    query: np.ndarray, reference: np.ndarray, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, exclude_self: bool = False
) -> np.ndarray:
    """Cosine distance (float32, in [0, 2]) of each query row to its nearest reference row.

    ``exclude_self`` (query is the reference) skips each row's match with itself: leave-one-out distances.
    """
    q = l2_normalize(np.asarray(query, dtype=np.float32))
    r = l2_normalize(np.asarray(reference, dtype=np.float32))
    if q.ndim != 2 or r.ndim != 2 or (len(q) and q.shape[1] != r.shape[1]):
        raise ValueError(f"query {q.shape} and reference {r.shape} must be 2-D with the same dimension")
    if exclude_self and q.shape != r.shape:
        raise ValueError("exclude_self needs the query to be the reference")
    if len(r) < (2 if exclude_self else 1):
        raise ValueError(f"the reference needs at least {2 if exclude_self else 1} rows, got {len(r)}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    out = np.empty(len(q), dtype=np.float32)
    for start in range(0, len(q), chunk_rows):
        similarity = q[start : start + chunk_rows] @ r.T
        if exclude_self:
            rows = np.arange(len(similarity))
            similarity[rows, start + rows] = -np.inf
        out[start : start + len(similarity)] = 1.0 - similarity.max(axis=1)
    return np.clip(out, 0.0, 2.0)


def fit_domain(
    training: np.ndarray, quantile: float = DEFAULT_QUANTILE, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> DomainReference:
    """The training set and its threshold: the ``quantile`` of its leave-one-out nearest-neighbour distances."""
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    embeddings = l2_normalize(np.asarray(training, dtype=np.float32))
    loo = nearest_distances(embeddings, embeddings, chunk_rows=chunk_rows, exclude_self=True)
    return DomainReference(embeddings, float(np.quantile(loo, quantile)), quantile)


def out_of_domain(
    query: np.ndarray, domain: DomainReference, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """``(distance, flag)`` per query row: nearest-training-embedding distance and ``distance > threshold``."""
    distance = nearest_distances(query, domain.embeddings, chunk_rows=chunk_rows)
    return distance, distance > domain.threshold


def outside_rated_ethnicities(
    ethnicity: Sequence[str | None], rated: Sequence[str] = SCUT_RATED_ETHNICITIES
) -> np.ndarray:
    """True where the ethnicity is known and not one the regressor's raters rated; unknown (None) is False."""
    allowed = set(rated)
    return np.array([value is not None and value not in allowed for value in ethnicity], dtype=bool)
