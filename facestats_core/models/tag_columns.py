"""Where a tag's probability lives (``tag_<name>``) and when a face has the tag (the one rule that the
tag predictions, the master table and the ``tag=<name>`` filter share)."""

from __future__ import annotations

import polars as pl

TAG_THRESHOLD = 0.5
"""A face has a tag when its ``tag_<name>`` probability is at least this."""
TAG_PREFIX = "tag_"


def tag_column(name: str) -> str:
    """The master-table column of a tag's probability: ``tag_<name>``."""
    return f"{TAG_PREFIX}{name}"


def has_tag(name: str, threshold: float = TAG_THRESHOLD) -> pl.Expr:
    """Row predicate ``tag_<name> >= threshold`` (null probabilities never match)."""
    return (pl.col(tag_column(name)) >= threshold).fill_null(False)
