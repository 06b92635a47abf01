"""The labels and ratings of a face set, one row per labelled face.

Label files name images; :func:`labelled_faces` reads a FairFace-format label file and a
SCUT-format ratings file (either may be absent), matches them to the images of a face table
and applies each image's label to its only face (:func:`~facestats_core.labels.face_labels.labels_to_faces`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from facestats_core.labels.attribute_labels import (
    LabelIssue,
    match_labels_to_images,
    read_fairface_labels,
)
from facestats_core.labels.face_labels import labels_to_faces
from facestats_core.labels.ratings import RatingIssue, match_ratings_to_images, merge_ratings, read_ratings

LABELLED_SCHEMA: dict[str, Any] = {
    "face_id": pl.String,
    "image_id": pl.String,
    "gender": pl.String,
    "age": pl.String,
    "ethnicity": pl.String,
    "split": pl.String,
    "score": pl.Float64,
}


@dataclass
class LabelledFaces:
    """``table`` (:data:`LABELLED_SCHEMA`, faces with a label or a rating), the issues met, and how
    many label / rating rows named an image with several faces (not applied)."""

    table: pl.DataFrame
    label_issues: list[LabelIssue] = field(default_factory=list)
    rating_issues: list[RatingIssue] = field(default_factory=list)
    multi_face_labels: int = 0
    multi_face_ratings: int = 0


def labelled_faces(faces: pl.DataFrame, labels_file: Any | None = None, ratings_file: Any | None = None,
                   prefix: str = "", manual_ratings_file: Any | None = None) -> LabelledFaces:
    """Labels and ratings of ``faces`` (``face_id``, ``image_id``, ``path``) from the given files;
    ``manual_ratings_file`` overrides the data set's ratings of the files it names.

    A file that is None or does not exist contributes nothing; a malformed one raises
    ``ValueError`` / ``OSError`` from its reader.
    """
    images = faces.select("image_id", "path").unique("image_id", keep="first")
    keys = faces.select("face_id", "image_id")
    result = LabelledFaces(pl.DataFrame(schema=LABELLED_SCHEMA))
    labelled = pl.DataFrame(schema={k: LABELLED_SCHEMA[k] for k in ("face_id", "image_id", "gender", "age",
                                                                        "ethnicity", "split")})
    if labels_file is not None and labels_file.exists():
        read = read_fairface_labels(labels_file)
        matched, issues = match_labels_to_images(read.labels, images, prefix=prefix)
        result.label_issues = [*read.issues, *issues]
        labelled, result.multi_face_labels = labels_to_faces(
            matched.select("image_id", "gender", "age", "ethnicity", "split"), keys)
    rated = pl.DataFrame(schema={"face_id": pl.String, "image_id": pl.String, "score": pl.Float64})
    have_ratings = ratings_file is not None and ratings_file.exists()
    have_manual = manual_ratings_file is not None and manual_ratings_file.exists()
    if have_ratings or have_manual:
        ratings, issues_read = None, []
        for source in (ratings_file if have_ratings else None, manual_ratings_file if have_manual else None):
            if source is None:
                continue
            read_r = read_ratings(source, allow_empty=source is manual_ratings_file)
            issues_read += list(read_r.issues)
            ratings = read_r.ratings if ratings is None else merge_ratings(ratings, read_r.ratings)
        matched_r, issues_r = match_ratings_to_images(ratings, images)
        result.rating_issues = [*issues_read, *issues_r]
        rated, result.multi_face_ratings = labels_to_faces(matched_r.select("image_id", "score"), keys)
    table = labelled.join(rated.select("face_id", "image_id", "score"), on=["face_id", "image_id"], how="full",
                          coalesce=True)
    result.table = table.select(
        *(pl.col(c).cast(t) if c in table.columns else pl.lit(None, t).alias(c) for c, t in LABELLED_SCHEMA.items())
    ).sort("face_id")
    return result
