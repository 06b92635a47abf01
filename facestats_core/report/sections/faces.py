"""Report section: faces per image (histogram), face quality counts, a strip of face chips, and the busiest
photo outlined."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import polars as pl

from facestats_core.faces.quality import quality_counts
from facestats_core.report.face_previews import FacePreviews
from facestats_core.report.figures import histogram
from facestats_core.report.sections.common import OK, Chart, Section

KEY = "faces"
TITLE = "Faces"
HISTOGRAM_PNG = "faces_per_image.png"


@dataclass(frozen=True)
class FacesView:
    note: str | None
    chart: Chart | None
    faces: int
    images: int
    multi_face_images: int
    chips_uri: str | None
    busiest_uri: str | None
    busiest_caption: str
    quality: tuple[tuple[str, int], ...] = ()
    """Faces per quality verdict (``good``, ``poor``), none when the faces were not judged."""
    poor_reasons: tuple[tuple[str, int], ...] = ()
    """Faces per reason they were judged poor (a face may have several)."""


def _uri(jpeg: bytes | None) -> str | None:
    return None if jpeg is None else "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def faces_section(master: pl.DataFrame, previews: FacePreviews | None = None) -> Section:
    """How many faces each readable image has, and what the face chips look like."""
    if "face_id" not in master.columns or "image_id" not in master.columns:
        view = FacesView("No face columns in the master table: materialize face_detections and master_metadata.",
                         None, 0, 0, 0, None, None, "")
        return Section(KEY, TITLE, "no faces", view)
    readable = master.filter(pl.col("readable").fill_null(False)) if "readable" in master.columns else master
    per_image = readable.group_by("image_id").agg(pl.col("face_id").count().alias("faces"))["faces"].to_list()
    top = max(per_image, default=0)
    png = histogram("Faces per readable image", per_image, bins=[i - 0.5 for i in range(top + 2)],
                    x_label="faces in the image", y_label="images")
    previews = previews or FacePreviews()
    chart = Chart(HISTOGRAM_PNG, "faces per image", png)
    verdicts, reasons = quality_counts(master.filter(pl.col("face_id").is_not_null()))
    view = FacesView(
        None, chart, int(master["face_id"].is_not_null().sum()),
        len(per_image), sum(1 for n in per_image if n > 1), _uri(previews.chips), _uri(previews.busiest),
        previews.busiest_caption, tuple(verdicts.items()), tuple(reasons.items()),
    )
    return Section(KEY, TITLE, OK, view, (chart,))
