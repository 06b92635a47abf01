"""Which method produced an attribute prediction: a trained probe or CLIP zero-shot prompts.

A prediction frame (the columns of
:func:`facestats_core.models.classifiers.predict_attributes`: ``<attr>_pred``,
``<attr>_prob``, ``<attr>_probs``) gets one ``<attr>_method`` column per
attribute, so a frame may mix methods (a bundle with a gender probe only: gender
from the probe, age and ethnicity zero-shot).
"""

from __future__ import annotations

from typing import Literal

import polars as pl

Method = Literal["probe", "zero_shot"]
METHODS: tuple[str, ...] = ("probe", "zero_shot")
PRED_SUFFIX = "_pred"
METHOD_SUFFIX = "_method"


def predicted_attributes(frame: pl.DataFrame) -> tuple[str, ...]:
    """The attributes a prediction frame holds (every ``<attr>_pred`` column), in column order."""
    return tuple(c[: -len(PRED_SUFFIX)] for c in frame.columns if c.endswith(PRED_SUFFIX))


def with_method(frame: pl.DataFrame, method: Method) -> pl.DataFrame:
    """``frame`` plus ``<attr>_method`` = ``method`` for each of its attributes (replacing any already there)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return frame.with_columns(
        pl.lit(method, dtype=pl.String).alias(f"{attr}{METHOD_SUFFIX}") for attr in predicted_attributes(frame)
    )
