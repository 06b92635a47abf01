"""The ``face_statistics`` table: class shares with intervals and corrections, mean scores.

:func:`face_statistics` answers "what share of my faces is female, per age
group?" with one long table (:data:`FACE_STATISTICS_SCHEMA`, documented in
``docs/statistics.md``):

* ``share`` rows: for each attribute (``gender``, ``age``, ``ethnicity``) and
  each slice (all faces; each value of each *other* attribute's final label;
  each cluster; each face-quality verdict; each composite), every class of the attribute's vocabulary
  with its predicted count, observed share with a Wilson interval, the share
  corrected for classifier error (:data:`METHOD` of
  :mod:`~facestats_core.statistics.quantifiers` on the faces' class
  probabilities, with the probe's calibration data) with a posterior interval
  of the population's share, one Gibbs chain per bootstrap replicate of the calibration data
  (:mod:`~facestats_core.statistics.share_posterior`), and the true share
  where ``truth`` has labels. Slices of fewer than :data:`MIN_CORRECTED_N`
  faces get no corrected share (``correction`` says why): the observed share
  is their headline.
* ``mean_score`` rows: mean attractiveness overall, per final value of each
  attribute, per cluster and per quality verdict, with a percentile-bootstrap interval.

Row order (deterministic, independent of the input's row order and of the
order of ``composites``): ``share`` rows, then ``mean_score`` rows. Share
rows by attribute (gender, age, ethnicity), then slice key (``all``,
``gender``, ``age``, ``ethnicity``, ``cluster``, ``quality``, ``composite``), then slice
value (vocabulary order; clusters ascending; ``good`` then ``poor``; composite specs sorted), then
class in vocabulary order. Mean rows by grouping (``all``, ``gender``,
``age``, ``ethnicity``, ``cluster``, ``quality``), then group in the same orders.

Every face counts: the quality verdict (:mod:`facestats_core.faces.quality`) only slices.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from facestats_core.faces.quality import QUALITY_VALUES
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.prevalence_calibration import CalibrationData
from facestats_core.statistics.context_weights import context_weights
from facestats_core.statistics.intervals import bootstrap_mean_interval, wilson_intervals
from facestats_core.statistics.quantifiers import fit_quantifier, quantify
from facestats_core.statistics.share_intervals import bootstrap_fits
from facestats_core.statistics.share_posterior import posterior_intervals

FACE_STATISTICS_SCHEMA: dict[str, pl.DataType] = {
    "statistic": pl.String,
    "attribute": pl.String,
    "slice_key": pl.String,
    "slice_value": pl.String,
    "value": pl.String,
    "n": pl.Int64,
    "count": pl.Int64,
    "estimate": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "corrected": pl.Float64,
    "corrected_low": pl.Float64,
    "corrected_high": pl.Float64,
    "correction": pl.String,
    "unstable": pl.Boolean,
    "note": pl.String,
    "true_n": pl.Int64,
    "true_share": pl.Float64,
}
"""Column name -> polars dtype of the :func:`face_statistics` table, in column order."""

SHARE = "share"
MEAN_SCORE = "mean_score"
ALL = "all"
SLICE_KEYS: tuple[str, ...] = (ALL, *ATTRIBUTES, "cluster", "quality", "composite")
"""Every ``slice_key``, in output order."""

METHOD = "emq_bcts"
"""The share estimator (``quantifiers.METHODS``): EM prior adjustment on bias-corrected temperature-scaled
posteriors, chosen by ``benchmarks/bench_prevalence.py`` (lowest error under prevalence shift; docs/statistics.md)."""
EM_STEPS = 7
"""EM stops after this many steps from the calibration mix (``fit_quantifier(em_steps=…)``): chosen by
``benchmarks/bench_prevalence.py`` (lowest Dirichlet error on the pool half it selects on; docs/statistics.md)."""
REWEIGHT_CONTEXT = True
"""Reweight each attribute's calibration faces to the folder's estimated mix of the other attributes
(:func:`~facestats_core.statistics.context_weights.context_weights`) by default: chosen by ``benchmarks/bench_prevalence.py``'s joint-shift protocol
(every attribute's shares shifted at once), on the pool half it selects on (docs/statistics.md)."""
MIN_CORRECTED_N = 50
"""Fewest faces in a slice for a corrected share: the benchmark measured the correction from 50 faces on."""
MIN_CALIBRATION_PER_CLASS = 20
"""Fewest calibration faces of a true class for its rates to count as well estimated (else ``unstable``)."""
SHARE_BOOT = 200
"""Calibration replicates behind a corrected share's interval (each refits the calibration; one Gibbs chain
per replicate, :func:`~facestats_core.statistics.share_posterior.posterior_intervals`)."""
NO_CALIBRATION = "none: no calibration data with the probe"
NO_POSTERIORS = "none: no class probabilities in the master table"
SMALL_SLICE = (
    f"none: fewer than {MIN_CORRECTED_N} faces; the observed share is the headline (the benchmark measured "
    f"the correction from {MIN_CORRECTED_N} faces on)"
)
MEAN_CORRECTION = "none: mean"
SCORE_COLUMN = "attractiveness_raw"

Calibrations = Mapping[str, CalibrationData]


@dataclass(frozen=True)
class Slice:
    """A subset of the master table's rows: ``key``/``value`` as written in the table, ``mask`` over rows."""

    key: str
    value: str
    mask: np.ndarray


# --------------------------------------------------------------------------- helpers


def _derive_seed(seed: int, *parts: str) -> int:
    """A seed for one estimate, from ``seed`` and a name, stable across runs and processes."""
    key = zlib.crc32("\x1f".join(parts).encode("utf-8"))
    return int(np.random.SeedSequence([int(seed), key]).generate_state(1, dtype=np.uint64)[0])


def _strings(master: pl.DataFrame, column: str) -> np.ndarray:
    """The column as an object array of str/None (all None when the column is missing)."""
    if column not in master.columns:
        return np.full(master.height, None, dtype=object)
    return np.asarray(master[column].cast(pl.String).to_list(), dtype=object)


def _codes(values: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Index of each value in ``classes``; -1 for null or values outside the vocabulary."""
    index = {c: i for i, c in enumerate(classes)}
    codes = (index.get(v, -1) if isinstance(v, str) else -1 for v in values)
    return np.fromiter(codes, np.int64, len(values))


def _one_hot(codes: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(codes), k), dtype=np.int64)
    rows = np.flatnonzero(codes >= 0)
    out[rows, codes[rows]] = 1
    return out


def _clusters(master: pl.DataFrame) -> np.ndarray:
    """Cluster id per row as int64, -1 where null (a real cluster id is never negative)."""
    if "cluster" not in master.columns:
        return np.full(master.height, -1, dtype=np.int64)
    return master["cluster"].cast(pl.Int64).fill_null(-1).to_numpy()


def _quality_groups(master: pl.DataFrame) -> list[tuple[str, np.ndarray]]:
    """``(verdict, mask)`` of each quality verdict present in ``master``, in :data:`QUALITY_VALUES` order."""
    verdicts = _strings(master, "quality")
    return [(value, verdicts == value) for value in QUALITY_VALUES if (verdicts == value).any()]


def _slices(
    master: pl.DataFrame,
    attribute: str,
    finals: Mapping[str, np.ndarray],
    clusters: np.ndarray,
    composites: Sequence[Slice],
) -> list[Slice]:
    """The slices for the shares of ``attribute``: all, other attributes' final values, clusters,
    quality verdicts, then ``composites`` (:func:`_composite_slices`)."""
    slices = [Slice(ALL, ALL, np.ones(master.height, dtype=bool))]
    for other, classes in ATTRIBUTES.items():
        if other == attribute:
            continue
        for value in classes:
            slices.append(Slice(other, value, finals[other] == value))
    for cluster in sorted(set(clusters[clusters >= 0].tolist())):
        slices.append(Slice("cluster", str(cluster), clusters == cluster))
    slices.extend(Slice("quality", value, mask) for value, mask in _quality_groups(master))
    return slices + list(composites)


def _composite_slices(master: pl.DataFrame, composites: Mapping[str, Sequence[str]] | None) -> list[Slice]:
    """One ``composite`` slice per spec, in spec order: the rows whose ``face_id`` is a member (members not
    in ``master`` are ignored). Made once for all attributes, by set lookups (linear in the rows)."""
    if not composites:
        return []
    ids = _strings(master, "face_id").tolist()
    slices = []
    for spec in sorted(composites):
        members = {str(m) for m in composites[spec]}
        slices.append(Slice("composite", str(spec), np.fromiter((i in members for i in ids), bool, len(ids))))
    return slices


def _truth_codes(master: pl.DataFrame, truth: pl.DataFrame | None) -> dict[str, np.ndarray] | None:
    """Per attribute the true class index of each master row (-1: no true label), or None without truth."""
    if truth is None:
        return None
    if "face_id" not in truth.columns:
        raise ValueError("the truth table has no face_id column")
    cols = [c for c in ATTRIBUTES if c in truth.columns]
    table = (
        truth.select(pl.col("face_id").cast(pl.String), *(pl.col(c).cast(pl.String) for c in cols))
        .filter(pl.col("face_id").is_not_null())
        .unique("face_id", keep="first", maintain_order=True)
    )
    ids = master.select(pl.col("face_id").cast(pl.String))
    joined = ids.join(table, on="face_id", how="left", maintain_order="left")
    missing = np.full(master.height, -1, np.int64)
    return {
        attr: _codes(_strings(joined, attr), classes) if attr in cols else missing
        for attr, classes in ATTRIBUTES.items()
    }


def _new_columns() -> dict[str, list[Any]]:
    return {name: [] for name in FACE_STATISTICS_SCHEMA}


# --------------------------------------------------------------------------- share rows


def _posteriors(master: pl.DataFrame, attribute: str, k: int) -> np.ndarray | None:
    """``(rows, k)`` class probabilities from ``<attribute>_probs`` (NaN rows where null), or None without them."""
    name = f"{attribute}_probs"
    if name not in master.columns:
        return None
    column = master[name]
    if column.null_count() == master.height:
        return None
    out = np.full((master.height, k), np.nan)
    present = column.is_not_null().to_numpy()
    values = column.filter(column.is_not_null()).cast(pl.Array(pl.Float64, k)).to_numpy()
    out[present] = values
    return out


def calibration_problems(calibration: CalibrationData, classes: Sequence[str]) -> list[str]:
    """Why the calibration data make the correction unstable (empty list: they do not)."""
    counts = np.bincount(calibration.labels, minlength=len(classes))
    few = [(c, int(n)) for c, n in zip(classes, counts) if n < MIN_CALIBRATION_PER_CLASS]
    if not few:
        return []
    listed = ", ".join(f"{c} ({n})" for c, n in few)
    return [f"fewer than {MIN_CALIBRATION_PER_CLASS} calibration faces of true class {listed}"]


def _whole_set_shares(master: pl.DataFrame, calibration: Calibrations) -> dict[str, np.ndarray]:
    """Per attribute with calibration data and probabilities for at least :data:`MIN_CORRECTED_N` faces:
    its corrected shares over the whole table (unweighted calibration)."""
    out: dict[str, np.ndarray] = {}
    for attribute, data in calibration.items():
        classes = ATTRIBUTES.get(attribute)
        if classes is None or tuple(data.classes) != tuple(classes):
            continue
        P = _posteriors(master, attribute, len(classes))
        if P is None:
            continue
        P = P[np.isfinite(P).all(axis=1)]
        if len(P) >= MIN_CORRECTED_N:
            out[attribute] = quantify(fit_quantifier(METHOD, data.posteriors.astype(np.float64), data.labels,
                                                     em_steps=EM_STEPS), P)
    return out


def _corrected(
    master: pl.DataFrame,
    attribute: str,
    slices: list[Slice],
    pred: np.ndarray,
    calibration: CalibrationData | None,
    *,
    n_boot: int,
    seed: int,
    confidence: float,
    weights: np.ndarray | None = None,
) -> tuple[str, list[tuple[np.ndarray, np.ndarray, np.ndarray] | None], list[str]]:
    """``(correction, per slice (corrected, low, high) or None, problems)`` for ``attribute``."""
    classes = ATTRIBUTES[attribute]
    none: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(slices)
    if calibration is None:
        return NO_CALIBRATION, none, []
    if tuple(calibration.classes) != tuple(classes):
        raise ValueError(f"{attribute}: calibration classes {calibration.classes} are not {classes}")
    P = _posteriors(master, attribute, len(classes))
    if P is None:
        return NO_POSTERIORS, none, []
    usable = (pred >= 0) & np.isfinite(P).all(axis=1)
    targets = [P[s.mask & usable] for s in slices]
    live = [i for i, t in enumerate(targets) if len(t) >= MIN_CORRECTED_N]
    out = list(none)
    if live:
        P_cal = calibration.posteriors.astype(np.float64)
        point = fit_quantifier(METHOD, P_cal, calibration.labels, weights=weights, em_steps=EM_STEPS)
        fits = bootstrap_fits(METHOD, P_cal, calibration.labels, n_boot=n_boot,
                              seed=_derive_seed(seed, SHARE, attribute), weights=weights, em_steps=EM_STEPS)
        estimates = np.stack([quantify(point, targets[i]) for i in live])
        low, high = posterior_intervals(
            fits, [targets[i] for i in live], estimates, confidence=confidence,
            target_seeds=[_derive_seed(seed, SHARE, attribute, slices[i].key, slices[i].value) for i in live],
        )
        for j, i in enumerate(live):
            out[i] = (estimates[j], low[j], high[j])
    return METHOD, out, calibration_problems(calibration, classes)


def _share_rows(
    out: dict[str, list[Any]],
    master: pl.DataFrame,
    attribute: str,
    slices: list[Slice],
    calibration: CalibrationData | None,
    truth_codes: np.ndarray | None,
    *,
    n_boot: int,
    seed: int,
    confidence: float,
    weights: np.ndarray | None = None,
) -> None:
    """Append the share rows of ``attribute`` for ``slices`` to ``out`` (``weights``: of the calibration faces)."""
    classes = ATTRIBUTES[attribute]
    k = len(classes)
    pred = _codes(_strings(master, f"{attribute}_pred"), classes)
    masks = np.stack([s.mask for s in slices]).astype(np.int64)  # (s, rows)
    counts = masks @ _one_hot(pred, k)  # (s, k)
    n = counts.sum(axis=1)
    live = np.flatnonzero(n > 0)
    if live.size == 0:
        return
    counts, n = counts[live], n[live]
    slices = [slices[i] for i in live]
    low, high = wilson_intervals(counts, n[:, None], confidence)
    correction, estimates, problems = _corrected(
        master, attribute, slices, pred, calibration, n_boot=n_boot, seed=seed, confidence=confidence,
        weights=weights)

    true_n = true_counts = None
    if truth_codes is not None:
        labelled = np.where(pred >= 0, truth_codes, -1)  # faces counted in n that have a true label
        true_counts = masks[live] @ _one_hot(labelled, k)
        true_n = true_counts.sum(axis=1)

    for row, piece in enumerate(slices):
        estimate = estimates[row]
        row_correction = correction
        if estimate is None and correction == METHOD:
            row_correction = SMALL_SLICE
        for j, value in enumerate(classes):
            out["statistic"].append(SHARE)
            out["attribute"].append(attribute)
            out["slice_key"].append(piece.key)
            out["slice_value"].append(piece.value)
            out["value"].append(value)
            out["n"].append(int(n[row]))
            out["count"].append(int(counts[row, j]))
            out["estimate"].append(float(counts[row, j] / n[row]))
            out["low"].append(float(low[row, j]))
            out["high"].append(float(high[row, j]))
            out["corrected"].append(None if estimate is None else float(estimate[0][j]))
            out["corrected_low"].append(None if estimate is None else float(estimate[1][j]))
            out["corrected_high"].append(None if estimate is None else float(estimate[2][j]))
            out["correction"].append(row_correction)
            out["unstable"].append(bool(estimate is not None and problems))
            out["note"].append("; ".join(problems) if estimate is not None and problems else None)
            if true_n is None or true_counts is None:
                out["true_n"].append(None)
                out["true_share"].append(None)
            else:
                out["true_n"].append(int(true_n[row]))
                out["true_share"].append(float(true_counts[row, j] / true_n[row]) if true_n[row] else None)


# --------------------------------------------------------------------------- mean rows


def _mean_rows(
    out: dict[str, list[Any]],
    master: pl.DataFrame,
    finals: Mapping[str, np.ndarray],
    clusters: np.ndarray,
    *,
    n_boot: int,
    seed: int,
    confidence: float,
) -> None:
    """Append the mean-attractiveness rows (overall, per final attribute value, per cluster, per quality
    verdict) to ``out``."""
    if SCORE_COLUMN not in master.columns:
        return
    scores = master[SCORE_COLUMN].cast(pl.Float64).fill_null(np.nan).to_numpy()
    scored = np.isfinite(scores)
    if not scored.any():
        return
    groups: list[tuple[str, str, np.ndarray]] = [(ALL, ALL, scored)]
    for attr, classes in ATTRIBUTES.items():
        groups.extend((attr, value, scored & (finals[attr] == value)) for value in classes)
    groups.extend(
        ("cluster", str(c), scored & (clusters == c)) for c in sorted(set(clusters[clusters >= 0].tolist()))
    )
    groups.extend(("quality", value, scored & mask) for value, mask in _quality_groups(master))
    for grouping, value, mask in groups:
        size = int(mask.sum())
        if size == 0:
            continue
        mean, low, high = bootstrap_mean_interval(
            scores[mask],
            confidence=confidence,
            n_boot=n_boot,
            seed=_derive_seed(seed, MEAN_SCORE, grouping, value),
        )
        row = {
            "statistic": MEAN_SCORE, "attribute": grouping, "slice_key": ALL, "slice_value": ALL,
            "value": value, "n": size, "count": size, "estimate": mean, "low": low, "high": high,
            "corrected": None, "corrected_low": None, "corrected_high": None,
            "correction": MEAN_CORRECTION, "unstable": False, "note": None,
            "true_n": None, "true_share": None,
        }
        for name, item in row.items():
            out[name].append(item)


# --------------------------------------------------------------------------- the table


def face_statistics(
    master: pl.DataFrame,
    calibration: Calibrations | None,
    truth: pl.DataFrame | None = None,
    composites: Mapping[str, Sequence[str]] | None = None,
    *,
    n_boot: int = 1000,
    share_boot: int = SHARE_BOOT,
    reweight_context: bool = REWEIGHT_CONTEXT,
    seed: int = 0,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """The statistics table (:data:`FACE_STATISTICS_SCHEMA`) of a master table.

    ``master``: one row per face with ``face_id``, ``<attr>_pred`` (shares
    count these), ``<attr>_probs`` (the corrected shares estimate from these),
    the final ``<attr>`` values (slices use these), ``cluster``, ``quality`` and
    ``attractiveness_raw``; missing columns count as null. ``calibration``:
    attribute -> the probe's :class:`CalibrationData`; attributes without one
    (or without probabilities in ``master``) get null ``corrected*`` and
    ``correction = "none: …"``, as do slices of fewer than
    :data:`MIN_CORRECTED_N` faces. ``n_boot``: replicates of a mean score's
    interval; ``share_boot``: of a corrected share's. ``reweight_context``
    (default :data:`REWEIGHT_CONTEXT`): reweight each attribute's calibration
    faces to the table's estimated mix of the other attributes
    (:func:`~facestats_core.statistics.context_weights.context_weights`; needs the calibration context).
    ``truth``: ``face_id`` plus any of ``gender, age, ethnicity`` in canonical
    vocabularies (nulls allowed); ``true_n``/``true_share`` count the faces of
    the slice that have both a prediction and a true label. ``composites``:
    canonical filter spec -> member image ids (a ``composite`` slice each).
    Predictions and labels outside the vocabulary count as missing. Slices
    (and groups) without faces produce no rows. Seeded: equal inputs give
    equal tables; each estimate's random stream depends only on ``seed`` and
    its attribute and group, so adding a composite leaves the other rows as
    they were.
    """
    if "face_id" not in master.columns:
        raise ValueError("the master table has no face_id column")
    master = master.sort("face_id")  # independent of the input's row order
    finals = {attr: _strings(master, attr) for attr in ATTRIBUTES}
    clusters = _clusters(master)
    truth_codes = _truth_codes(master, truth)
    whole = _whole_set_shares(master, calibration or {}) if reweight_context else {}
    composite_slices = _composite_slices(master, composites)

    def share_columns(attribute: str) -> dict[str, list[Any]]:
        columns = _new_columns()
        data = (calibration or {}).get(attribute)
        _share_rows(
            columns,
            master,
            attribute,
            _slices(master, attribute, finals, clusters, composite_slices),
            data,
            None if truth_codes is None else truth_codes[attribute],
            n_boot=share_boot,
            seed=seed,
            confidence=confidence,
            weights=None if data is None or not reweight_context else context_weights(data, attribute, whole),
        )
        return columns

    # the attributes side by side, one thread each up to the cores, each sampling its posterior intervals in
    # threads of its own too: every estimate has its own random stream, so the rows are the same in any
    # order; they are kept in ATTRIBUTES order
    with ThreadPoolExecutor(max_workers=max(1, min(len(ATTRIBUTES), os.cpu_count() or 1))) as pool:
        parts = list(pool.map(share_columns, ATTRIBUTES))
    out = {name: [value for part in parts for value in part[name]] for name in FACE_STATISTICS_SCHEMA}
    _mean_rows(out, master, finals, clusters, n_boot=n_boot, seed=seed, confidence=confidence)
    return pl.DataFrame(out, schema=FACE_STATISTICS_SCHEMA)
