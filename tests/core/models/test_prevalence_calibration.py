"""Calibration data for the share estimators: out-of-fold posteriors kept as named arrays on the probe."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from facestats_core.models.classifier_file import load_classifiers, save_classifiers
from facestats_core.models.classifiers import train_attribute_classifier
from facestats_core.models.prevalence_calibration import (
    ARRAY_NAMES,
    CalibrationData,
    calibration_data,
    calibration_of,
)
from tests.core.synthetic import class_blobs

CLASSES = ("a", "b", "c")


def test_out_of_fold_posteriors_of_every_labelled_row_and_the_round_trip(tmp_path) -> None:
    X, y = class_blobs(90, CLASSES, dim=8, seed=1)
    y = np.asarray(y, dtype=object)
    y[:5] = None  # unlabelled rows are left out
    probe = train_attribute_classifier(X, y, CLASSES, seed=0, cv_folds=2)
    data = calibration_data(X, y, CLASSES, C=probe.C, k=3)
    assert data.posteriors.shape == (85, 3) and data.labels.shape == (85,)
    np.testing.assert_allclose(data.posteriors.sum(axis=1), 1.0, atol=1e-5)
    assert list(data.labels) == [CLASSES.index(v) for v in y[5:]]
    assert (data.posteriors.argmax(axis=1) == data.labels).mean() > 0.6  # blobs are separable
    assert data.context is None
    other = np.where(np.arange(90) % 2 == 0, "male", "female").astype(object)
    with_context = calibration_data(X, y, CLASSES, C=probe.C, k=3, context={"gender": other})
    from facestats_core.labels.vocab import ATTRIBUTES
    gender = list(ATTRIBUTES).index("gender")
    assert with_context.context.shape == (85, len(ATTRIBUTES))
    assert with_context.context[:, gender].tolist() == [0 if i % 2 == 0 else 1 for i in range(5, 90)]
    assert (np.delete(with_context.context, gender, axis=1) == -1).all()  # attributes not given: unknown
    assert calibration_of(probe) is None
    with_data = replace(probe, arrays=data.arrays())
    assert set(with_data.arrays) == set(ARRAY_NAMES)
    save_classifiers({"x": with_data}, tmp_path)
    loaded = calibration_of(load_classifiers(tmp_path)["x"])
    assert loaded is not None and loaded.classes == CLASSES
    np.testing.assert_array_equal(loaded.posteriors, data.posteriors)
    np.testing.assert_array_equal(loaded.labels, data.labels)


def test_malformed_calibration_arrays_are_refused() -> None:
    P = np.full((4, 3), 1 / 3, dtype=np.float32)
    with pytest.raises(ValueError, match="class indices"):
        CalibrationData(CLASSES, P, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="shape"):
        CalibrationData(CLASSES, P[:, :2], np.array([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="missing"):
        CalibrationData.from_arrays(CLASSES, {"calibration_posteriors": P})
