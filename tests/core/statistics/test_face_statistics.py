"""The face_statistics table on small synthetic master tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.prevalence_calibration import CalibrationData
from facestats_core.statistics.face_statistics import (
    FACE_STATISTICS_SCHEMA,
    METHOD,
    MIN_CORRECTED_N,
    NO_CALIBRATION,
    NO_POSTERIORS,
    SLICE_KEYS,
    SMALL_SLICE,
    face_statistics,
)
from tests.core.statistics.synthetic_master import synthetic_master, synthetic_posteriors


def tiny_master() -> pl.DataFrame:
    """Eight images: two without a gender prediction, one manual override, clusters 0/1/null, two unscored."""
    return pl.DataFrame(
        {
            "face_id": [f"i{i}" for i in range(8)],
            "gender_pred": ["female", "female", "male", "female", None, "male", "female", None],
            "age_pred": ["20-29", "20-29", "30-39", "20-29", "30-39", "20-29", "30-39", None],
            "ethnicity_pred": ["white", "black", "white", "white", "white", "black", "white", None],
            "gender": ["female", "female", "male", "female", None, "male", "male", None],
            "age": ["20-29", "20-29", "30-39", "20-29", "30-39", "20-29", "30-39", None],
            "ethnicity": ["white", "black", "white", "white", "white", "black", "white", None],
            "cluster": pl.Series([0, 0, 1, 1, 0, None, 1, None], dtype=pl.Int32),
            "attractiveness_raw": [4.0, 5.0, 6.0, None, 3.0, 7.0, 5.5, None],
        }
    )


def gender_calibration(per_class: int = 100, seed: int = 0) -> dict[str, CalibrationData]:
    y = np.repeat([0, 1], per_class)
    P = synthetic_posteriors(y, 2, 2.0, np.random.default_rng(seed)).astype(np.float32)
    return {"gender": CalibrationData(("male", "female"), P, y)}


def with_gender_probs(master: pl.DataFrame, copies: int = 1) -> pl.DataFrame:
    """``master`` repeated ``copies`` times (new face ids) with ``gender_probs`` matching ``gender_pred``."""
    frames = [master.with_columns((pl.col("face_id") + f"_{c}").alias("face_id")) for c in range(copies)]
    big = pl.concat(frames)
    probs = [None if g is None else ([0.8, 0.2] if g == "male" else [0.3, 0.7]) for g in big["gender_pred"]]
    return big.with_columns(pl.Series("gender_probs", probs, dtype=pl.Array(pl.Float32, 2)))


def share(table: pl.DataFrame, attribute: str, key: str, value: str) -> pl.DataFrame:
    return table.filter(
        (pl.col("statistic") == "share")
        & (pl.col("attribute") == attribute)
        & (pl.col("slice_key") == key)
        & (pl.col("slice_value") == value)
    )


def test_schema_and_share_rows() -> None:
    table = face_statistics(tiny_master(), None, n_boot=100)
    assert table.schema == pl.Schema(FACE_STATISTICS_SCHEMA)
    rows = share(table, "gender", "all", "all")
    assert rows["value"].to_list() == ["male", "female"]
    assert rows["n"].to_list() == [6, 6]  # two faces without a gender prediction
    assert rows["count"].to_list() == [2, 4]
    assert rows["estimate"].to_list() == pytest.approx([2 / 6, 4 / 6])
    assert (rows["low"] < rows["estimate"]).all() and (rows["estimate"] < rows["high"]).all()
    shares = table.filter(pl.col("statistic") == "share")
    by_slice = shares.group_by("attribute", "slice_key", "slice_value")
    sums = by_slice.agg(pl.col("count").sum(), pl.col("n").first())
    assert (sums["count"] == sums["n"]).all()
    assert set(table["slice_key"].unique()) <= set(SLICE_KEYS)


def test_zero_count_classes_have_rows() -> None:
    table = face_statistics(tiny_master(), None, n_boot=100)
    ages = share(table, "age", "all", "all")
    assert ages["value"].to_list() == list(ATTRIBUTES["age"])
    none = ages.filter(pl.col("value") == "70+").row(0, named=True)
    assert none["count"] == 0 and none["estimate"] == 0.0 and none["low"] == 0.0 and 0.0 < none["high"] < 1.0
    eth = share(table, "ethnicity", "gender", "female")
    assert eth.height == len(ATTRIBUTES["ethnicity"])


def test_slices_use_final_values_of_other_attributes_clusters_and_composites() -> None:
    composites = {"gender=female": ["i0", "i1", "i3", "nope"], "age=70+": ["i7"]}
    table = face_statistics(tiny_master(), None, composites=composites, n_boot=100)
    gender_slices = set(share_keys(table, "gender"))
    assert ("gender", "male") not in gender_slices  # never sliced by itself
    assert gender_slices == {
        ("all", "all"), ("age", "20-29"), ("age", "30-39"), ("ethnicity", "white"), ("ethnicity", "black"),
        ("cluster", "0"), ("cluster", "1"), ("composite", "gender=female"),
    }
    # i6 is predicted female but manually male: the age shares of the male slice include it
    male = share(table, "age", "gender", "male")
    assert male["n"].first() == 3 and male.filter(pl.col("value") == "30-39")["count"].item() == 2
    # cluster 0 = i0, i1, i4; i4 has no gender prediction
    assert share(table, "gender", "cluster", "0")["n"].first() == 2
    comp = share(table, "gender", "composite", "gender=female")
    assert comp["n"].first() == 3 and comp.filter(pl.col("value") == "female")["count"].item() == 3
    # the "age=70+" composite holds only i7, which has no predictions: no rows at all
    assert table.filter(pl.col("slice_value") == "age=70+").height == 0
    assert share(table, "gender", "age", "70+").height == 0


def share_keys(table: pl.DataFrame, attribute: str) -> list[tuple[str, str]]:
    rows = table.filter((pl.col("statistic") == "share") & (pl.col("attribute") == attribute))
    return list(rows.select("slice_key", "slice_value").unique(maintain_order=True).iter_rows())


def test_truth_columns() -> None:
    truth = pl.DataFrame(
        {"face_id": ["i0", "i1", "i2", "i4", "zz"], "gender": ["female", "male", "male", "female", "male"],
         "age": [None, None, None, None, None], "ethnicity": ["white", None, "white", "black", "white"]}
    )
    table = face_statistics(tiny_master(), None, truth, n_boot=100)
    rows = share(table, "gender", "all", "all")
    # i4 has no gender prediction and zz is not in the master table: 3 faces counted
    assert rows["true_n"].to_list() == [3, 3]
    assert rows["true_share"].to_list() == pytest.approx([2 / 3, 1 / 3])
    age = share(table, "age", "all", "all")
    assert age["true_n"].to_list() == [0] * 9 and age["true_share"].null_count() == 9
    without = face_statistics(tiny_master(), None, n_boot=100)
    assert without["true_n"].null_count() == without.height
    assert without["true_share"].null_count() == without.height


def test_no_calibration_or_no_probabilities_or_a_small_slice_says_why() -> None:
    table = face_statistics(tiny_master(), None, n_boot=100)
    shares = table.filter(pl.col("statistic") == "share")
    assert shares["correction"].unique().to_list() == [NO_CALIBRATION]
    assert shares["corrected"].null_count() == shares.height
    assert shares["corrected_low"].null_count() == shares.height and not shares["unstable"].any()
    # calibration but no class probabilities in the master table
    no_probs = face_statistics(tiny_master(), gender_calibration(), n_boot=100, share_boot=50)
    assert share(no_probs, "gender", "all", "all")["correction"].first() == NO_POSTERIORS
    # probabilities, but 6 faces: under MIN_CORRECTED_N the observed share is the headline
    small = face_statistics(with_gender_probs(tiny_master()), gender_calibration(), n_boot=100, share_boot=50)
    rows = share(small, "gender", "all", "all")
    assert rows["correction"].to_list() == [SMALL_SLICE] * 2 and rows["corrected"].null_count() == 2
    assert rows["estimate"].to_list() == pytest.approx([2 / 6, 4 / 6])


def test_corrected_shares_with_calibration_for_one_attribute() -> None:
    copies = -(-MIN_CORRECTED_N // 6)  # 6 gender predictions per copy
    master = with_gender_probs(tiny_master(), copies)
    table = face_statistics(master, gender_calibration(), n_boot=100, share_boot=50)
    shares = table.filter(pl.col("statistic") == "share")
    corrections = dict(shares.filter(pl.col("slice_key") == "all")
                       .group_by("attribute").agg(pl.col("correction").first()).iter_rows())
    assert corrections == {"gender": METHOD, "age": NO_CALIBRATION, "ethnicity": NO_CALIBRATION}
    gender = share(table, "gender", "all", "all")
    assert gender["n"].first() == 6 * copies
    assert gender["corrected"].sum() == pytest.approx(1.0)
    assert (gender["corrected_low"] <= gender["corrected"] + 1e-12).all()
    assert (gender["corrected"] <= gender["corrected_high"] + 1e-12).all()
    assert not gender["unstable"].any()
    few = face_statistics(master, gender_calibration(per_class=10), n_boot=100, share_boot=50)
    rows = share(few, "gender", "all", "all")
    assert rows["unstable"].all() and "fewer than 20 calibration faces" in rows["note"].first()


def test_mean_score_rows() -> None:
    table = face_statistics(tiny_master(), None, n_boot=200)
    means = table.filter(pl.col("statistic") == "mean_score")
    overall = means.filter(pl.col("attribute") == "all").row(0, named=True)
    scores = [4.0, 5.0, 6.0, 3.0, 7.0, 5.5]
    assert overall["n"] == overall["count"] == 6
    assert overall["estimate"] == pytest.approx(np.mean(scores))
    assert overall["low"] < overall["estimate"] < overall["high"]
    assert overall["correction"] == "none: mean" and overall["corrected"] is None
    assert (means["slice_key"] == "all").all() and (means["slice_value"] == "all").all()
    groups = list(means.select("attribute", "value").iter_rows())
    assert groups[0] == ("all", "all")
    assert ("gender", "female") in groups and ("cluster", "1") in groups and ("gender", "70+") not in groups
    # final gender female = i0, i1, i3 (unscored)
    female = means.filter((pl.col("attribute") == "gender") & (pl.col("value") == "female"))
    female = female.row(0, named=True)
    assert female["n"] == 2 and female["estimate"] == pytest.approx(4.5)
    unscored = tiny_master().with_columns(pl.lit(None, dtype=pl.Float64).alias("attractiveness_raw"))
    assert face_statistics(unscored, None, n_boot=100).filter(pl.col("statistic") == "mean_score").height == 0


def test_deterministic_and_independent_of_row_order_and_extra_slices() -> None:
    master, calibration, truth = synthetic_master(300, seed=3)
    a = face_statistics(master, calibration, truth, n_boot=200, share_boot=50, seed=1)
    shuffled = master.sample(fraction=1.0, shuffle=True, seed=9)
    b = face_statistics(shuffled, calibration, truth, n_boot=200, share_boot=50, seed=1)
    assert a.equals(b)
    composites = {"all": master["face_id"].to_list()}
    with_composite = face_statistics(master, calibration, truth, composites, n_boot=200, share_boot=50, seed=1)
    assert with_composite.filter(pl.col("slice_key") != "composite").equals(a)
    assert not face_statistics(master, calibration, truth, n_boot=200, share_boot=50, seed=2).equals(a)


def test_attributes_in_threads_give_the_table_of_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The attributes (and their posterior intervals) run in threads, one per core: the table, composite
    slices included, is the one a single core makes, row for row."""
    master, calibration, truth = synthetic_master(300, seed=3)
    ids = master["face_id"].to_list()
    composites = {"first": ids[:120], "odd": ids[1::2] + ["not-a-face"]}
    threaded = face_statistics(master, calibration, truth, composites, n_boot=100, share_boot=50, seed=1)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    single = face_statistics(master, calibration, truth, composites, n_boot=100, share_boot=50, seed=1)
    assert threaded.equals(single)
    odd = threaded.filter((pl.col("slice_value") == "odd") & (pl.col("attribute") == "gender"))
    assert odd["n"].first() == len(ids[1::2])  # the member outside the table is ignored


