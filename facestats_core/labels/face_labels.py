"""Image-level labels (a file name per row) applied to faces.

Label files name images. A label describes the one face of its image: images with
several faces are ambiguous and are skipped (counted) unless the label row names a
``face_id`` itself, which then wins.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from facestats_core.labels.attribute_labels import match_labels_to_images, read_fairface_labels
from facestats_core.labels.vocab import ATTRIBUTES


def labels_to_faces(matched: pl.DataFrame, faces: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """``matched`` (``image_id`` + label columns, optional ``face_id``) joined to ``faces``
    (``face_id``, ``image_id``): one row per labelled face, and the number of label rows not
    applied: their image has several faces (or none), or their ``face_id`` names no face."""
    label_cols = [c for c in matched.columns if c not in ("image_id", "face_id")]
    counts = faces.group_by("image_id").agg(pl.len().alias("_faces"), pl.col("face_id").first().alias("_only"))
    named = pl.DataFrame(schema={"face_id": pl.String, **{c: matched.schema[c] for c in label_cols}})
    rest = matched
    unknown = 0
    if "face_id" in matched.columns:
        with_id = matched.filter(pl.col("face_id").is_not_null())
        named = with_id.join(faces.select("face_id"), on="face_id", how="inner").select("face_id", *label_cols)
        unknown = with_id.height - named.height
        rest = matched.filter(pl.col("face_id").is_null()).drop("face_id")
    joined = rest.join(counts, on="image_id", how="left")
    single = joined.filter(pl.col("_faces") == 1).select(pl.col("_only").alias("face_id"), *label_cols)
    skipped = joined.height - single.height + unknown
    table = pl.concat([named, single], how="vertical_relaxed").unique("face_id", keep="first", maintain_order=True)
    return table.join(faces.select("face_id", "image_id"), on="face_id", how="left").select(
        "face_id", "image_id", *label_cols), skipped


def true_labels_by_face(labels: pl.DataFrame, master: pl.DataFrame, *, prefix: str = "") -> pl.DataFrame:
    """Image labels keyed by ``file`` (:func:`~facestats_core.labels.attribute_labels.read_fairface_labels`,
    e.g. the demo's kept-aside ``labels/truth_fairface_labels.csv``) as labels of the faces of ``master``
    (``face_id``, ``image_id``, ``path``): ``face_id`` plus whichever of ``gender, age, ethnicity`` the
    labels have, one row per face whose image has a label and exactly one face (see :func:`labels_to_faces`).
    ``prefix``: as in :func:`~facestats_core.labels.attribute_labels.match_labels_to_images`."""
    faces = master.filter(pl.col("face_id").is_not_null())
    images = faces.select("image_id", "path").unique("image_id", keep="first")
    matched, _ = match_labels_to_images(labels, images, prefix=prefix)
    cols = [c for c in ATTRIBUTES if c in matched.columns]
    table, _ = labels_to_faces(matched.select("image_id", *cols), faces.select("face_id", "image_id"))
    return table.select("face_id", *cols)


def read_true_labels_by_face(
    source: Any, master: pl.DataFrame, *, prefix: str = ""
) -> tuple[pl.DataFrame | None, str | None]:
    """:func:`true_labels_by_face` of the FairFace-format file ``source`` (a path or UPath; evaluation
    only): ``(frame, None)``, or ``(None, why not)`` when the file is missing or cannot be read."""
    if not source.exists():
        return None, f"no true labels at {source}"
    try:
        labels = read_fairface_labels(source).labels
    except (OSError, ValueError) as exc:
        return None, f"cannot read {source} ({exc})"
    return true_labels_by_face(labels, master, prefix=prefix), None
