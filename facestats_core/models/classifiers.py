"""Attribute classifiers (gender / age bin / ethnicity) on CLIP embeddings.

A classifier is a linear probe: standardised embeddings -> multinomial
logistic regression (lbfgs). `C` is chosen by stratified K-fold CV on the
training part only, walking the C grid in ascending order with warm starts so
the whole grid costs little more than a single fit. The shipped model is the
one fitted on the training part, so the held-out metrics describe exactly the
model that is saved.

Saving and loading the probes (plain data, never a pickle) is
`facestats_core.models.classifier_file`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits


if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

DEFAULT_C_GRID: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
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
