"""Statistics over the master table: confidence intervals and misclassification-corrected shares.

* :mod:`~facestats_core.statistics.intervals`: Wilson score intervals for shares,
  percentile-bootstrap intervals for means.
* :mod:`~facestats_core.statistics.prevalence`: class shares corrected for
  classifier error (adjusted classify-and-count) with a bootstrap interval that
  includes the uncertainty of the held-out confusion matrix.
* :mod:`~facestats_core.statistics.face_statistics`: the long table behind the
  ``face_statistics`` asset (:data:`FACE_STATISTICS_SCHEMA`).

See ``docs/statistics.md``.
"""
