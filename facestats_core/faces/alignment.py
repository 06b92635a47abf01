"""Face alignment: eye landmarks -> similarity transform -> aligned square crop.

Coordinates are pixel-index coordinates throughout (``(0, 0)`` is the centre of
the top-left pixel, as in ``demo_truth.csv``); the "left eye" is the one on the
image's left. Eye targets are fractions of the output side in continuous
coordinates (0 = left/top edge, 1 = right/bottom edge).

Landmark sources:

* :func:`read_landmarks_csv` — a CSV with ``file, left_eye_x, left_eye_y,
  right_eye_x, right_eye_y`` (the demo's ``demo_truth.csv``) or CelebA's
  ``list_landmarks(_align)_celeba.txt``;
* a face detector (:mod:`facestats_core.faces.dlib_detector`), whose 68 landmarks
  the face-detections table keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

Point = tuple[float, float]

DEFAULT_EYE_TARGETS: tuple[Point, Point] = ((0.35, 0.40), (0.65, 0.40))
LANDMARK_COLUMNS: tuple[str, ...] = ("file", "left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


# --------------------------------------------------------------------------- geometry


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping ``src`` onto ``dst``.

    Umeyama (1991) without reflection. ``src``/``dst`` are ``(k, 2)`` with
    ``k >= 2``; for ``k == 2`` the fit is exact. Returns ``M`` (2x3) with
    ``dst ≈ src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f"src and dst must both be (k, 2) with k >= 2, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("landmarks must be finite")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mu_s, dst - mu_d
    var_s = float((src_c**2).sum(axis=1).mean())
    if var_s <= 1e-12:
        raise ValueError("source landmarks coincide; no similarity transform exists")
    cov = dst_c.T @ src_c / src.shape[0]
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / var_s)
    shift = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, shift[:, None]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to ``(k, 2)`` points."""
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ m[:, :2].T + m[:, 2]


def _as3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])


def eye_target_pixels(output_size: int, eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS) -> np.ndarray:
    """Eye targets as pixel-index coordinates of an ``output_size`` square."""
    return np.asarray(eye_targets, dtype=np.float64) * output_size - 0.5


def alignment_matrix(
    left_eye: Point,
    right_eye: Point,
    output_size: int = 256,
    eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS,
) -> np.ndarray:
    """2x3 matrix mapping source pixel coordinates to aligned-output pixel coordinates."""
    return similarity_transform(
        np.array([left_eye, right_eye], dtype=np.float64), eye_target_pixels(output_size, eye_targets)
    )


def align_face(
    image: Image.Image,
    left_eye: Point,
    right_eye: Point,
    output_size: int = 256,
    eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS,
    fill: tuple[int, int, int] = (0, 0, 0),
) -> Image.Image:
    """Rotate/scale/shift ``image`` so the eyes land on ``eye_targets`` in an ``output_size`` square.

    Uses ``Image.transform(AFFINE, inverse coefficients, BICUBIC)``; areas
    outside the source are painted ``fill``.
    """
    if output_size < 8:
        raise ValueError(f"output_size must be >= 8, got {output_size}")
    forward = _as3(alignment_matrix(left_eye, right_eye, output_size, eye_targets))
    # PIL samples output pixel (x, y) at continuous (x+0.5, y+0.5) and reads the
    # input in continuous coordinates: wrap the index-space inverse in ±0.5 shifts.
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    minus_half = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    inverse = half @ np.linalg.inv(forward) @ minus_half
    coeffs = tuple(float(v) for v in inverse[:2, :].ravel())
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return rgb.transform(
        (output_size, output_size),
        Image.Transform.AFFINE,
        coeffs,
        resample=Image.Resampling.BICUBIC,
        fillcolor=fill,
    )


@dataclass(frozen=True)
class AlignmentConfig:
    """Output geometry of aligned faces; :attr:`version` names the cache folder."""

    output_size: int = 256
    eye_targets: tuple[Point, Point] = DEFAULT_EYE_TARGETS
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if not 32 <= self.output_size <= 2048:
            raise ValueError(f"output_size must be in [32, 2048], got {self.output_size}")
        (lx, ly), (rx, ry) = self.eye_targets
        if not (0.0 < lx < rx < 1.0 and 0.0 < ly < 1.0 and 0.0 < ry < 1.0):
            raise ValueError(f"eye_targets must be inside (0, 1) with left x < right x, got {self.eye_targets}")

    @property
    def version(self) -> str:
        (lx, ly), (rx, ry) = self.eye_targets
        pct = "-".join(f"{round(v * 1000):03d}" for v in (lx, ly, rx, ry))
        return f"eyes{self.output_size}-{pct}-q{self.jpeg_quality}-v1"


# --------------------------------------------------------------------------- landmark files


def read_celeba_landmarks(path: Path | str) -> pl.DataFrame:
    """CelebA ``list_landmarks_(align_)celeba.txt``: count line, header line, then
    ``name lefteye_x lefteye_y righteye_x righteye_y nose_x …`` rows (whitespace separated)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise ValueError(f"{path}: not a CelebA landmark file (first line must be the row count)")
    header = lines[1].split()
    try:
        cols = [header.index(c) + 1 for c in ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y")]
    except ValueError as exc:
        raise ValueError(f"{path}: CelebA header lacks eye columns: {header}") from exc
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(header) + 1:
            raise ValueError(f"{path}:{number}: expected {len(header) + 1} fields, got {len(parts)}")
        rows.append((parts[0], *(float(parts[c]) for c in cols)))
    schema = {"file": pl.String, **{c: pl.Float64 for c in LANDMARK_COLUMNS[1:]}}
    return pl.DataFrame(rows, schema=schema, orient="row")


def read_landmarks_csv(path: Path | str) -> pl.DataFrame:
    """Eye landmarks as ``file, left_eye_x, left_eye_y, right_eye_x, right_eye_y`` (Float64).

    Reads a CSV with those columns (extra columns such as the demo truth's
    labels are dropped) or, when the first line is a bare row count, a CelebA
    landmark file. Rows with a missing or non-finite coordinate are an error.
    """
    path = Path(path)
    with path.open("r", encoding="utf-8") as fh:
        first = fh.readline().strip()
    if first.isdigit():
        frame = read_celeba_landmarks(path)
    else:
        raw = pl.read_csv(path, infer_schema=False)
        missing = [c for c in LANDMARK_COLUMNS if c not in raw.columns]
        if missing:
            raise ValueError(f"{path}: missing landmark columns {missing}; expected {list(LANDMARK_COLUMNS)}")
        try:
            frame = raw.select(
                pl.col("file"), *(pl.col(c).str.strip_chars().cast(pl.Float64) for c in LANDMARK_COLUMNS[1:])
            )
        except pl.exceptions.InvalidOperationError as exc:
            raise ValueError(f"{path}: non-numeric landmark coordinate: {exc}") from exc
    bad = frame.filter(
        pl.any_horizontal(pl.col(c).is_null() | ~pl.col(c).is_finite() for c in LANDMARK_COLUMNS[1:])
        | pl.col("file").is_null()
    )
    if bad.height:
        raise ValueError(f"{path}: {bad.height} rows with missing landmarks, e.g. {bad.row(0)}")
    return frame
