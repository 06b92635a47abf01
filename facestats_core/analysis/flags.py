"""Review flags: low-confidence predictions, near-duplicates, carried-over preprocessing flags.

Also builds a review template in the manual-labels CSV format
(``filename,gender,age,ethnicity`` + ``flags``), prefilled with predictions,
so a reviewer can correct it and feed it back as ``manual_labels.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES

NEAR_DUPLICATE = "near_duplicate"
NO_PREDICTION = "no_prediction"
DUPLICATE_SCHEMA = {"face_id": pl.String, "duplicate_of": pl.String, "similarity": pl.Float32}
TEMPLATE_COLUMNS: tuple[str, ...] = ("filename", "gender", "age", "ethnicity", "flags")


def low_confidence_column(attr: str) -> str:
    """Name of the boolean low-confidence column for ``attr``."""
    return f"{attr}_low_confidence"


def low_confidence_flags(pred_df: pl.DataFrame, thresholds: Mapping[str, float]) -> pl.DataFrame:
    """``<attr>_low_confidence`` = ``<attr>_prob < threshold`` (a null prob counts as low).

    ``face_id`` is kept when ``pred_df`` has it. A threshold for an attribute
    without a ``<attr>_prob`` column raises ``KeyError``.
    """
    exprs: list[pl.Expr] = [pl.col("face_id")] if "face_id" in pred_df.columns else []
    for attr, threshold in thresholds.items():
        col = f"{attr}_prob"
        if col not in pred_df.columns:
            raise KeyError(f"no {col!r} column for low-confidence threshold on {attr!r}")
        exprs.append(
            (pl.col(col) < float(threshold)).fill_null(True).alias(low_confidence_column(attr))
        )
    return pred_df.select(exprs)


def _normalise_rows(X: np.ndarray) -> np.ndarray:
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    norms = np.linalg.norm(Xf, axis=1, keepdims=True)
    return Xf / np.where(norms > 0, norms, 1.0)


MAX_BLOCK_CELLS = 1_000_000
"""Similarities computed at once (rows x columns): bounds the memory whatever the number of faces."""


def _linked_components(X: np.ndarray, threshold: float, block: int) -> tuple[np.ndarray, np.ndarray]:
    """``(component label per row, linked)``: rows joined by cosine >= ``threshold`` (directly or through a
    chain) share a label; ``linked`` marks rows with at least one such neighbour.

    Similarities are computed ``block`` rows at a time (at most :data:`MAX_BLOCK_CELLS` cells); each
    block's edges are reduced to the components they form, kept as one edge from every linked row to its
    component's first row, so memory stays ``O(block x n + n x blocks)`` even when most pairs are
    similar (a burst of near-identical photos, or an untrained CLIP)."""
    from scipy.sparse import coo_matrix  # noqa: PLC0415 - scipy is imported where it is used
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    n = X.shape[0]
    block = max(1, min(block, MAX_BLOCK_CELLS // max(1, n)))
    heads: list[np.ndarray] = []
    tails: list[np.ndarray] = []
    linked = np.zeros(n, dtype=bool)
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = X[start:stop] @ X[start:].T  # (b, n - start): only j >= start
        ii, jj = np.nonzero(sims >= threshold)
        del sims
        ii, jj = ii + start, jj + start
        keep = jj > ii
        ii, jj = ii[keep], jj[keep]
        if len(ii) == 0:
            continue
        nodes, index = np.unique(np.concatenate([ii, jj]), return_inverse=True)
        graph = coo_matrix((np.ones(len(ii), dtype=np.int8), (index[: len(ii)], index[len(ii):])),
                           shape=(len(nodes), len(nodes)))
        _, label = connected_components(graph, directed=False)
        first = np.full(label.max() + 1, -1, dtype=np.int64)
        first[label[::-1]] = nodes[::-1]  # the smallest row of each component (nodes are sorted)
        heads.append(nodes)
        tails.append(first[label])
        linked[nodes] = True
    if not heads:
        return np.arange(n), linked
    left, right = np.concatenate(heads), np.concatenate(tails)
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1], linked


def near_duplicates(
    face_ids: Sequence[str],
    X: np.ndarray,
    threshold: float = 0.97,
    block: int = 2048,
) -> pl.DataFrame:
    """Near-duplicate groups by cosine similarity of (L2-normalised) embeddings.

    Similarities are computed in ``block``-row matrix products (memory bounded
    by ``block x n``, fewer rows for large ``n``: :data:`MAX_BLOCK_CELLS`). Images linked by similarity >= ``threshold`` (directly
    or through a chain) form a group; each member other than the group's
    lexicographically smallest ``face_id`` gets one row
    ``(face_id, duplicate_of=<smallest>, similarity=cosine to it)``. With
    chains the reported similarity may fall below the threshold. Rows are
    re-normalised defensively; ``face_ids`` must be unique.
    """
    ids = list(face_ids)
    Xn = _normalise_rows(np.asarray(X))
    if Xn.ndim != 2 or Xn.shape[0] != len(ids):
        raise ValueError(f"X has shape {Xn.shape}, expected ({len(ids)}, D)")
    if len(set(ids)) != len(ids):
        raise ValueError("face_ids must be unique")
    if block < 1:
        raise ValueError("block must be >= 1")
    roots, linked = _linked_components(Xn, float(threshold), int(block))
    if not linked.any():
        return pl.DataFrame(schema=DUPLICATE_SCHEMA)
    members = np.flatnonzero(linked)
    rep_of_root: dict[int, int] = {}
    for m in members.tolist():
        r = int(roots[m])
        if r not in rep_of_root or ids[m] < ids[rep_of_root[r]]:
            rep_of_root[r] = m
    out_ids, out_reps, out_sims = [], [], []
    for m in members.tolist():
        rep = rep_of_root[int(roots[m])]
        if rep == m:
            continue
        out_ids.append(ids[m])
        out_reps.append(ids[rep])
        out_sims.append(float(Xn[m] @ Xn[rep]))
    frame = pl.DataFrame(
        {"face_id": out_ids, "duplicate_of": out_reps, "similarity": out_sims}, schema=DUPLICATE_SCHEMA
    )
    return frame.sort("duplicate_of", "face_id")


def build_flags(
    predictions: pl.DataFrame,
    thresholds: Mapping[str, float],
    *,
    preprocessing: pl.DataFrame | None = None,
    duplicates: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per face: ``face_id, flags: list[str], low_confidence, near_duplicate_of``.

    ``flags`` = preprocessing flags (``preprocessing.flags``, e.g. ``unreadable``,
    ``tiny``, ``blurry``; kept in order) + ``low_confidence_<attr>`` per
    attribute under its threshold + ``near_duplicate`` (from
    :func:`near_duplicates`) + ``no_prediction`` for images present in
    ``preprocessing`` but not in ``predictions``. Rows are sorted by ``face_id``.
    """
    low = low_confidence_flags(predictions.select("face_id", *[f"{a}_prob" for a in thresholds]), thresholds)
    low_cols = [low_confidence_column(a) for a in thresholds]
    table = low.with_columns(pl.lit(True).alias("_predicted"))
    no_flags = pl.lit(None, pl.List(pl.String))
    if preprocessing is not None:
        has_flags = "flags" in preprocessing.columns
        pre = preprocessing.select(
            "face_id",
            (pl.col("flags").cast(pl.List(pl.String)) if has_flags else no_flags).alias("_pre"),
        ).unique("face_id", keep="first", maintain_order=True)
        table = table.join(pre, on="face_id", how="full", coalesce=True)
    else:
        table = table.with_columns(no_flags.alias("_pre"))
    if duplicates is not None:
        dups = duplicates.select("face_id", pl.col("duplicate_of").alias("near_duplicate_of"))
    else:
        dups = pl.DataFrame(schema={"face_id": pl.String, "near_duplicate_of": pl.String})
    table = table.join(dups.unique("face_id", keep="first"), on="face_id", how="left")
    low_flags = [pl.when(pl.col(c)).then(pl.lit(f"low_confidence_{a}")) for a, c in zip(thresholds, low_cols)]
    extra = pl.concat_list(
        *low_flags,
        pl.when(pl.col("near_duplicate_of").is_not_null()).then(pl.lit(NEAR_DUPLICATE)),
        pl.when(pl.col("_predicted").is_null()).then(pl.lit(NO_PREDICTION)),
    ).list.drop_nulls()
    carried = pl.col("_pre").fill_null(pl.lit([], pl.List(pl.String)))
    flags = pl.concat_list(carried, extra).list.unique(maintain_order=True)
    low_cells = [pl.col(c).fill_null(False) for c in low_cols]
    low_any = pl.any_horizontal(*low_cells) if low_cells else pl.lit(False)
    return table.select(
        pl.col("face_id"),
        flags.alias("flags"),
        low_any.alias("low_confidence"),
        pl.col("near_duplicate_of"),
    ).sort("face_id")


