"""Faces and chips of one image file outside the pipeline (single-image CLIs), the pipeline's code path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facestats_core.faces.chips import ChipConfig, chips_of_image
from facestats_core.faces.face_table import DetectionConfig, faces_of_image
from facestats_core.images.decode import ImageReadError, load_rgb


@dataclass(frozen=True)
class ImageFaces:
    """The detection rows of one file (faces, or one row with a ``reason``) and the chip rows of its faces;
    ``error`` when the file could not be read."""

    detections: list[dict[str, Any]]
    chips: list[dict[str, Any]]
    error: str | None = None


def faces_of_file(path: Path, image_id: str, detector: Any, detection: DetectionConfig, chip: ChipConfig,
                  chips_dir: Path) -> ImageFaces:
    """Decode ``path`` upright, find its faces as the pipeline does, write their chips under ``chips_dir``."""
    try:
        image = load_rgb(Path(path).read_bytes(), max_pixels=detection.max_pixels)
    except OSError as exc:
        return ImageFaces([], [], f"cannot read: {exc.strerror or exc}")
    except ImageReadError as exc:
        return ImageFaces([], [], f"{exc.reason}: {exc.detail}")
    rows, _ = faces_of_image(image, image_id, str(path), detector, detection)
    faces = [row for row in rows if row["face_id"] is not None]
    return ImageFaces(rows, chips_of_image(image, faces, chips_dir, chip) if faces else [])
