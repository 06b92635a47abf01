"""How well the predictions for an analysed set agree with its true labels and ratings (evaluation only).

The demo keeps the analysed folder's true labels and ratings aside (``labels/truth_*.csv``);
neither the CLIP, the probes nor the regressor saw those faces, so these are held-out figures
over the whole analysed set, beside the probes' own held-out split of the reference set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from facestats_core.labels.face_labels import labels_to_faces
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.attractiveness.evaluation import pearson_r


@dataclass(frozen=True)
class AttributeAgreement:
    """Predictions (``<attribute>_pred``) of ``n`` faces with a true label: accuracy, the majority
    baseline (the share of the most common true class) and the prediction method(s) used."""

    attribute: str
    n: int
    accuracy: float
    majority_baseline: float
    methods: tuple[str, ...]


@dataclass(frozen=True)
class RatingAgreement:
    """Predicted scores of ``n`` rated faces against the true ratings: Pearson r, RMSE, and the RMSE
    of predicting the true ratings' mean for every face."""

    n: int
    pearson_r: float
    rmse: float
    mean_baseline_rmse: float


def attribute_agreement(master: pl.DataFrame, face_truth: pl.DataFrame) -> list[AttributeAgreement]:
    """Per attribute of ``face_truth`` (``face_id`` + true ``gender``/``age``/``ethnicity``), the agreement of
    ``master``'s ``<attribute>_pred`` with it over the faces that have both; attributes without such faces
    are left out."""
    out: list[AttributeAgreement] = []
    for attribute in ATTRIBUTES:
        pred = f"{attribute}_pred"
        if attribute not in face_truth.columns or pred not in master.columns:
            continue
        method = f"{attribute}_method"
        cols = [pl.col("face_id"), pl.col(pred)] + ([pl.col(method)] if method in master.columns else [])
        joined = (
            master.select(cols)
            .join(face_truth.select("face_id", pl.col(attribute).alias("_true")), on="face_id", how="inner")
            .filter(pl.col(pred).is_not_null() & pl.col("_true").is_not_null())
        )
        if joined.height == 0:
            continue
        truth = joined["_true"].cast(pl.String).to_numpy()
        predicted = joined[pred].cast(pl.String).to_numpy()
        _, counts = np.unique(truth, return_counts=True)
        methods = tuple(sorted(joined[method].drop_nulls().unique().to_list())) if method in joined.columns else ()
        out.append(AttributeAgreement(
            attribute=attribute,
            n=joined.height,
            accuracy=float(np.mean(truth == predicted)),
            majority_baseline=float(counts.max() / joined.height),
            methods=methods,
        ))
    return out


def rating_agreement(master: pl.DataFrame, image_ratings: pl.DataFrame,
                     score_column: str = "attractiveness_raw") -> RatingAgreement | None:
    """``master``'s predicted ``score_column`` against true ratings of its images (``image_id``, ``score``,
    e.g. from :func:`~facestats_core.labels.ratings.match_ratings_to_images`); a rating applies to its
    image's only face. None with fewer than 3 faces that have both (no correlation to speak of)."""
    if score_column not in master.columns:
        return None
    faces = master.filter(pl.col("face_id").is_not_null()).select("face_id", "image_id", score_column)
    rated, _ = labels_to_faces(image_ratings.select("image_id", pl.col("score").alias("_true")),
                               faces.select("face_id", "image_id"))
    joined = rated.join(faces.select("face_id", score_column), on="face_id", how="inner").filter(
        pl.col(score_column).is_not_null() & pl.col(score_column).is_not_nan() & pl.col("_true").is_not_null()
    )
    if joined.height < 3:
        return None
    truth = joined["_true"].cast(pl.Float64).to_numpy()
    predicted = joined[score_column].cast(pl.Float64).to_numpy()
    r = pearson_r(truth, predicted)
    return RatingAgreement(
        n=joined.height,
        pearson_r=0.0 if np.isnan(r) else r,  # a constant side: no correlation
        rmse=float(np.sqrt(np.mean((truth - predicted) ** 2))),
        mean_baseline_rmse=float(np.std(truth)),
    )


@dataclass(frozen=True)
class ShareError:
    """Whole-set shares of one attribute against the true shares: mean absolute error over the classes
    (percentage points) of the observed share and of the corrected share (None when not corrected)."""

    attribute: str
    n: int
    observed_mae_pp: float
    corrected_mae_pp: float | None
    correction: str


def share_errors(statistics: pl.DataFrame) -> list[ShareError]:
    """Per attribute, from a ``face_statistics`` table's whole-set (``all``) share rows that have a true
    share: the observed and corrected MAE against it. Attributes without true shares are left out."""
    rows = statistics.filter(
        (pl.col("statistic") == "share") & (pl.col("slice_key") == "all") & pl.col("true_share").is_not_null()
    )
    out: list[ShareError] = []
    for attribute in ATTRIBUTES:
        part = rows.filter(pl.col("attribute") == attribute)
        if part.height == 0:
            continue
        truth = part["true_share"].to_numpy()
        observed = float(100 * np.abs(part["estimate"].to_numpy() - truth).mean())
        corrected = None
        if part["corrected"].null_count() == 0:
            corrected = float(100 * np.abs(part["corrected"].to_numpy() - truth).mean())
        out.append(ShareError(attribute, int(part["true_n"].max()), observed, corrected,
                              str(part["correction"][0])))
    return out