def test_corrected_shares_move_toward_the_truth_on_synthetic_data() -> None:
    master, calibration, truth = synthetic_master(3000, seed=5, calibration_per_class=400)
    table = face_statistics(master, calibration, truth, n_boot=100, share_boot=50)
    for attribute in ("ethnicity", "age"):
        rows = share(table, attribute, "all", "all")
        raw_error = (rows["estimate"] - rows["true_share"]).abs().sum()
        corrected_error = (rows["corrected"] - rows["true_share"]).abs().sum()
        assert corrected_error < raw_error / 2, attribute


def test_every_slice_of_a_600_face_master() -> None:
    master, calibration, truth = synthetic_master(600, seed=0)
    ids = master["face_id"].to_list()
    composites = {f"n={50 * (i + 1)}": ids[: 50 * (i + 1)] for i in range(3)}
    table = face_statistics(master, calibration, truth, composites, n_boot=200, share_boot=50)
    shares = table.filter(pl.col("statistic") == "share")
    slices = shares.select("attribute", "slice_key", "slice_value", "n", "correction").unique()
    assert slices.height >= 70
    assert (slices.filter(pl.col("n") >= MIN_CORRECTED_N)["correction"] == METHOD).all()
    assert (slices.filter(pl.col("n") < MIN_CORRECTED_N)["correction"] == SMALL_SLICE).all()
    assert set(composites) <= set(shares["slice_value"]) | set(shares["slice_key"])


