"""Landmarks given in a file (e.g. the demo truth), matched to the raw manifest's images."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from facestats_core.faces.alignment import read_landmarks_csv
from facestats_core.faces.landmarks68 import read_landmarks68_csv

EYE_COLUMNS: tuple[str, ...] = ("left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y")


def eye_landmarks(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """``file -> (2, 2)`` eye centres (image-left eye first) from a frame with ``file`` + :data:`EYE_COLUMNS`."""
    return {str(file): np.asarray(coords, dtype=np.float64).reshape(2, 2)
            for file, *coords in frame.select("file", *EYE_COLUMNS).iter_rows() if file is not None}


def landmarks_by_path(by_file: Mapping[str, np.ndarray], raw_manifest: pl.DataFrame, prefix: str = ""
                      ) -> tuple[dict[str, np.ndarray], int]:
    """``{manifest path: (k, 2) landmarks}`` in raw-image pixels, and how many files matched no image.

    ``by_file`` maps a file name (relative to the raw folder, after ``prefix``) to its
    landmarks (68 iBUG points, 5 points or the 2 eye centres). A file matches a manifest
    ``path`` or one of its ``alias_paths``; the first file of an image wins.
    """
    rows = raw_manifest.filter(pl.col("readable")) if "readable" in raw_manifest.columns else raw_manifest
    by_path: dict[str, str] = {}
    aliases = "alias_paths" in rows.columns
    for row in rows.iter_rows(named=True):
        by_path.setdefault(row["path"], row["path"])
        for alias in (row["alias_paths"] or []) if aliases else []:
            by_path.setdefault(alias, row["path"])
    out: dict[str, np.ndarray] = {}
    unmatched = 0
    for file, points in by_file.items():
        key = f"{prefix}{file}".replace("\\", "/").removeprefix("./")
        path = by_path.get(key)
        if path is None:
            unmatched += 1
        elif path not in out:
            out[path] = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return out, unmatched


def read_landmark_file(path: Any) -> dict[str, np.ndarray]:
    """File name -> landmarks of a landmarks CSV: its 68 points (``lm<i>_x/y``) where it has them, else
    the eye centres (:func:`facestats_core.faces.alignment.read_landmarks_csv` formats, CelebA included)."""

    by_file: dict[str, np.ndarray] = eye_landmarks(read_landmarks_csv(path))
    by_file.update(read_landmarks68_csv(path))
    return by_file
