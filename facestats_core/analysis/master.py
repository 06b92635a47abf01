"""The master metadata table: one row per face, plus one row per image without a usable face.

:func:`build_master` starts from the raw manifest (every file, readable or not) joined on
``image_id`` with the face detections (one row per face; one row with a ``reason`` for an
image without a usable face), then joins, on ``face_id``, the face chips, predicted
attributes with probabilities, manual labels, flags, clusters and attractiveness scores.
The raw manifest decides which images there are: nothing is lost (an image the detections
lack gets reason ``not_detected``), and rows of other tables whose face is no longer there
are dropped and counted (:class:`MasterStats`).

Final attributes: ``gender``, ``age``, ``ethnicity`` = manual label when there
is one, else the data set's own label, else the prediction, else null;
``<attr>_source`` says which (``manual`` / ``label`` / ``predicted`` / ``none``);
the prediction stays in ``<attr>_pred`` (with ``<attr>_method``: ``probe`` or
``zero_shot``), the label in ``<attr>_label`` and the manual value in ``<attr>_manual``. ``race4`` is the
4-group race of the final ``ethnicity``. The column list is
:data:`MASTER_COLUMNS` (documented in ``docs/master.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from facestats_core.labels.attribute_labels import race4
from facestats_core.labels.vocab import ATTRIBUTES

SOURCES: tuple[str, ...] = ("manual", "label", "predicted", "none")

RAW_COLUMNS: dict[str, pl.DataType] = {
    "path": pl.String,
    "alias_paths": pl.List(pl.String),
    "bytes": pl.Int64,
    "width": pl.Int64,
    "height": pl.Int64,
    "format": pl.String,
    "mode": pl.String,
    "readable": pl.Boolean,
    "error": pl.String,
    "note": pl.String,
    "shard": pl.String,
}
# face-detections column -> master column
DETECTION_COLUMNS: dict[str, tuple[str, pl.DataType]] = {
    "face_index": ("face_index", pl.Int32),
    "faces_in_image": ("faces_in_image", pl.Int32),
    "faces_found": ("faces_found", pl.Int32),
    "face_source": ("face_source", pl.String),
    "box_x0": ("box_x0", pl.Float64),
    "box_y0": ("box_y0", pl.Float64),
    "box_x1": ("box_x1", pl.Float64),
    "box_y1": ("box_y1", pl.Float64),
    "score": ("detection_score", pl.Float64),
    "landmark_points": ("landmark_points", pl.Int32),
    "reason": ("reason", pl.String),
    "detection_version": ("detection_version", pl.String),
}
CHIP_COLUMNS: dict[str, tuple[str, pl.DataType]] = {
    "ok": ("chip_ok", pl.Boolean),
    "chip_version": ("chip_version", pl.String),
    "chip_path": ("chip_path", pl.String),
    "composite_path": ("composite_path", pl.String),
    "chip_landmarks": ("chip_landmarks", pl.List(pl.Float64)),
    "face_px": ("face_px", pl.Float64),
    "sharpness": ("sharpness", pl.Float64),
    "error": ("chip_error", pl.String),
    "yaw": ("yaw", pl.Float64),
    "pitch": ("pitch", pl.Float64),
    "roll": ("roll", pl.Float64),
    "pose_note": ("pose_note", pl.String),
    "quality": ("quality", pl.String),
    "quality_reasons": ("quality_reasons", pl.List(pl.String)),
}
PRED_COLUMNS: dict[str, pl.DataType] = {
    **{
        name: dtype
        for attr, classes in ATTRIBUTES.items()
        for name, dtype in (
            (f"{attr}_pred", pl.String),
            (f"{attr}_prob", pl.Float32),
            (f"{attr}_probs", pl.Array(pl.Float32, len(classes))),
            (f"{attr}_method", pl.String),
            (f"{attr}_prediction_source", pl.String),
        )
    },
    "race4_pred": pl.String,
}
LABEL_COLUMNS: dict[str, tuple[str, pl.DataType]] = {
    **{attr: (f"{attr}_label", pl.String) for attr in ATTRIBUTES},
    "score": ("attractiveness_rating", pl.Float64),
}
FLAG_COLUMNS: dict[str, pl.DataType] = {
    "flags": pl.List(pl.String),
    "low_confidence": pl.Boolean,
    "near_duplicate_of": pl.String,
}
SCORE_COLUMNS: dict[str, pl.DataType] = {
    "attractiveness_raw": pl.Float64,
    "attractiveness_percentile": pl.Float64,
    "attractiveness_decile": pl.Int8,
    "attractiveness_source": pl.String,
    "attractiveness_out_of_domain": pl.Boolean,
    "attractiveness_outside_rated_groups": pl.Boolean,
    "domain_distance": pl.Float64,
}
FINAL_COLUMNS: dict[str, pl.DataType] = {
    **{name: pl.String for attr in ATTRIBUTES for name in (attr, f"{attr}_source", f"{attr}_manual")},
    "race4": pl.String,
}

MASTER_COLUMNS: tuple[str, ...] = (
    "face_id",
    "image_id",
    *RAW_COLUMNS,
    *(name for name, _ in DETECTION_COLUMNS.values()),
    *(name for name, _ in CHIP_COLUMNS.values()),
    "predicted",
    *PRED_COLUMNS,
    *(name for name, _ in LABEL_COLUMNS.values()),
    *FINAL_COLUMNS,
    *FLAG_COLUMNS,
    "cluster",
    *SCORE_COLUMNS,
)
"""Every column of the master table, in order."""

REQUIRED_COLUMNS: tuple[str, ...] = (
    "face_id", "image_id", "path", "readable", "reason", "faces_in_image", "chip_ok", "composite_path",
    "chip_landmarks",
    "gender", "age", "ethnicity", "gender_source", "age_source", "ethnicity_source",
    "gender_pred", "age_pred", "ethnicity_pred", "flags", "cluster", "quality", "quality_reasons",
    "attractiveness_raw", "attractiveness_percentile", "attractiveness_decile",
)
"""Columns the asset check and the composites rely on."""


@dataclass(frozen=True)
class MasterStats:
    """Row counts of a :func:`build_master` call.

    ``orphans``: rows per input table whose face is not in the detections of the raw
    manifest's images (dropped); ``duplicates``: repeated ids per input table (first kept).
    """

    images: int
    readable: int
    faces: int
    images_without_face: int
    reasons: dict[str, int]
    chipped: int
    predicted: int
    scored: int
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)


def _conform(
    name: str,
    frame: pl.DataFrame | None,
    columns: dict[str, pl.DataType] | dict[str, tuple[str, pl.DataType]],
    ids: pl.Series,
    stats: dict[str, dict[str, int]],
) -> pl.DataFrame:
    """``frame`` reduced to ``face_id`` + ``columns`` (renamed/cast; missing ones null), one row per id."""
    spec = {src: (dst if isinstance(dst, tuple) else (src, dst)) for src, dst in columns.items()}
    schema = {"face_id": pl.String, **{dst: dtype for dst, dtype in spec.values()}}
    if frame is None or frame.height == 0:
        return pl.DataFrame(schema=schema)
    exprs = [pl.col("face_id").cast(pl.String)]
    for src, (dst, dtype) in spec.items():
        exprs.append((pl.col(src) if src in frame.columns else pl.lit(None)).cast(dtype).alias(dst))
    table = frame.select(exprs).filter(pl.col("face_id").is_not_null())
    unique = table.unique("face_id", keep="first", maintain_order=True)
    stats["duplicates"][name] = table.height - unique.height
    stats["orphans"][name] = int((~unique["face_id"].is_in(ids.implode())).sum())
    return unique


def _tag_columns(attributes: pl.DataFrame | None) -> dict[str, pl.DataType]:
    """The open-vocabulary ``tag_<name>`` probability columns of the attributes table."""
    return {c: pl.Float32 for c in (attributes.columns if attributes is not None else []) if c.startswith("tag_")}


def _face_rows(raw: pl.DataFrame, detections: pl.DataFrame | None, counts: dict[str, dict[str, int]]
               ) -> pl.DataFrame:
    """The raw manifest (one row per image) joined with its detection rows (one per face, or one reason row)."""
    base = raw.select(
        pl.col("image_id").cast(pl.String),
        *((pl.col(c) if c in raw.columns else pl.lit(None)).cast(t).alias(c) for c, t in RAW_COLUMNS.items()),
    )
    unique_base = base.unique("image_id", keep="first", maintain_order=True)
    counts["duplicates"]["raw"] = base.height - unique_base.height
    schema = {"image_id": pl.String, "face_id": pl.String, **{d: t for d, t in DETECTION_COLUMNS.values()}}
    if detections is None or detections.height == 0:
        found = pl.DataFrame(schema=schema)
    else:
        found = detections.select(
            pl.col("image_id").cast(pl.String), pl.col("face_id").cast(pl.String),
            *((pl.col(src) if src in detections.columns else pl.lit(None)).cast(t).alias(dst)
              for src, (dst, t) in DETECTION_COLUMNS.items()),
        ).unique(["image_id", "face_id"], keep="first", maintain_order=True)
    counts["orphans"]["detections"] = int((~found["image_id"].is_in(unique_base["image_id"].implode())).sum())
    table = unique_base.join(found, on="image_id", how="left")
    return table.with_columns(
        pl.when(pl.col("face_id").is_null() & pl.col("reason").is_null())
        .then(pl.when(pl.col("readable").fill_null(False)).then(pl.lit("not_detected")).otherwise(pl.lit("unreadable")))
        .otherwise(pl.col("reason")).alias("reason"),
        pl.col("faces_in_image").fill_null(0),
    )


def build_master(
    raw: pl.DataFrame,
    detections: pl.DataFrame | None = None,
    chips: pl.DataFrame | None = None,
    attributes: pl.DataFrame | None = None,
    manual: pl.DataFrame | None = None,
    flags: pl.DataFrame | None = None,
    clusters: pl.DataFrame | None = None,
    scores: pl.DataFrame | None = None,
    labels: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, MasterStats]:
    """The master table (columns :data:`MASTER_COLUMNS` plus any ``tag_<name>`` columns of
    ``attributes``, sorted by ``image_id``, ``face_id``) and its stats.

    Every input but ``raw`` may be ``None`` (not available: its columns are null; without
    detections every image is a row with reason ``not_detected``). ``manual`` holds
    ``face_id, gender, age, ethnicity`` in canonical vocabularies, blanks as nulls; ``labels``
    the data set's own labels (``face_id, gender, age, ethnicity, score``).
    """
    if "image_id" not in raw.columns:
        raise ValueError("the raw manifest has no image_id column")
    counts: dict[str, dict[str, int]] = {"duplicates": {}, "orphans": {}}
    table = _face_rows(raw, detections, counts)
    ids = table["face_id"].drop_nulls()
    manual_cols = {attr: (f"{attr}_manual", pl.String) for attr in ATTRIBUTES}
    parts = [
        _conform("chips", chips, CHIP_COLUMNS, ids, counts),
        _conform("attributes", attributes, {**PRED_COLUMNS, **_tag_columns(attributes)}, ids, counts)
        .with_columns(pl.lit(True).alias("predicted")),
        _conform("labels", labels, LABEL_COLUMNS, ids, counts),
        _conform("manual", manual, manual_cols, ids, counts),
        _conform("flags", flags, FLAG_COLUMNS, ids, counts),
        _conform("clusters", clusters, {"cluster": pl.Int32}, ids, counts),
        _conform("scores", scores, SCORE_COLUMNS, ids, counts),
    ]
    for part in parts:
        table = table.join(part, on="face_id", how="left")
    finals = []
    for attr in ATTRIBUTES:
        manual_value, label, predicted = pl.col(f"{attr}_manual"), pl.col(f"{attr}_label"), pl.col(f"{attr}_pred")
        finals.append(pl.coalesce(manual_value, label, predicted).alias(attr))
        finals.append(
            pl.when(manual_value.is_not_null())
            .then(pl.lit("manual"))
            .when(label.is_not_null())
            .then(pl.lit("label"))
            .when(predicted.is_not_null())
            .then(pl.lit("predicted"))
            .otherwise(pl.lit("none"))
            .alias(f"{attr}_source")
        )
    table = table.with_columns(
        *finals,
        pl.col("predicted").fill_null(False),
        pl.col("chip_ok").fill_null(False),
        pl.col("flags").fill_null(pl.lit([], dtype=pl.List(pl.String))),
    )
    table = table.with_columns(
        pl.col("ethnicity")
        .replace_strict({e: race4(e) for e in ATTRIBUTES["ethnicity"]}, default=None, return_dtype=pl.String)
        .alias("race4")
    )
    tags = sorted(c for c in table.columns if c.startswith("tag_"))
    table = table.select(*MASTER_COLUMNS, *tags).sort("image_id", "face_id", nulls_last=True)
    sources = {
        attr: {s: int((table[f"{attr}_source"] == s).sum()) for s in SOURCES} for attr in ATTRIBUTES
    }
    faceless = table.filter(pl.col("face_id").is_null())
    stats = MasterStats(
        images=table["image_id"].n_unique(),
        readable=int(table.unique("image_id")["readable"].fill_null(False).sum()),
        faces=table.height - faceless.height,
        images_without_face=faceless.height,
        reasons={str(k): int(v) for k, v in faceless["reason"].value_counts().iter_rows()},
        chipped=int(table["chip_ok"].sum()),
        predicted=int(table["predicted"].sum()),
        scored=int(table["attractiveness_raw"].is_not_null().sum()),
        sources=sources,
        orphans={k: v for k, v in counts["orphans"].items() if v},
        duplicates={k: v for k, v in counts["duplicates"].items() if v},
    )
    return table, stats


def check_master(table: pl.DataFrame, required: Sequence[str] = REQUIRED_COLUMNS) -> dict[str, object]:
    """What the asset check reports: missing columns, duplicated face ids, faceless rows without a reason or
    repeated for one image, null image ids, source values outside :data:`SOURCES`."""
    missing = [c for c in required if c not in table.columns]
    if {"image_id", "face_id", "reason"} - set(table.columns):
        return {"rows": table.height, "missing_columns": missing, "duplicated_ids": 0, "null_ids": 0,
                "faceless_without_reason": 0, "bad_sources": {}}
    faces = table.filter(pl.col("face_id").is_not_null())
    faceless = table.filter(pl.col("face_id").is_null())
    duplicated = int(faces["face_id"].is_duplicated().sum()) + int(faceless["image_id"].is_duplicated().sum())
    ids = table["image_id"]
    bad_sources = {
        attr: int((~table[f"{attr}_source"].is_in(list(SOURCES))).sum())
        for attr in ATTRIBUTES
        if f"{attr}_source" in table.columns
    }
    return {
        "rows": table.height,
        "missing_columns": missing,
        "duplicated_ids": duplicated,
        "null_ids": int(ids.null_count()),
        "faceless_without_reason": int(faceless["reason"].null_count()),
        "bad_sources": {k: v for k, v in bad_sources.items() if v},
    }
