"""68-point facial landmarks (iBUG 300-W order) from a CSV, matched to raw images.

Order: jaw 0-16 (image-left ear to image-right ear through the chin), brows 17-26,
nose bridge 27-30 and base 31-35, eyes 36-41 (the image-left eye) and 42-47, mouth
outline 48-59 and inner lips 60-67. Coordinates are pixel-index coordinates of the
raw image (after EXIF orientation), like the eye columns of the landmarks file.

File format: the eye-landmark CSV (``file, left_eye_x, …``; see
:func:`facestats_core.faces.alignment.read_landmarks_csv`, which ignores extra
columns) with 136 more columns ``lm0_x, lm0_y, …, lm67_x, lm67_y``
(:data:`LANDMARK68_COLUMNS`). The demo's ``labels/demo_truth.csv`` has them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

N_POINTS = 68
LANDMARK68_COLUMNS: tuple[str, ...] = tuple(f"lm{i}_{axis}" for i in range(N_POINTS) for axis in ("x", "y"))


def has_landmarks68(columns: list[str]) -> bool:
    """Whether a CSV header carries the 136 landmark columns."""
    return all(c in columns for c in LANDMARK68_COLUMNS)


def landmarks68_cells(points: np.ndarray) -> tuple[str, ...]:
    """The 136 CSV cells of a ``(68, 2)`` array (3 decimals), in :data:`LANDMARK68_COLUMNS` order."""
    array = np.asarray(points, dtype=np.float64)
    if array.shape != (N_POINTS, 2):
        raise ValueError(f"landmarks must be (68, 2), got {array.shape}")
    return tuple(f"{v:.3f}" for v in array.ravel())


def read_landmarks68_csv(path: Path | str) -> dict[str, np.ndarray]:
    """``file -> (68, 2)`` float64 from a CSV with ``file`` and :data:`LANDMARK68_COLUMNS`.

    A file without the landmark columns gives ``{}``; rows with an empty or non-finite
    coordinate are left out (those faces have no 68-point landmarks).
    """
    path = Path(path)
    header = pl.read_csv(path, n_rows=0, infer_schema=False).columns
    if "file" not in header or not has_landmarks68(header):
        return {}
    frame = pl.read_csv(path, columns=["file", *LANDMARK68_COLUMNS], infer_schema=False)
    values = frame.select(pl.col(c).str.strip_chars().cast(pl.Float64, strict=False) for c in LANDMARK68_COLUMNS)
    array = values.to_numpy().reshape(-1, N_POINTS, 2)
    files = frame["file"].to_list()
    return {
        str(name): array[i].copy()
        for i, name in enumerate(files)
        if name is not None and np.isfinite(array[i]).all()
    }
