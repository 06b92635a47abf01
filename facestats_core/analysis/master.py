"""The master metadata table: one row per raw image, everything known about it.

:func:`build_master` joins, on ``image_id``, the raw manifest (every file,
readable or not), the preprocessing manifest, the aligned-face manifest,
predicted attributes with probabilities, manual labels, flags, clusters and
attractiveness scores. The raw manifest decides the rows: nothing is lost,
and rows of other tables whose image is no longer in the raw manifest are
dropped and counted (:class:`MasterStats`).

Final attributes: ``gender``, ``age``, ``ethnicity`` = manual label when there
is one, else the prediction, else null; ``<attr>_source`` says which
(``manual`` / ``predicted`` / ``none``); the prediction stays in
``<attr>_pred`` and the manual value in ``<attr>_manual``. ``race4`` is the
4-group race of the final ``ethnicity``. The column list is
:data:`MASTER_COLUMNS` (documented in ``docs/master.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from facestats_core.labels.attribute_labels import race4
from facestats_core.labels.vocab import ATTRIBUTES

SOURCES: tuple[str, ...] = ("manual", "predicted", "none")

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
# preprocessing manifest column -> master column
PREPROC_COLUMNS: dict[str, tuple[str, pl.DataType]] = {
    "ok": ("preproc_ok", pl.Boolean),
    "preproc_version": ("preproc_version", pl.String),
    "output_path": ("preproc_path", pl.String),
    "sharpness": ("sharpness", pl.Float64),
    "error": ("preproc_error", pl.String),
}
ALIGN_COLUMNS: dict[str, tuple[str, pl.DataType]] = {
    "eyes_source": ("eyes_source", pl.String),
    "left_eye_x": ("left_eye_x", pl.Float64),
    "left_eye_y": ("left_eye_y", pl.Float64),
    "right_eye_x": ("right_eye_x", pl.Float64),
    "right_eye_y": ("right_eye_y", pl.Float64),
    "aligned_ok": ("aligned_ok", pl.Boolean),
    "alignment_version": ("alignment_version", pl.String),
    "aligned_path": ("aligned_path", pl.String),
    "error": ("alignment_error", pl.String),
}
PRED_COLUMNS: dict[str, pl.DataType] = {
    **{
        name: dtype
        for attr, classes in ATTRIBUTES.items()
        for name, dtype in (
            (f"{attr}_pred", pl.String),
            (f"{attr}_prob", pl.Float32),
            (f"{attr}_probs", pl.Array(pl.Float32, len(classes))),
        )
    },
    "race4_pred": pl.String,
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
}
FINAL_COLUMNS: dict[str, pl.DataType] = {
    **{name: pl.String for attr in ATTRIBUTES for name in (attr, f"{attr}_source", f"{attr}_manual")},
    "race4": pl.String,
}

MASTER_COLUMNS: tuple[str, ...] = (
    "image_id",
    *RAW_COLUMNS,
    *(name for name, _ in PREPROC_COLUMNS.values()),
    *(name for name, _ in ALIGN_COLUMNS.values()),
    "predicted",
    *PRED_COLUMNS,
    *FINAL_COLUMNS,
    *FLAG_COLUMNS,
    "cluster",
    *SCORE_COLUMNS,
)
"""Every column of the master table, in order."""

REQUIRED_COLUMNS: tuple[str, ...] = (
    "image_id", "path", "readable", "preproc_ok", "preproc_path", "aligned_ok", "aligned_path",
    "gender", "age", "ethnicity", "gender_source", "age_source", "ethnicity_source",
    "gender_pred", "age_pred", "ethnicity_pred", "flags", "cluster",
    "attractiveness_raw", "attractiveness_percentile", "attractiveness_decile",
)
"""Columns the asset check and the composites rely on."""


@dataclass(frozen=True)
class MasterStats:
    """Row counts of a :func:`build_master` call.

    ``orphans``: rows per input table whose image id is not in the raw manifest
    (dropped); ``duplicates``: repeated image ids per input table (first kept).
    """

    images: int
    readable: int
    preprocessed: int
    aligned: int
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
    """``frame`` reduced to ``image_id`` + ``columns`` (renamed/cast; missing ones null), one row per id."""
    spec = {src: (dst if isinstance(dst, tuple) else (src, dst)) for src, dst in columns.items()}
    schema = {"image_id": pl.String, **{dst: dtype for dst, dtype in spec.values()}}
    if frame is None or frame.height == 0:
        return pl.DataFrame(schema=schema)
    exprs = [pl.col("image_id").cast(pl.String)]
    for src, (dst, dtype) in spec.items():
        exprs.append((pl.col(src) if src in frame.columns else pl.lit(None)).cast(dtype).alias(dst))
    table = frame.select(exprs)
    unique = table.unique("image_id", keep="first", maintain_order=True)
    stats["duplicates"][name] = table.height - unique.height
    stats["orphans"][name] = int((~unique["image_id"].is_in(ids.implode())).sum())
    return unique


def build_master(
    raw: pl.DataFrame,
    preprocessed: pl.DataFrame | None = None,
    aligned: pl.DataFrame | None = None,
    attributes: pl.DataFrame | None = None,
    manual: pl.DataFrame | None = None,
    flags: pl.DataFrame | None = None,
    clusters: pl.DataFrame | None = None,
    scores: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, MasterStats]:
    """The master table (columns :data:`MASTER_COLUMNS`, sorted by ``image_id``) and its stats.

    Every input but ``raw`` may be ``None`` (not available: its columns are
    null). ``manual`` holds ``image_id, gender, age, ethnicity`` in canonical
    vocabularies, blanks as nulls.
    """
    if "image_id" not in raw.columns:
        raise ValueError("the raw manifest has no image_id column")
    counts: dict[str, dict[str, int]] = {"duplicates": {}, "orphans": {}}
    base = raw.select(
        pl.col("image_id").cast(pl.String),
        *((pl.col(c) if c in raw.columns else pl.lit(None)).cast(t).alias(c) for c, t in RAW_COLUMNS.items()),
    )
    unique_base = base.unique("image_id", keep="first", maintain_order=True)
    counts["duplicates"]["raw"] = base.height - unique_base.height
    base = unique_base
    ids = base["image_id"]
    manual_cols = {attr: (f"{attr}_manual", pl.String) for attr in ATTRIBUTES}
    parts = [
        _conform("preprocessed", preprocessed, PREPROC_COLUMNS, ids, counts),
        _conform("aligned", aligned, ALIGN_COLUMNS, ids, counts),
        _conform("attributes", attributes, PRED_COLUMNS, ids, counts).with_columns(pl.lit(True).alias("predicted")),
        _conform("manual", manual, manual_cols, ids, counts),
        _conform("flags", flags, FLAG_COLUMNS, ids, counts),
        _conform("clusters", clusters, {"cluster": pl.Int32}, ids, counts),
        _conform("scores", scores, SCORE_COLUMNS, ids, counts),
    ]
    table = base
    for part in parts:
        table = table.join(part, on="image_id", how="left")
    finals = []
    for attr in ATTRIBUTES:
        manual_value, predicted = pl.col(f"{attr}_manual"), pl.col(f"{attr}_pred")
        finals.append(pl.coalesce(manual_value, predicted).alias(attr))
        finals.append(
            pl.when(manual_value.is_not_null())
            .then(pl.lit("manual"))
            .when(predicted.is_not_null())
            .then(pl.lit("predicted"))
            .otherwise(pl.lit("none"))
            .alias(f"{attr}_source")
        )
    table = table.with_columns(
        *finals,
        pl.col("predicted").fill_null(False),
        pl.col("preproc_ok").fill_null(False),
        pl.col("aligned_ok").fill_null(False),
        pl.col("flags").fill_null(pl.lit([], dtype=pl.List(pl.String))),
    )
    table = table.with_columns(
        pl.col("ethnicity")
        .replace_strict({e: race4(e) for e in ATTRIBUTES["ethnicity"]}, default=None, return_dtype=pl.String)
        .alias("race4")
    )
    table = table.select(MASTER_COLUMNS).sort("image_id")
    sources = {
        attr: {s: int((table[f"{attr}_source"] == s).sum()) for s in SOURCES} for attr in ATTRIBUTES
    }
    stats = MasterStats(
        images=table.height,
        readable=int(table["readable"].fill_null(False).sum()),
        preprocessed=int(table["preproc_ok"].sum()),
        aligned=int(table["aligned_ok"].sum()),
        predicted=int(table["predicted"].sum()),
        scored=int(table["attractiveness_raw"].is_not_null().sum()),
        sources=sources,
        orphans={k: v for k, v in counts["orphans"].items() if v},
        duplicates={k: v for k, v in counts["duplicates"].items() if v},
    )
    return table, stats


def check_master(table: pl.DataFrame, required: Sequence[str] = REQUIRED_COLUMNS) -> dict[str, object]:
    """What the asset check reports: missing columns, duplicated/null ids, source values outside :data:`SOURCES`."""
    missing = [c for c in required if c not in table.columns]
    ids = table["image_id"] if "image_id" in table.columns else pl.Series("image_id", [], pl.String)
    duplicated = int(ids.is_duplicated().sum())
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
        "bad_sources": {k: v for k, v in bad_sources.items() if v},
    }
