"""train_probes: one probe with calibration data per labelled attribute, the same in worker processes."""

from __future__ import annotations

import numpy as np

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.classifiers import train_attribute_classifier
from facestats_core.models.prevalence_calibration import calibration_data
from facestats_core.models.probe_training import train_probes
from tests.core.synthetic import class_blobs


def _labelled(n: int = 240) -> tuple[np.ndarray, dict[str, list[str | None]]]:
    X, gender = class_blobs(n, ATTRIBUTES["gender"], dim=32, seed=1)
    rng = np.random.default_rng(2)
    age = [ATTRIBUTES["age"][i] for i in rng.integers(0, 4, n)]
    labels = {"gender": list(gender), "age": age, "ethnicity": [None] * (n - 3) + ["white", "black", "white"]}
    return X, labels


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    return (a.C == b.C and np.array_equal(a.model.coef_, b.model.coef_)
            and a.arrays.keys() == b.arrays.keys()
            and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays))


def test_each_labelled_attribute_gets_a_probe_with_its_calibration_and_the_rest_are_named() -> None:
    X, labels = _labelled()
    result = train_probes(X, labels, seed=3, folds=4, trained_on="analysed", workers=1)
    assert set(result.probes) == {"gender", "age"} and result.too_few == {"ethnicity": 3}
    gender = result.probes["gender"]
    assert gender.metrics["trained_on"] == "analysed" and gender.metrics["accuracy"] > 0.8
    # what the asset did inline before: the probe, then its out-of-fold calibration with the probe's C
    y = np.asarray(labels["gender"], dtype=object)
    alone = train_attribute_classifier(X, y, ATTRIBUTES["gender"], groups={}, seed=3)
    calibration = calibration_data(X, y, ATTRIBUTES["gender"], C=alone.C, k=4, seed=3,
                                   context={a: np.asarray(v, dtype=object) for a, v in labels.items()})
    assert gender.C == alone.C and np.array_equal(gender.model.coef_, alone.model.coef_)
    for name, array in calibration.arrays().items():
        assert np.array_equal(gender.arrays[name], array)


def test_worker_processes_give_the_same_probes_as_one_process() -> None:
    X, labels = _labelled()
    one = train_probes(X, labels, seed=5, folds=3, workers=1)
    two = train_probes(X, labels, seed=5, folds=3, workers=2)
    assert one.probes.keys() == two.probes.keys() == {"gender", "age"}
    assert all(_same(one.probes[a], two.probes[a]) for a in one.probes)


def test_attributes_reuse_the_calibration_posteriors_exactly_when_made_from_the_same_rows() -> None:
    """``probe_predictions`` takes the probe's calibration posteriors as the labelled rows' out-of-fold
    predictions instead of fitting the folds again: the same table as fitting them, and only for the rows,
    folds and seed they were made from."""
    from facestats_core.models.out_of_fold import attribute_prediction_frame, out_of_fold_attribute
    from facestats_core.models.probe_predictions import probe_predictions, reused_out_of_fold

    X, labels = _labelled()
    gender = train_probes(X, labels, seed=3, folds=4, trained_on="analysed", workers=1).probes["gender"]
    rows = np.r_[np.arange(200), np.arange(220, 240)]  # an analysed table: labelled rows in order,
    Xa = np.vstack([X[rows], X[200:220]])  # then 20 faces without labels
    ya = [labels["gender"][i] for i in rows] + [None] * 20
    reused = reused_out_of_fold(gender, Xa, ya, k=4, seed=3)
    assert reused is None  # a different set of labelled rows than the probe's
    ya_all = list(labels["gender"])
    reused = reused_out_of_fold(gender, X, ya_all, k=4, seed=3)
    fitted = out_of_fold_attribute(X, ya_all, gender.classes, k=4, seed=3, final_model=gender,
                                   train_options={"c_grid": (float(gender.C),)})
    assert reused is not None
    assert np.array_equal(reused.values.astype(np.float32), fitted.values.astype(np.float32))
    assert reused.source.tolist() == fitted.source.tolist() and np.array_equal(reused.fold, fitted.fold)
    assert reused_out_of_fold(gender, X, ya_all, k=5, seed=3) is None  # other folds
    assert reused_out_of_fold(gender, X, ya_all, k=4, seed=4) is None  # other seed
    unlabelled_tail = ya_all[:230] + [None] * 10  # fewer labelled rows: fitted again, not reused
    assert reused_out_of_fold(gender, X, unlabelled_tail, k=4, seed=3) is None
    table = probe_predictions({"gender": gender}, X, {"gender": ya_all}, k=4, seed=3)
    assert table.drop("gender_method").equals(attribute_prediction_frame("gender", gender.classes, fitted))
