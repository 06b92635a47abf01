"""The attribute probes on disk: plain data, never a pickle.

The probes' fitted arrays go in a `safetensors` file (`facestats_core.models.array_file`, schema
`PROBE_ARRAYS` + `EXTRA_ARRAYS`) plus a metrics JSON with their structure and the file's sha256,
written and checked by the model store (`facestats_core.models.store`). `load_classifiers` rebuilds
the estimators (`facestats_core.models.classifiers`) from checked arrays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from facestats_core.models.array_file import (
    INDEX_DTYPES,
    ArrayFileError,
    ArraySpec,
    GroupSchema,
    check_dims,
    infer_dims,
    max_payload_bytes,
    read_arrays,
    write_arrays,
)
from facestats_core.models.classifiers import ConstantClassifier, TrainedClassifier
from facestats_core.models.store import PickleFormatError, StoredModel, load_model, model_paths, save_model

ARTIFACT_FORMAT = 2
WEIGHTS_SUFFIX = ".safetensors"
LEGACY_SUFFIX = ".joblib"
"""The pickle format of older versions: recognised only to be refused."""
METADATA_SUFFIX = ".metrics.json"
LOGISTIC = "logistic"
CONSTANT = "constant"
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_KIND = "classifier"


# --------------------------------------------------------------------------- persistence
#
# `<name>.safetensors`: per attribute, the arrays of `PROBE_ARRAYS` (logistic probes) and any of
# `EXTRA_ARRAYS`, named `<attribute>.<array>`. `<name>.metrics.json`: `format`, `attributes`,
# `probes` (per attribute: `kind`, `classes`, `present_classes`, `C`, `dims`), `metrics`, and the
# store's `file` and `sha256`. No pickle is ever read: the estimators are rebuilt from the arrays.

PROBE_ARRAYS: tuple[ArraySpec, ...] = (
    ArraySpec("scaler_mean", ("features",)),
    ArraySpec("scaler_scale", ("features",)),
    ArraySpec("scaler_var", ("features",)),
    ArraySpec("coef", ("coef_rows", "features")),
    ArraySpec("intercept", ("coef_rows",)),
)
"""A logistic probe's fitted parameters: `StandardScaler` (`mean_`, `scale_`, `var_`) and
`LogisticRegression` (`coef_`, `intercept_`; one row for two classes, else one per class)."""

EXTRA_ARRAYS: tuple[ArraySpec, ...] = (
    ArraySpec("calibration_posteriors", ("calibration_rows", "classes"), required=False),
    ArraySpec("calibration_labels", ("calibration_rows",), INDEX_DTYPES, required=False, index_of="classes"),
    ArraySpec("calibration_context", ("calibration_rows", "context_attributes"), INDEX_DTYPES, required=False),
)
"""Optional arrays that travel with any probe in `TrainedClassifier.arrays`: the share estimators'
calibration data (`facestats_core.models.prevalence_calibration`: posteriors, true class indices and
each calibration face's class index of every attribute, -1 where unlabelled). A new one is one more
line here."""

_KINDS = {LOGISTIC: PROBE_ARRAYS + EXTRA_ARRAYS, CONSTANT: EXTRA_ARRAYS}
_DERIVED_DIMS = ("classes", "present", "coef_rows")
MAX_CLASSES = 1000


def _derived_dims(classes: Sequence[str], present: Sequence[str]) -> dict[str, int]:
    return {"classes": len(classes), "present": len(present), "coef_rows": 1 if len(present) == 2 else len(present)}


def _probe_record(clf: TrainedClassifier) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The probe's JSON record and its arrays, checked against the schema."""
    arrays = {name: np.asarray(value) for name, value in clf.arrays.items()}
    if isinstance(clf.model, ConstantClassifier):
        kind, fitted = CONSTANT, {}
    else:
        scaler, model = clf.scaler, clf.model
        kind = LOGISTIC
        fitted = {"scaler_mean": scaler.mean_, "scaler_scale": scaler.scale_, "scaler_var": scaler.var_,
                  "coef": model.coef_, "intercept": model.intercept_}
    clash = sorted(set(arrays) & set(fitted))
    if clash:
        raise ValueError(f"extra arrays {clash} clash with the probe's own")
    arrays = {**fitted, **arrays}
    known = _derived_dims(clf.classes, clf.present_classes)
    dims = infer_dims(_KINDS[kind], arrays, known)
    record = {"kind": kind, "classes": list(clf.classes), "present_classes": list(clf.present_classes),
              "C": clf.C, "dims": dims}
    return record, arrays


def save_classifiers(
    models: Mapping[str, TrainedClassifier], model_root: Any, name: str = "attribute_classifiers"
) -> StoredModel:
    """Write `<name>.safetensors` (the probes' arrays) and `<name>.metrics.json` atomically through the store.

    The JSON holds `format`, `attributes`, each probe's structure (`probes`), each model's
    `metrics` by attribute, and the store's `file`, `sha256` and `bytes`. Raises `ValueError`
    for an attribute name that is not a plain identifier or arrays the schema does not allow.
    """
    records, groups = {}, {}
    for attr, clf in models.items():
        if not _ATTRIBUTE_NAME.fullmatch(attr):
            raise ValueError(f"attribute name {attr!r}: use lower-case letters, digits and '_'")
        records[attr], groups[attr] = _probe_record(clf)
    data = write_arrays(groups)
    record = {
        "format": ARTIFACT_FORMAT,
        "bytes": len(data),
        "attributes": list(models),
        "probes": records,
        "metrics": {attr: model.metrics for attr, model in models.items()},
    }
    return save_model(model_root, name, data, record, WEIGHTS_SUFFIX, METADATA_SUFFIX, kind=_KIND)


def _str_list(value: Any, what: str, where: str) -> tuple[str, ...]:
    if (not isinstance(value, list) or not 1 <= len(value) <= MAX_CLASSES
            or not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value)):
        raise ArrayFileError(f"{where}: {what} must be 1 to {MAX_CLASSES} distinct non-empty strings")
    return tuple(value)


