"""Small real models saved through the model store, as the model assets save them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.attractiveness.model_file import save_regressor
from facestats_core.attractiveness.training import MLPConfig
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.classifier_file import save_classifiers
from facestats_core.models.classifiers import train_attribute_classifier
from facestats_core.models.prevalence_calibration import calibration_data
from tests.core.synthetic import class_blobs, planted_ratings


def save_small_models(model_root: Any) -> None:
    """Attribute probes (held-out metrics, out-of-fold calibration data) and an attractiveness regressor."""
    models = {}
    for index, (attr, classes) in enumerate(ATTRIBUTES.items()):
        X, y = class_blobs(120, classes, dim=16, seed=index)
        model = train_attribute_classifier(X, y, classes, seed=0, cv_folds=2)
        models[attr] = replace(model, arrays=calibration_data(X, y, classes, C=model.C, k=2).arrays())
    save_classifiers(models, model_root)
    X, ratings = planted_ratings(80, 16)
    save_regressor(AttractivenessRegressor(MLPConfig(input_dim=16, hidden=(8,), max_epochs=5)).fit(X, ratings),
                   model_root)
