"""Predictions against kept-aside true labels and ratings: accuracy, baselines, Pearson r and RMSE."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from facestats_core.statistics.truth_agreement import attribute_agreement, rating_agreement


def _master() -> pl.DataFrame:
    return pl.DataFrame({
        "face_id": ["a_1", "b_1", "c_1", "d_1", "d_2", None],
        "image_id": ["a", "b", "c", "d", "d", "e"],
        "gender_pred": ["male", "female", "female", "male", "female", None],
        "gender_method": ["probe", "probe", "zero_shot", "probe", "probe", None],
        "age_pred": ["20-29", "20-29", "70+", "3-9", "3-9", None],
        "attractiveness_raw": [3.0, 4.0, 2.0, 3.5, 1.0, None],
    })


def test_accuracy_counts_only_faces_with_a_true_label_and_names_the_methods() -> None:
    truth = pl.DataFrame({"face_id": ["a_1", "b_1", "c_1", "zz"], "gender": ["male", "male", "female", "female"]})
    [gender] = attribute_agreement(_master(), truth)
    assert gender.attribute == "gender"
    assert gender.n == 3  # "zz" is no face of the master table
    assert gender.accuracy == pytest.approx(2 / 3)  # b_1 is wrong
    assert gender.majority_baseline == pytest.approx(2 / 3)  # two of three are male
    assert gender.methods == ("probe", "zero_shot")


def test_attributes_without_truth_or_prediction_are_left_out() -> None:
    truth = pl.DataFrame({"face_id": ["a_1"], "ethnicity": ["white"], "age": [None]}, schema_overrides={
        "age": pl.String})
    assert attribute_agreement(_master(), truth) == []  # no ethnicity_pred; the one age is null


def test_rating_agreement_applies_a_rating_to_its_images_only_face() -> None:
    ratings = pl.DataFrame({"image_id": ["a", "b", "c", "d"], "score": [3.2, 3.9, 2.1, 5.0]})
    rating = rating_agreement(_master(), ratings)
    assert rating is not None
    assert rating.n == 3  # image d has two faces: its rating is not applied to either
    truth, predicted = np.array([3.2, 3.9, 2.1]), np.array([3.0, 4.0, 2.0])
    assert rating.pearson_r == pytest.approx(float(np.corrcoef(truth, predicted)[0, 1]))
    assert rating.rmse == pytest.approx(float(np.sqrt(np.mean((truth - predicted) ** 2))))
    assert rating.mean_baseline_rmse == pytest.approx(float(np.std(truth)))


def test_too_few_rated_faces_or_no_scores_give_no_rating_agreement() -> None:
    ratings = pl.DataFrame({"image_id": ["a", "b"], "score": [3.0, 4.0]})
    assert rating_agreement(_master(), ratings) is None
    assert rating_agreement(_master().drop("attractiveness_raw"), ratings) is None


def test_constant_true_ratings_correlate_zero() -> None:
    ratings = pl.DataFrame({"image_id": ["a", "b", "c"], "score": [3.0, 3.0, 3.0]})
    rating = rating_agreement(_master(), ratings)
    assert rating is not None and rating.pearson_r == 0.0 and rating.mean_baseline_rmse == 0.0


def test_share_errors_from_the_whole_set_rows() -> None:
    from facestats_core.statistics.truth_agreement import share_errors

    table = pl.DataFrame({
        "statistic": ["share"] * 4 + ["share"] * 2,
        "attribute": ["gender", "gender", "gender", "gender", "age", "age"],
        "slice_key": ["all", "all", "age", "age", "all", "all"],
        "value": ["male", "female", "male", "female", "20-29", "30-39"],
        "estimate": [0.6, 0.4, 0.9, 0.1, 0.5, 0.5],
        "corrected": [0.52, 0.48, 0.5, 0.5, None, None],
        "correction": ["emq_bcts"] * 4 + ["none: no calibration data with the probe"] * 2,
        "true_n": [100] * 6,
        "true_share": [0.5, 0.5, 0.5, 0.5, 0.3, 0.7],
    })
    gender, age = share_errors(table)
    assert (gender.attribute, gender.n) == ("gender", 100)
    assert gender.observed_mae_pp == pytest.approx(10.0) and gender.corrected_mae_pp == pytest.approx(2.0)
    assert age.observed_mae_pp == pytest.approx(20.0) and age.corrected_mae_pp is None
    assert share_errors(table.with_columns(pl.lit(None, pl.Float64).alias("true_share"))) == []
