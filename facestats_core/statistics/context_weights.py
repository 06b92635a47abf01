"""Reweighting a probe's calibration faces to a folder's mix of the other attributes."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.prevalence_calibration import CalibrationData


def context_weights(calibration: CalibrationData, attribute: str,
                    shares: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Weights that give ``attribute``'s calibration faces the folder's mix of the *other* attributes.

    For every other attribute with estimated folder ``shares`` and labels in the calibration context,
    a face of its class ``c`` gets the factor ``shares[c] / (share of c among the calibration faces)``
    (1 where unlabelled); the factors multiply (the other attributes taken as independent). None
    without a context. Why: a class can look different to the probe per value of another attribute
    (age cues per ethnicity), so when the folder's ethnicity mix differs from the reference set's,
    the age calibration must be learnt on faces with the folder's ethnicity mix (docs/statistics.md).
    """
    if calibration.context is None:
        return None
    weights = np.ones(len(calibration.labels))
    for j, other in enumerate(ATTRIBUTES):
        if other == attribute or other not in shares:
            continue
        codes = calibration.context[:, j]
        known = codes >= 0
        if not known.any():
            continue
        ref = np.bincount(codes[known], minlength=len(shares[other])) / known.sum()
        safe = np.where(known, codes, 0)
        factor = np.where(ref[safe] > 0, shares[other][safe] / np.where(ref[safe] > 0, ref[safe], 1.0), 1.0)
        weights *= np.where(known, factor, 1.0)
    return weights
