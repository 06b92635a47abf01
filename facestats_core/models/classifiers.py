"""Attribute classifiers (gender / age bin / ethnicity) on CLIP embeddings.

A classifier is a linear probe: standardised embeddings -> multinomial
logistic regression (lbfgs). `C` is chosen by stratified K-fold CV on the
training part only, walking the C grid in ascending order with warm starts so
the whole grid costs little more than a single fit. The shipped model is the
one fitted on the training part, so the held-out metrics describe exactly the
model that is saved.

Artifacts are plain data: the probes' fitted arrays in a `safetensors` file
(`facestats_core.models.array_file`, schema `PROBE_ARRAYS` + `EXTRA_ARRAYS`)
plus a metrics JSON with their structure and the file's sha256, written and
checked by the model store (`facestats_core.models.store`). `load_classifiers`
rebuilds the estimators from checked arrays; it never reads a pickle.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

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
from facestats_core.models.store import PickleFormatError, StoredModel, load_model, model_paths, save_model

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

DEFAULT_C_GRID: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
ARTIFACT_FORMAT = 2
WEIGHTS_SUFFIX = ".safetensors"
LEGACY_SUFFIX = ".joblib"
"""The pickle format of older versions: recognised only to be refused."""
METADATA_SUFFIX = ".metrics.json"
LOGISTIC = "logistic"
CONSTANT = "constant"
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_KIND = "classifier"
_UNKNOWN = "unknown"


class ProbabilisticClassifier(Protocol):
    """What `predict_attributes` needs: the canonical classes and (n, len(classes)) probabilities.

    `TrainedClassifier` (a probe) and `zero_shot.ZeroShotClassifier` (CLIP prompts) both are one.
    """

    @property
    def classes(self) -> tuple[str, ...]: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ConstantClassifier:
    """Fallback 'model' when the training data holds a single class."""

    label_index: int

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((X.shape[0], 1), dtype=np.float64)
        out[:, 0] = 1.0
        return out


@dataclass(frozen=True, eq=False)
class TrainedClassifier:
    """A fitted probe and its held-out metrics.

    `classes` is the full canonical vocabulary (output order);
    `present_classes` the subset seen in training (model column order).
    `arrays`: optional named arrays stored with the probe, e.g. the class-share
    correction's calibration data (`prevalence_calibration.ARRAY_NAMES`).
    """

    classes: tuple[str, ...]
    present_classes: tuple[str, ...]
    scaler: StandardScaler | None
    model: Any
    C: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    """Optional named arrays stored with the probe (`EXTRA_ARRAYS` says which may exist)."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, len(classes)) float32 probabilities in canonical order; absent classes are 0."""
        Xf = _as_matrix(X)
        out = np.zeros((Xf.shape[0], len(self.classes)), dtype=np.float32)
        if Xf.shape[0] == 0:
            return out
        Z = self.scaler.transform(Xf) if self.scaler is not None else Xf
        proba = self.model.predict_proba(Z)
        cols = [self.classes.index(c) for c in self.present_classes]
        out[:, cols] = proba.astype(np.float32)
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted canonical labels (object array of str)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]


# --------------------------------------------------------------------------- helpers


def _as_matrix(X: np.ndarray) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D embedding matrix, got shape {arr.shape}")
    return arr


def _clean_labels(y: Any, classes: tuple[str, ...]) -> np.ndarray:
    """Object array of canonical labels; None for null/NaN/blank/unknown or off-vocabulary."""
    allowed = set(classes)
    out = np.empty(len(y), dtype=object)
    for i, value in enumerate(list(y)):
        out[i] = value if isinstance(value, str) and value in allowed else None
    return out


def _stratify_ok(y: np.ndarray, min_count: int) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return len(counts) > 1 and counts.min() >= min_count


