"""Open-vocabulary tags: the probability that a face shows each tag of the tags file.

Each tag has two prompt ensembles (:mod:`facestats_core.models.tag_config`):
positive and negative/contrast. Its probability for an image is the CLIP
softmax over the two, ``softmax(logit_scale * x @ [p, n].T)[0]``, with ``p``
and ``n`` the ensembled (mean of normalised, renormalised) prompt embeddings
and ``x`` the L2-normalised image embedding. A face has the tag when the
probability is at least :data:`~facestats_core.models.tag_columns.TAG_THRESHOLD` (0.5: more like the positive
prompts than the contrast ones), which is what ``tag=<name>`` selects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from facestats_core.models.tag_columns import tag_column
from facestats_core.models.tag_config import TagSpec
from facestats_core.models.zero_shot import softmax_probabilities


def tag_prompt_groups(specs: Sequence[TagSpec]) -> dict[str, tuple[str, ...]]:
    """Prompt groups keyed ``"tag/<name>/positive"`` and ``"tag/<name>/negative"`` (for the text cache)."""
    groups: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        groups[f"tag/{spec.name}/positive"] = spec.positive
        groups[f"tag/{spec.name}/negative"] = spec.negative
    return groups


def tag_probabilities(
    X: np.ndarray, specs: Sequence[TagSpec], group_embeddings: Mapping[str, np.ndarray], logit_scale: float
) -> pl.DataFrame:
    """One Float32 column ``tag_<name>`` per tag (in ``specs`` order), one row per row of ``X``
    (no tags: an empty frame, nothing to add)."""
    columns: list[pl.Series] = []
    for spec in specs:
        keys = (f"tag/{spec.name}/positive", f"tag/{spec.name}/negative")
        missing = [k for k in keys if k not in group_embeddings]
        if missing:
            raise KeyError(f"no text embedding for {missing}")
        pair = np.stack([group_embeddings[k] for k in keys])
        proba = softmax_probabilities(X, pair, logit_scale)[:, 0]
        columns.append(pl.Series(tag_column(spec.name), proba, dtype=pl.Float32))
    return pl.DataFrame(columns)
