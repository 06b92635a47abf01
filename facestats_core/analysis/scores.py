"""Attractiveness score tables: raw score, percentile and decile per image.

Conventions:

- **Percentile** (mid-rank): `percentile = 100 * (count(< x) + 0.5 * count(== x)) / n`
  over the finite reference scores. Inside a table this equals
  `100 * (average_rank - 0.5) / n` with 1-based average ranks, so equal scores
  share a percentile, values lie strictly inside (0, 100), one score or all-equal
  scores get 50, and `percentile_against` gives a new image exactly the
  percentile it would get if it were in the table.
- **Decile**: `decile = min(10, floor(percentile / 10) + 1)`, i.e. decile `d`
  covers percentiles `[10(d-1), 10d)`; decile 10 is exactly `percentile >= 90`
  (the top 10%). `n == 1` and all-equal tables are decile 6 (percentile 50).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

SCORE_SCHEMA: dict[str, Any] = {
    "face_id": pl.Utf8,
    "attractiveness_raw": pl.Float64,
    "attractiveness_percentile": pl.Float64,
    "attractiveness_decile": pl.Int8,
}


def percentile_against(reference_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each score within the finite reference scores.

    `100 * (count(ref < s) + 0.5 * count(ref == s)) / n_ref`; NaN/inf scores
    give NaN. Raises `ValueError` when the reference has no finite score.
    """
    ref = np.asarray(reference_scores, dtype=np.float64).reshape(-1)
    ref = np.sort(ref[np.isfinite(ref)])
    if ref.size == 0:
        raise ValueError("reference_scores has no finite values")
    s = np.asarray(scores, dtype=np.float64)
    less = np.searchsorted(ref, s, side="left")
    less_equal = np.searchsorted(ref, s, side="right")
    pct = 100.0 * (less + 0.5 * (less_equal - less)) / ref.size
    return np.where(np.isfinite(s), pct, np.nan)


def decile_of(percentiles: np.ndarray) -> np.ndarray:
    """Decile 1..10 (int8) of finite percentiles: `min(10, floor(p / 10) + 1)`."""
    p = np.asarray(percentiles, dtype=np.float64)
    if not np.isfinite(p).all():
        raise ValueError("decile_of needs finite percentiles")
    return np.clip(np.floor(p / 10.0) + 1, 1, 10).astype(np.int8)


def score_table(face_ids: Sequence[str], raw_scores: np.ndarray) -> pl.DataFrame:
    """Raw score, percentile and decile per image (see the module docstring).

    Ranks are taken over the finite scores only; NaN/inf scores get nulls in all
    three columns. `n == 1` or all-equal scores give percentile 50, decile 6.
    """
    ids = list(face_ids)
    raw = np.asarray(raw_scores, dtype=np.float64).reshape(-1)
    if len(ids) != raw.size:
        raise ValueError(f"{len(ids)} image ids but {raw.size} scores")
    if len(set(ids)) != len(ids):
        raise ValueError("face_ids must be unique")
    finite = np.isfinite(raw)
    pct = np.full(raw.size, np.nan)
    dec = np.zeros(raw.size, dtype=np.int8)
    if finite.any():
        pct[finite] = percentile_against(raw[finite], raw[finite])
        dec[finite] = decile_of(pct[finite])
    return pl.DataFrame(
        {
            "face_id": ids,
            "attractiveness_raw": [float(v) if f else None for v, f in zip(raw, finite, strict=True)],
            "attractiveness_percentile": [float(v) if f else None for v, f in zip(pct, finite, strict=True)],
            "attractiveness_decile": [int(d) if f else None for d, f in zip(dec, finite, strict=True)],
        },
        schema=SCORE_SCHEMA,
    )
