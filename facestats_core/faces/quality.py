"""Face quality: a ``good``/``poor`` verdict per face with the reasons, from pose, sharpness, size and score.

Measurements (all per face, in the face-chips table and the master table):

* ``yaw``, ``pitch``, ``roll`` (degrees) from the landmarks (:mod:`facestats_core.faces.pose`);
  ``pose_note`` says why they are null (``no_landmarks``, ``no_68_landmarks``: yaw and pitch
  need 68 points, roll needs the eyes; ``degenerate``);
* ``sharpness``: variance of the Laplacian of the face's 224-px chip (the box grown by the chip
  margin, eyes level), so it does not depend on the face's size in the photo
  (:func:`facestats_core.images.preprocess.laplacian_variance`);
* ``face_px``: the shorter side of the face box in original pixels; ``detection_score``.

Verdict: ``quality = poor`` when any reason of :data:`QUALITY_REASONS` holds (thresholds in
:class:`QualityConfig`), else ``good``; ``quality_reasons`` lists them. A check whose
measurement is missing is skipped (a whole-image face without landmarks is judged on sharpness
and size alone; ``pose_note`` records why its pose is null). Roll is not a reason: chips are
cut with the eyes level, so an in-plane tilt costs a composite nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from facestats_core.faces.pose import head_pose

GOOD = "good"
POOR = "poor"
QUALITY_VALUES: tuple[str, ...] = (GOOD, POOR)

QUALITY_REASONS: dict[str, str] = {
    "profile": "|yaw| above max_yaw: the head is turned away from the camera",
    "pitched": "|pitch| above max_pitch: the head is tilted far up or down",
    "blurry": "sharpness (Laplacian variance of the 224-px chip) below blur_threshold",
    "tiny": "face box shorter side below tiny_px original pixels",
    "low_score": "detection score below min_quality_score (on the detector's own scale)",
}
"""Why a face is ``poor``, in the order they are listed."""

QUALITY_SCHEMA: dict[str, Any] = {
    "yaw": pl.Float64,
    "pitch": pl.Float64,
    "roll": pl.Float64,
    "pose_note": pl.String,
    "quality": pl.String,
    "quality_reasons": pl.List(pl.String),
}
"""The quality columns a face-chips row carries (beside ``face_px`` and ``sharpness``)."""


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the verdict (see :data:`QUALITY_REASONS`).

    ``max_yaw`` 30°: near-frontal, what a landmark warp averages without smearing the far side
    of the face. ``max_pitch`` 45°: lenient, because pitch from 2D landmarks depends on each
    face's proportions (the demo's drawn child faces read up to ~37° while drawn frontal).
    ``blur_threshold`` 20: sharp real faces measure 38-1700 on the test photos, the same chips
    blurred by a 2-px Gaussian 4-15. ``tiny_px`` 48: below it a chip is mostly upsampled.
    ``min_quality_score`` on the detector's own scale; None: no score test (the pipeline passes
    the detector's value, :func:`facestats_core.faces.detectors.quality_score`: 0.8 for the CNNs'
    probabilities, 0.5 for dlib HOG's SVM margin).
    """

    max_yaw: float = 30.0
    max_pitch: float = 45.0
    blur_threshold: float = 20.0
    tiny_px: int = 48
    min_quality_score: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_yaw", "max_pitch"):
            if not 0.0 < getattr(self, name) <= 180.0:
                raise ValueError(f"{name} must be in (0, 180], got {getattr(self, name)}")
        if self.blur_threshold < 0 or self.tiny_px < 0:
            raise ValueError("blur_threshold and tiny_px must be >= 0")


def _exceeds(value: float | None, limit: float) -> bool:
    return value is not None and abs(value) > limit


def quality_reasons(yaw: float | None, pitch: float | None, sharpness: float | None, face_px: float | None,
                    score: float | None, config: QualityConfig) -> list[str]:
    """The reasons of :data:`QUALITY_REASONS` that hold; a missing measurement is not a reason."""
    checks = {
        "profile": _exceeds(yaw, config.max_yaw),
        "pitched": _exceeds(pitch, config.max_pitch),
        "blurry": sharpness is not None and sharpness < config.blur_threshold,
        "tiny": face_px is not None and face_px < config.tiny_px,
        "low_score": score is not None and config.min_quality_score is not None and score < config.min_quality_score,
    }
    return [reason for reason in QUALITY_REASONS if checks[reason]]


def face_quality(landmarks: Any, sharpness: float | None, face_px: float | None, score: float | None,
                 config: QualityConfig) -> dict[str, Any]:
    """The :data:`QUALITY_SCHEMA` columns of one face (``landmarks``: a flat list or ``(k, 2)`` array in
    original pixels, or None)."""
    points = None if landmarks is None else np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    pose = head_pose(points)
    reasons = quality_reasons(pose.yaw, pose.pitch, sharpness, face_px, score, config)
    return {"yaw": pose.yaw, "pitch": pose.pitch, "roll": pose.roll, "pose_note": pose.reason,
            "quality": POOR if reasons else GOOD, "quality_reasons": reasons}


def quality_counts(table: pl.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """``({verdict: faces}, {reason: faces})`` of a table with ``quality`` and ``quality_reasons``
    (rows without a verdict are left out); reasons in :data:`QUALITY_REASONS` order, zeros dropped."""
    if "quality" not in table.columns or table.height == 0:
        return {}, {}
    judged = table.filter(pl.col("quality").is_not_null())
    verdicts = {v: int((judged["quality"] == v).sum()) for v in QUALITY_VALUES}
    listed = judged["quality_reasons"].explode().drop_nulls().to_list() if "quality_reasons" in judged.columns else []
    reasons = {r: listed.count(r) for r in QUALITY_REASONS if r in listed}
    return {k: v for k, v in verdicts.items() if v}, reasons
