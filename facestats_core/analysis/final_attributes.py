"""Final attributes: manual labels > data-set labels > predictions, each with its source.

Inputs are frames keyed by an id column (``face_id`` by default; ``image_id``
works the same):

* ``predictions``: one row per id, ``<attr>_pred`` per attribute and optionally
  ``<attr>_method`` (``"probe"`` / ``"zero_shot"``, see
  :mod:`facestats_core.models.prediction_method`); without it the
  ``default_method`` is the source.
* ``labels`` (the data set's label file) and ``manual`` (manual labels):
  ``<attr>`` columns holding canonical values or null. Ids absent from
  ``predictions`` are ignored; an id repeated in one frame is an error.

Output: the id, then ``<attr>`` and ``<attr>_source`` (``"manual"``,
``"label"``, ``"probe"``, ``"zero_shot"``, or null when nothing is known) per
attribute, one row per row of ``predictions`` in its order.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.prediction_method import METHOD_SUFFIX, METHODS, PRED_SUFFIX, Method

SOURCES: tuple[str, ...] = ("manual", "label", *METHODS)


def _keyed(frame: pl.DataFrame | None, id_column: str, prefix: str, attributes: Sequence[str]) -> pl.DataFrame | None:
    if frame is None:
        return None
    if id_column not in frame.columns:
        raise ValueError(f"{prefix} frame has no {id_column!r} column")
    repeated = frame[id_column].is_duplicated()
    if repeated.any():
        raise ValueError(f"{prefix} frame repeats ids {frame[id_column].filter(repeated).unique().to_list()[:5]}")
    present = [a for a in attributes if a in frame.columns]
    return frame.select(id_column, *[pl.col(a).cast(pl.String).alias(f"__{prefix}_{a}") for a in present])


def final_attributes(
    predictions: pl.DataFrame,
    labels: pl.DataFrame | None = None,
    manual: pl.DataFrame | None = None,
    *,
    id_column: str = "face_id",
    attributes: Sequence[str] = tuple(ATTRIBUTES),
    default_method: Method = "probe",
) -> pl.DataFrame:
    """Per attribute the first known of manual, label and prediction, and which one it was (module docstring)."""
    if default_method not in METHODS:
        raise ValueError(f"default_method must be one of {METHODS}, got {default_method!r}")
    if id_column not in predictions.columns:
        raise ValueError(f"predictions frame has no {id_column!r} column")
    merged = predictions
    for prefix, frame in (("label", labels), ("manual", manual)):
        keyed = _keyed(frame, id_column, prefix, attributes)
        if keyed is not None:
            merged = merged.join(keyed, on=id_column, how="left", maintain_order="left")
    outputs: list[pl.Expr] = []
    for attr in attributes:
        candidates: list[tuple[pl.Expr, pl.Expr]] = []
        for prefix in ("manual", "label"):
            if f"__{prefix}_{attr}" in merged.columns:
                candidates.append((pl.col(f"__{prefix}_{attr}"), pl.lit(prefix)))
        if f"{attr}{PRED_SUFFIX}" in merged.columns:
            method = (
                pl.col(f"{attr}{METHOD_SUFFIX}")
                if f"{attr}{METHOD_SUFFIX}" in merged.columns
                else pl.lit(default_method)
            )
            candidates.append((pl.col(f"{attr}{PRED_SUFFIX}").cast(pl.String), method))
        value: pl.Expr = pl.lit(None, dtype=pl.String)
        source: pl.Expr = pl.lit(None, dtype=pl.String)
        for candidate, name in reversed(candidates):
            value = pl.when(candidate.is_not_null()).then(candidate).otherwise(value)
            source = pl.when(candidate.is_not_null()).then(name).otherwise(source)
        outputs += [value.cast(pl.String).alias(attr), source.cast(pl.String).alias(f"{attr}_source")]
    return merged.select(pl.col(id_column), *outputs)