def labels_template(flagged: pl.DataFrame, predictions: pl.DataFrame) -> pl.DataFrame:
    """Review CSV rows for flagged faces: ``filename,face_id,gender,age,ethnicity,flags``.

    Only rows with at least one flag are included. ``filename`` comes from a
    ``path`` column in ``flagged`` or else ``predictions`` (joined on
    ``face_id``); labels are prefilled from ``<attr>_pred`` (null when not
    predicted) and ``flags`` is joined with ``;``. The result is readable by
    :func:`facestats_core.labels.attribute_labels.read_manual_labels` (the extra ``flags``
    column is ignored there). Sorted by filename.
    """
    if "path" in flagged.columns:
        paths = flagged.select("face_id", "path")
    elif "path" in predictions.columns:
        paths = predictions.select("face_id", "path")
    else:
        raise ValueError("labels_template needs a 'path' column in flagged or predictions")
    pred_cols = [f"{a}_pred" for a in ATTRIBUTES]
    preds = predictions.select(
        "face_id",
        *[pl.col(c) if c in predictions.columns else pl.lit(None, pl.String).alias(c) for c in pred_cols],
    ).unique("face_id", keep="first")
    rows = flagged.select("face_id", "flags").filter(pl.col("flags").list.len() > 0)
    rows = rows.join(paths.unique("face_id", keep="first"), on="face_id", how="left")
    rows = rows.join(preds, on="face_id", how="left")
    return rows.select(
        pl.col("path").alias("filename"),
        pl.col("face_id"),
        *[pl.col(f"{a}_pred").alias(a) for a in ATTRIBUTES],
        pl.col("flags").list.join(";").alias("flags"),
    ).sort("filename", "face_id", nulls_last=True)