def test_reads_a_built_master_table() -> None:
    from facestats_core.analysis.master import build_master

    raw = pl.DataFrame({"image_id": ["ia", "ib", "ic", "id"], "path": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]})
    detections = pl.DataFrame({"image_id": ["ia", "ib", "ic", "id"], "face_id": ["a", "b", "c", "d"]})
    attributes = pl.DataFrame(
        {"face_id": ["a", "b", "c"], "gender_pred": ["male", "female", "female"],
         "age_pred": ["20-29", "20-29", "70+"], "ethnicity_pred": ["white", "indian", "white"]}
    )
    manual = pl.DataFrame({"face_id": ["c"], "gender": ["male"], "age": [None], "ethnicity": [None]})
    clusters = pl.DataFrame({"face_id": ["a", "b", "c"], "cluster": [0, 1, 1]})
    master, _ = build_master(raw, detections=detections, attributes=attributes, manual=manual, clusters=clusters)
    table = face_statistics(master, gender_calibration(), n_boot=100, share_boot=50)
    assert table.schema == pl.Schema(FACE_STATISTICS_SCHEMA)
    gender = share(table, "gender", "all", "all")
    assert gender["n"].first() == 3 and gender["correction"].first() == NO_POSTERIORS  # no gender_probs
    # c is predicted female but manually male: it sits in no female slice of the age shares
    assert share(table, "age", "gender", "male")["n"].first() == 2
    assert table.filter(pl.col("statistic") == "mean_score").height == 0  # no scores


