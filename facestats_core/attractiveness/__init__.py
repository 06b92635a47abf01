"""Stages 5-6, attractiveness: the regressor (training, estimator, evaluation, files), its training
data and the out-of-domain reference."""