def _holdout_split(
    y: np.ndarray, labelled: np.ndarray, val_mask: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Indices (train, val) among labelled rows and a description of the split."""
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 - heavy, imported when used
    idx = np.flatnonzero(labelled)
    if val_mask is not None:
        vm = np.asarray(val_mask, dtype=bool)
        if vm.shape != labelled.shape:
            raise ValueError(f"val_mask has shape {vm.shape}, expected {labelled.shape}")
        tr, va = idx[~vm[idx]], idx[vm[idx]]
        if len(va) and len(tr):
            return tr, va, "val_mask"
        how = "stratified_20pct (val_mask selected no usable rows)"
    else:
        how = "stratified_20pct"
    if len(idx) < 2:
        raise ValueError(f"need at least 2 labelled rows to train, got {len(idx)}")
    strat = y[idx] if _stratify_ok(y[idx], 2) else None
    n_val = max(1, int(round(0.2 * len(idx))))
    if strat is not None:
        n_val = max(n_val, len(np.unique(strat)))
        if len(idx) - n_val < len(np.unique(strat)):
            strat = None
    tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=strat)
    return np.sort(tr), np.sort(va), how if strat is not None else how.replace("stratified_", "random_")


def _new_lr(C: float, seed: int, max_iter: int) -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - heavy, imported when used
    return LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter, warm_start=True, random_state=seed)


def _select_c(
    X: np.ndarray, y: np.ndarray, c_grid: Sequence[float], folds: int, seed: int, max_iter: int
) -> tuple[float, dict[str, float], int]:
    """Mean CV accuracy per C (warm-started ascending path); ties go to the smaller C."""
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415 - heavy, imported when used
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415 - heavy, imported when used
    grid = sorted(float(c) for c in c_grid)
    if len(grid) == 1:
        return grid[0], {}, 0
    _, counts = np.unique(y, return_counts=True)
    n_splits = int(min(folds, counts.min()))
    if n_splits < 2:
        return grid[len(grid) // 2], {}, 0
    scores = {c: [] for c in grid}
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for tr, te in cv.split(X, y):
        scaler = StandardScaler().fit(X[tr])
        Xtr, Xte = scaler.transform(X[tr]), scaler.transform(X[te])
        lr = _new_lr(grid[0], seed, max_iter)
        for c in grid:
            lr.set_params(C=c)
            lr.fit(Xtr, y[tr])
            scores[c].append(float((lr.predict(Xte) == y[te]).mean()))
    means = {c: float(np.mean(v)) for c, v in scores.items()}
    best = max(grid, key=lambda c: (round(means[c], 12), -c))
    return best, {repr(c): means[c] for c in grid}, n_splits


def _fit_final(
    X: np.ndarray, y: np.ndarray, present: tuple[str, ...], C: float, seed: int, max_iter: int
) -> tuple[StandardScaler | None, Any]:
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415 - heavy, imported when used
    if len(present) == 1:
        return None, ConstantClassifier(0)
    scaler = StandardScaler().fit(X)
    lr = _new_lr(C, seed, max_iter).fit(scaler.transform(X), y)
    if tuple(lr.classes_) != present:  # sklearn sorts classes; keep our order in sync
        raise AssertionError("class order mismatch")  # pragma: no cover
    return scaler, lr


def _converged(model: Any, max_iter: int) -> bool:
    n_iter = getattr(model, "n_iter_", None)
    return True if n_iter is None else bool(np.max(n_iter) < max_iter)


# --------------------------------------------------------------------------- metrics


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...], y_train: np.ndarray
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, majority baseline, per-class P/R/support, confusion matrix."""
    n = len(y_true)
    index = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        cm[index[t], index[p]] += 1
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    diag = np.diag(cm)
    per_class = {
        c: {
            "precision": float(diag[i] / predicted[i]) if predicted[i] else 0.0,
            "recall": float(diag[i] / support[i]) if support[i] else 0.0,
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }
    recalls = [per_class[c]["recall"] for i, c in enumerate(classes) if support[i]]
    values, counts = np.unique(y_train, return_counts=True)
    majority = str(values[np.argmax(counts)]) if len(values) else None
    return {
        "accuracy": float(diag.sum() / n) if n else None,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "majority_class": majority,
        "majority_baseline_accuracy": float(np.mean(y_true == majority)) if n else None,
        "per_class": per_class,
        "confusion_matrix": {"labels": list(classes), "matrix": cm.tolist()},
    }


def per_group_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, groups: Mapping[str, Any], rows: np.ndarray
) -> dict[str, dict[str, dict[str, Any]]]:
    """Accuracy and n per value of each grouping, on `rows` (null group -> `"unknown"`)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    correct = np.asarray(y_true == y_pred, dtype=bool)
    for name, values in groups.items():
        arr = np.asarray(list(values), dtype=object)
        if arr.ndim != 1 or (len(arr) and rows.size and len(arr) <= rows.max()):
            raise ValueError(f"group {name!r} is not aligned with X (length {len(arr)})")
        picked = arr[rows]
        keys = np.array([v if isinstance(v, str) and v else _UNKNOWN for v in picked], dtype=object)
        result: dict[str, dict[str, Any]] = {}
        for key in sorted(set(keys.tolist())):
            mask = keys == key
            result[key] = {"accuracy": float(correct[mask].mean()), "n": int(mask.sum())}
        out[name] = result
    return out


# --------------------------------------------------------------------------- training


def train_attribute_classifier(
    X: np.ndarray,
    y: Any,
    classes: tuple[str, ...],
    *,
    groups: Mapping[str, Any] | None = None,
    val_mask: np.ndarray | None = None,
    seed: int = 0,
    cv_folds: int = 5,
    c_grid: tuple[float, ...] = DEFAULT_C_GRID,
    max_iter: int = 300,
) -> TrainedClassifier:
    """Fit a multinomial logistic-regression probe for one attribute.

    Rows whose label is null (or not in `classes`, e.g. `"unknown"`) are
    excluded. Held-out rows are `val_mask` when given (e.g. FairFace's val
    split; falls back to a split when it selects no labelled rows) else a
    stratified 20 % split drawn with `seed`. `C` is picked by stratified
    `cv_folds`-fold CV (accuracy; fewer folds if a class is rarer than
    that) on the training part. Classes missing from training are never
    predicted and get probability 0. `groups` maps a grouping name to an
    array aligned with `X`; the metrics then hold accuracy per group value.
    """
    from sklearn.exceptions import ConvergenceWarning  # noqa: PLC0415 - heavy, imported when used
    if _UNKNOWN in classes:
        raise ValueError("'unknown' must not be a class; leave unknown labels null")
    Xf = _as_matrix(X)
    labels = _clean_labels(y, classes)
    if len(labels) != Xf.shape[0]:
        raise ValueError(f"X has {Xf.shape[0]} rows but y has {len(labels)}")
    for gname, gvalues in (groups or {}).items():
        if len(gvalues) != Xf.shape[0]:
            raise ValueError(f"group {gname!r} has {len(gvalues)} values, X has {Xf.shape[0]} rows")
    labelled = np.array([v is not None for v in labels], dtype=bool)
    tr, va, how = _holdout_split(labels, labelled, val_mask, seed)
    y_tr = labels[tr].astype(str)
    y_va = labels[va].astype(str)
    present = tuple(sorted(set(y_tr.tolist())))
    # Multi-threaded BLAS on these small, thin matrices is ~20x slower than one
    # thread (measured: 2.75 s vs 0.12 s per fit on 600 x 256), so fits run single-threaded.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        if len(present) > 1:
            C, cv_scores, n_splits = _select_c(Xf[tr], y_tr, c_grid, cv_folds, seed, max_iter)
        else:
            C, cv_scores, n_splits = None, {}, 0
        scaler, model = _fit_final(Xf[tr], y_tr, present, C or 1.0, seed, max_iter)
    clf = TrainedClassifier(classes=tuple(classes), present_classes=present, scaler=scaler, model=model, C=C)
    y_hat = clf.predict(Xf[va]).astype(str) if len(va) else np.empty(0, dtype=str)
    metrics: dict[str, Any] = {
        "n_train": int(len(tr)),
        "n_val": int(len(va)),
        "n_unlabelled_excluded": int((~labelled).sum()),
        "heldout": how,
        "C": C,
        "c_grid": [float(c) for c in c_grid],
        "cv_folds": n_splits,
        "cv_accuracy": cv_scores,
        "c_at_grid_edge": bool(C is not None and len(c_grid) > 1 and C in (min(c_grid), max(c_grid))),
        "converged": _converged(model, max_iter),
        "classes": list(classes),
        "absent_classes": [c for c in classes if c not in present],
        **classification_metrics(y_va, y_hat, tuple(classes), y_tr),
        "per_group": per_group_accuracy(y_va, y_hat, groups, va) if groups else {},
    }
    return replace(clf, metrics=metrics)


def predict_attributes(models: Mapping[str, ProbabilisticClassifier], X: np.ndarray) -> pl.DataFrame:
    """Per attribute: `<attr>_pred` (str), `<attr>_prob` (float32), `<attr>_probs` (Array)."""
    Xf = _as_matrix(X)
    columns: list[pl.Series] = []
    for attr, clf in models.items():
        proba = clf.predict_proba(Xf)
        best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=np.int64)
        names = np.asarray(clf.classes, dtype=object)[best]
        columns.append(pl.Series(f"{attr}_pred", names.tolist(), dtype=pl.String))
        columns.append(pl.Series(f"{attr}_prob", proba[np.arange(len(best)), best], dtype=pl.Float32))
        columns.append(
            pl.Series(f"{attr}_probs", proba, dtype=pl.Array(pl.Float32, len(clf.classes)))
        )
    return pl.DataFrame(columns)


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