def _probe_schema(attr: str, record: Any, where: str) -> tuple[dict[str, Any], GroupSchema]:
    """The validated JSON record of one probe and the schema its arrays must meet."""
    where = f"{where}, probe {attr}"
    if not isinstance(record, dict) or record.get("kind") not in _KINDS:
        raise ArrayFileError(f"{where}: 'kind' must be one of {sorted(_KINDS)}")
    classes = _str_list(record.get("classes"), "classes", where)
    present = _str_list(record.get("present_classes"), "present_classes", where)
    if not set(present) <= set(classes) or list(present) != sorted(present):
        raise ArrayFileError(f"{where}: present_classes must be sorted and among the classes")
    kind = record["kind"]
    if (kind == LOGISTIC) != (len(present) > 1):
        raise ArrayFileError(f"{where}: a {kind} probe with {len(present)} present classes")
    C = record.get("C")
    if C is not None and (isinstance(C, bool) or not isinstance(C, (int, float)) or not 0 < C < math.inf):
        raise ArrayFileError(f"{where}: C must be a positive finite number or null")
    dims = record.get("dims")
    if not isinstance(dims, dict) or any(d in _DERIVED_DIMS for d in dims):
        raise ArrayFileError(f"{where}: 'dims' must be an object without {', '.join(_DERIVED_DIMS)}")
    dims = {**check_dims(dims, where), **_derived_dims(classes, present)}
    parsed = {"kind": kind, "classes": classes, "present": present, "C": None if C is None else float(C)}
    return parsed, GroupSchema(_KINDS[kind], dims)


