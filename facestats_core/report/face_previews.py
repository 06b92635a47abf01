"""Report inputs about the faces: a strip of face chips and the photo with the most faces, outlined."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from facestats_core.faces.box_preview import busiest_photo
from facestats_core.images.thumbnails import thumbnail_strip


@dataclass(frozen=True)
class FacePreviews:
    """JPEG bytes of a strip of face chips and of the busiest photo with its boxes (each may be None)."""

    chips: bytes | None = None
    busiest: bytes | None = None
    busiest_caption: str = ""


def read_face_previews(master: pl.DataFrame, chips_dir: Any, raw_dir: Any, n_chips: int = 12) -> FacePreviews:
    """The first ``n_chips`` chips (by face id) and the photo with the most faces (at least two)."""
    needed = {"face_id", "path", "chip_path", "box_x0", "box_y0", "box_x1", "box_y1"}
    if not needed <= set(master.columns):
        return FacePreviews()
    faces = master.filter(pl.col("face_id").is_not_null())
    chips = faces.filter(pl.col("chip_path").is_not_null()).sort("face_id")["chip_path"].head(n_chips).to_list()
    strip = thumbnail_strip([chips_dir / path for path in chips], tile=96) if chips else None
    found = busiest_photo(faces, raw_dir)
    busiest, caption = found if found is not None else (None, "")
    return FacePreviews(strip, busiest, caption)
