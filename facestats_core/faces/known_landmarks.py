"""Landmarks given in a file (e.g. the demo truth), matched to the raw manifest's images."""

from __future__ import annotations

import numpy as np
import polars as pl

EYE_COLUMNS: tuple[str, ...] = ("left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y")


def landmarks_by_path(landmarks: pl.DataFrame, raw_manifest: pl.DataFrame, prefix: str = ""
                      ) -> tuple[dict[str, np.ndarray], int]:
    """``{manifest path: (k, 2) landmarks}`` in raw-image pixels, and how many file rows matched no image.

    ``landmarks`` has ``file`` (relative to the raw folder, after ``prefix``) and either the
    eye columns (:data:`EYE_COLUMNS`, giving 2 points) or ``x0, y0 … x67, y67`` (68 iBUG points,
    used when present). A file matches a manifest ``path`` or one of its ``alias_paths``; the
    first row of an image wins.
    """
    rows = raw_manifest.filter(pl.col("readable")) if "readable" in raw_manifest.columns else raw_manifest
    by_path: dict[str, str] = {}
    for row in rows.iter_rows(named=True):
        by_path.setdefault(row["path"], row["path"])
        for alias in row.get("alias_paths") or []:
            by_path.setdefault(alias, row["path"])
    full = [f"{axis}{i}" for i in range(68) for axis in ("x", "y")]
    columns = full if all(c in landmarks.columns for c in full) else list(EYE_COLUMNS)
    out: dict[str, np.ndarray] = {}
    unmatched = 0
    for file, *coords in landmarks.select("file", *columns).iter_rows():
        key = f"{prefix}{file}".replace("\\", "/").removeprefix("./") if file is not None else None
        path = by_path.get(key) if key is not None else None
        if path is None:
            unmatched += 1
            continue
        if path not in out:
            out[path] = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    return out, unmatched