def _schemas(metadata: dict[str, Any], where: str) -> tuple[dict[str, dict[str, Any]], dict[str, GroupSchema]]:
    """Each probe's parsed record and array schema from the metadata JSON; `ArrayFileError` when malformed."""
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise ArrayFileError(f"{where}: format {metadata.get('format')!r}, expected {ARTIFACT_FORMAT}")
    attributes, probes = metadata.get("attributes"), metadata.get("probes")
    if (not isinstance(attributes, list) or not isinstance(probes, dict)
            or sorted(probes) != sorted(attributes) or len(set(attributes)) != len(attributes)
            or not all(isinstance(a, str) and _ATTRIBUTE_NAME.fullmatch(a) for a in attributes)):
        raise ArrayFileError(f"{where}: holds no attribute classifiers (attributes and probes must name the same probes)")
    parsed, schemas = {}, {}
    for attr in attributes:
        parsed[attr], schemas[attr] = _probe_schema(attr, probes[attr], where)
    return parsed, schemas


def _rebuild(parsed: dict[str, Any], arrays: dict[str, np.ndarray], metrics: Any) -> TrainedClassifier:
    """The probe as `train_attribute_classifier` returned it: fitted estimators set from their arrays."""
    extras = {name: arrays[name] for name in arrays if name not in {s.name for s in PROBE_ARRAYS}}
    if parsed["kind"] == CONSTANT:
        scaler, model = None, ConstantClassifier(0)
    else:
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - heavy, imported when used
        from sklearn.preprocessing import StandardScaler  # noqa: PLC0415 - heavy, imported when used
        scaler = StandardScaler()
        scaler.mean_, scaler.scale_, scaler.var_ = arrays["scaler_mean"], arrays["scaler_scale"], arrays["scaler_var"]
        scaler.n_features_in_ = arrays["scaler_mean"].shape[0]
        model = LogisticRegression(C=parsed["C"] or 1.0, solver="lbfgs")
        model.classes_ = np.asarray(parsed["present"])
        model.coef_, model.intercept_ = arrays["coef"], arrays["intercept"]
        model.n_features_in_ = arrays["coef"].shape[1]
    return TrainedClassifier(
        classes=parsed["classes"], present_classes=parsed["present"], scaler=scaler, model=model,
        C=parsed["C"], metrics=dict(metrics) if isinstance(metrics, dict) else {}, arrays=extras,
    )


def _refuse_pickle_format(model_root: Any, name: str) -> None:
    """`PickleFormatError` when `name` is stored in the pickle format of older FaceStats (never read)."""
    legacy = model_paths(model_root, name, LEGACY_SUFFIX, METADATA_SUFFIX, kind=_KIND)
    current = model_paths(model_root, name, WEIGHTS_SUFFIX, METADATA_SUFFIX, kind=_KIND).weights
    if legacy.weights.exists() and not current.exists():
        raise PickleFormatError(
            f"{legacy.weights} is a pickle-format model of an older FaceStats, which is never loaded "
            f"(a pickle can run code): re-create it with `facestats update`"
        )


def load_classifiers(model_root: Any, name: str = "attribute_classifiers") -> dict[str, TrainedClassifier]:
    """Load classifiers saved by `save_classifiers`: plain arrays, checked, then rebuilt into estimators.

    Nothing is built until every check passed: sha256 (corruption), the metadata's structure,
    the payload's size against its declared dimensions, and every array's name, dtype, shape
    and finiteness. Raises `PickleFormatError` for the old pickle format (never unpickled),
    `ArrayFileError` for a malformed file and `ModelIntegrityError` (their base) for a path
    outside `model_root` or a sha256 mismatch, each one line naming the file; and
    `ModelNotFoundError` (also a `FileNotFoundError`) if either file is missing.
    """
    _refuse_pickle_format(model_root, name)
    paths = model_paths(model_root, name, WEIGHTS_SUFFIX, METADATA_SUFFIX, kind=_KIND)
    data, metadata = load_model(
        model_root, name, WEIGHTS_SUFFIX, METADATA_SUFFIX, kind=_KIND,
        max_bytes=lambda record: max_payload_bytes(_schemas(record, str(paths.metadata))[1]),
    )
    parsed, schemas = _schemas(metadata, str(paths.metadata))
    arrays = read_arrays(data, schemas, str(paths.weights))
    metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), dict) else {}
    return {attr: _rebuild(parsed[attr], arrays[attr], metrics.get(attr)) for attr in parsed}
