"""Statistics over the master table: confidence intervals and misclassification-corrected shares.

* :mod:`~facestats_core.statistics.intervals`: Wilson score intervals for shares,
  percentile-bootstrap intervals for means.
* :mod:`~facestats_core.statistics.quantifiers`: class-share estimators on
  class probabilities (CC, PCC, ACC, PACC, EMQ with and without calibration);
  :mod:`~facestats_core.statistics.share_intervals`: their bootstrap intervals
  over the faces and the calibration data, and the calibration replicates;
  :mod:`~facestats_core.statistics.share_posterior`: the EM estimators' posterior
  intervals (the corrected shares' interval); :mod:`~facestats_core.statistics.simplex`:
  the constrained solve of ACC/PACC.
* :mod:`~facestats_core.statistics.face_statistics`: the long table behind the
  ``face_statistics`` asset (:data:`FACE_STATISTICS_SCHEMA`).

See ``docs/statistics.md``.
"""