def test_quality_slices_count_every_face_and_split_it_by_verdict() -> None:
    master = tiny_master().with_columns(
        quality=pl.Series(["good", "poor", "good", "good", "poor", "good", None, "good"]))
    table = face_statistics(master, None, n_boot=100)
    everyone = share(table, "gender", "all", "all")
    assert everyone["n"].first() == 6  # the poor faces are counted too
    good, poor = share(table, "gender", "quality", "good"), share(table, "gender", "quality", "poor")
    # good: i0, i2, i3, i5, i7 (i7 unpredicted); poor: i1, i4 (i4 unpredicted); i6 has no verdict
    assert good["n"].first() == 4 and good.filter(pl.col("value") == "female")["count"].item() == 2
    assert poor["n"].first() == 1 and poor.filter(pl.col("value") == "female")["count"].item() == 1
    means = table.filter((pl.col("statistic") == "mean_score") & (pl.col("attribute") == "quality"))
    assert means["value"].to_list() == ["good", "poor"] and means["n"].to_list() == [3, 2]
    keys = [k for k in dict.fromkeys(share(table, "age", "all", "all")["slice_key"])]
    assert keys == ["all"] and face_statistics(tiny_master(), None, n_boot=100).filter(
        pl.col("slice_key") == "quality").height == 0  # no verdicts: no quality slice


def test_calibration_faces_are_reweighted_to_the_folders_mix_of_the_other_attributes() -> None:
    from facestats_core.statistics.context_weights import context_weights

    y = np.array([0, 0, 1, 1])
    context = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0], [-1, 0, 1]])  # gender, age, ethnicity codes
    data = CalibrationData(("male", "female"), np.full((4, 2), 0.5, dtype=np.float32), y, context=context)
    # calibration: gender male 2/3 of the labelled faces; the folder: 90 % male -> male x 1.35, female x 0.3
    weights = context_weights(data, "age", {"gender": np.array([0.9, 0.1])})
    np.testing.assert_allclose(weights, [0.9 / (2 / 3), 0.1 / (1 / 3), 0.9 / (2 / 3), 1.0])
    assert context_weights(data, "gender", {"gender": np.array([0.9, 0.1])}).tolist() == [1.0] * 4  # not itself
    assert context_weights(CalibrationData(("male", "female"), data.posteriors, y), "age", {}) is None
    # round trip of the context through the named arrays
    again = CalibrationData.from_arrays(data.classes, data.arrays())
    np.testing.assert_array_equal(again.context, context)


def test_by_default_the_calibration_is_reweighted_to_the_folders_other_attributes() -> None:
    from dataclasses import replace

    from facestats_core.statistics.face_statistics import REWEIGHT_CONTEXT

    master, calibration, _ = synthetic_master(n=120, seed=3, calibration_per_class=60, clusters=1)
    rng = np.random.default_rng(4)
    g = calibration["gender"]
    context = np.stack([g.labels, rng.integers(0, 9, len(g.labels)), rng.integers(0, 7, len(g.labels))], axis=1)
    calibration = {**calibration, "gender": replace(g, context=context)}

    def corrected(**options: object) -> list[float]:
        table = face_statistics(master, calibration, n_boot=20, share_boot=10, **options)
        return share(table, "gender", "all", "all")["corrected"].to_list()

    assert REWEIGHT_CONTEXT is True
    default, on, off = corrected(), corrected(reweight_context=True), corrected(reweight_context=False)
    assert default == on and default != off
