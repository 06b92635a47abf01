"""Model bundles: trained models plus what they were trained with, applicable to any folder.

A bundle is a folder (local path or fsspec/UPath URL)::

    bundle.json                                       the manifest (written last)
    attribute_classifiers.safetensors + .metrics.json the attribute probes' arrays, structure and held-out metrics
    attractiveness_regressor.pt + .json               optional: the regressor's tensors (weights_only) and metrics
    domain.safetensors + domain.json                  optional: training embeddings (float16) + out-of-domain threshold

A bundle is data, never code: every file is arrays (safetensors, or torch tensors
read with ``weights_only=True``) or JSON, checked for names, dtypes, shapes,
finite values and size before a model is built from it; a format-1 (pickle) bundle is
refused unread (``PickleFormatError``). Every payload goes through the model store
(:mod:`facestats_core.models.store`: atomic, sha256 recorded next to it, checked
before parsing: corruption, not tampering, since the hashes travel with the files). The
manifest records each component's sha256 too, so a component copied in from
another bundle is refused. It also records the CLIP id, weights revision and
embedding dimension, the face mode, the preprocessing/chip version, the label
sets with their counts, the creation time and the FaceStats version:
:func:`check_compatible` refuses a bundle whose training conditions differ
from the run's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from facestats_core.attractiveness.domain import DomainReference
from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.attractiveness.model_file import load_regressor, save_regressor
from facestats_core.io.atomic import atomic_write_json
from facestats_core.io.layout import to_upath
from facestats_core.models.array_file import (
    ArrayFileError,
    ArraySpec,
    GroupSchema,
    check_dims,
    max_payload_bytes,
    read_arrays,
    write_arrays,
)
from facestats_core.models.classifier_file import WEIGHTS_SUFFIX as CLASSIFIERS_SUFFIX
from facestats_core.models.classifier_file import load_classifiers, save_classifiers
from facestats_core.models.classifiers import TrainedClassifier
from facestats_core.models.store import (
    ModelIntegrityError,
    ModelNotFoundError,
    PickleFormatError,
    load_model,
    MAX_METADATA_BYTES,
    model_paths,
    read_limited,
    save_model,
)

BUNDLE_FORMAT = 2
PICKLE_FORMATS = (1,)
"""Manifest formats whose probes were pickles: refused unread."""
MANIFEST = "bundle.json"
CLASSIFIERS = "attribute_classifiers"
REGRESSOR = "attractiveness_regressor"
DOMAIN = "domain"
_SHA_KEYS = {CLASSIFIERS: "sha256", REGRESSOR: "weights_sha256", DOMAIN: "sha256"}
_METADATA_SUFFIX = {CLASSIFIERS: ".metrics.json", REGRESSOR: ".json", DOMAIN: ".json"}
DOMAIN_SUFFIX = ".safetensors"
DOMAIN_ARRAYS = (ArraySpec("embeddings", ("rows", "features"), ("float16",)),)
"""The domain reference's one array: the training embeddings, float16."""
RECREATE = "re-create it with `facestats update` (FACESTATS_MODELS unset) where it was trained"


class BundleMismatchError(ValueError):
    """The bundle was trained under other conditions (CLIP, dimension, face mode, chip version) than this run."""


@dataclass(frozen=True)
class TrainedWith:
    """What a bundle's models were trained with; compared with the run by :func:`check_compatible`."""

    clip_id: str
    clip_revision: str
    embedding_dim: int
    face_mode: str
    chip_version: str
    label_sets: dict[str, Any] = field(default_factory=dict)
    """Label set name → description, e.g. ``{"fairface": {"rows": 86744, "counts": {"gender": {...}}}}``."""


@dataclass(frozen=True, eq=False)
class Bundle:
    """A loaded bundle: its folder, manifest and models (``regressor``/``domain`` may be None)."""

    path: Any
    manifest: dict[str, Any]
    classifiers: dict[str, TrainedClassifier]
    regressor: AttractivenessRegressor | None = None
    domain: DomainReference | None = None

    @property
    def trained_with(self) -> TrainedWith:
        return _trained_with(self.manifest, self.path)


def _facestats_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - only when writing

    try:
        return version("facestats")
    except PackageNotFoundError:
        return "unknown"


def _domain_bytes(domain: DomainReference) -> bytes:
    return write_arrays({DOMAIN: {"embeddings": np.asarray(domain.embeddings, dtype=np.float16)}})


def _metrics_summary(
    classifiers: Mapping[str, TrainedClassifier], regressor: AttractivenessRegressor | None
) -> dict[str, Any]:
    keys = ("accuracy", "balanced_accuracy", "majority_baseline_accuracy", "n_train", "n_val")
    summary: dict[str, Any] = {
        attr: {key: clf.metrics.get(key) for key in keys} for attr, clf in classifiers.items()
    }
    if regressor is not None and regressor.evaluation is not None:
        metrics = regressor.evaluation.held_out
        summary["attractiveness"] = {
            "pearson_r": metrics.mlp.pearson_r, "mae": metrics.mlp.mae, "rmse": metrics.mlp.rmse,
            "ridge_rmse": metrics.ridge.rmse, "n_train": metrics.n_train, "n_test": metrics.n_test,
        }
    return summary


def write_bundle(
    path: Any,
    trained_with: TrainedWith,
    classifiers: Mapping[str, TrainedClassifier],
    regressor: AttractivenessRegressor | None = None,
    domain: DomainReference | None = None,
) -> dict[str, Any]:
    """Write the models through the model store, then ``bundle.json``; returns the manifest."""
    if not classifiers:
        raise ValueError("a bundle needs at least one attribute classifier")
    root = to_upath(path)
    components: dict[str, Any] = {}
    stored = save_classifiers(classifiers, root, CLASSIFIERS)
    components[CLASSIFIERS] = {"sha256": stored.sha256, "attributes": list(classifiers)}
    if regressor is not None:
        stored = save_regressor(regressor, root, REGRESSOR)
        components[REGRESSOR] = {"sha256": stored.sha256}
    if domain is not None:
        rows, features = np.shape(domain.embeddings)
        record = {"threshold": domain.threshold, "quantile": domain.quantile, "rows": rows, "features": features}
        stored = save_model(root, DOMAIN, _domain_bytes(domain), record, DOMAIN_SUFFIX, ".json", kind="domain reference")
        components[DOMAIN] = {"sha256": stored.sha256, **record}
    manifest = {
        "format": BUNDLE_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "facestats_version": _facestats_version(),
        "clip": {
            "id": trained_with.clip_id,
            "revision": trained_with.clip_revision,
            "embedding_dim": int(trained_with.embedding_dim),
        },
        "face_mode": trained_with.face_mode,
        "chip_version": trained_with.chip_version,
        "label_sets": trained_with.label_sets,
        "components": components,
        "metrics": _metrics_summary(classifiers, regressor),
    }
    atomic_write_json(root / MANIFEST, manifest)
    return json.loads(json.dumps(manifest, default=str))


def read_manifest(path: Any) -> dict[str, Any]:
    """``bundle.json`` as a dict; ``ModelNotFoundError`` when absent, ``ModelIntegrityError`` when malformed."""
    file = to_upath(path) / MANIFEST
    try:
        raw = read_limited(file, "bundle manifest", MAX_METADATA_BYTES)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"not a model bundle: {file} does not exist") from exc
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"malformed bundle manifest {file}: {exc}") from exc
    if isinstance(manifest, dict) and manifest.get("format") in PICKLE_FORMATS:
        raise PickleFormatError(
            f"{file}: a format-{manifest['format']} bundle holds pickles, which are never loaded "
            f"(a pickle can run code): {RECREATE}"
        )
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ModelIntegrityError(f"{file} is not a format-{BUNDLE_FORMAT} bundle manifest")
    _trained_with(manifest, path)
    components = manifest.get("components")
    if not isinstance(components, dict) or CLASSIFIERS not in components:
        raise ModelIntegrityError(f"bundle manifest {file} lists no {CLASSIFIERS}")
    return manifest


def _trained_with(manifest: Mapping[str, Any], path: Any) -> TrainedWith:
    try:
        clip = manifest["clip"]
        return TrainedWith(
            clip_id=str(clip["id"]),
            clip_revision=str(clip["revision"]),
            embedding_dim=int(clip["embedding_dim"]),
            face_mode=str(manifest["face_mode"]),
            chip_version=str(manifest["chip_version"]),
            label_sets=dict(manifest.get("label_sets") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelIntegrityError(f"bundle manifest in {path} lacks training conditions ({exc!r})") from exc


def _check_component(root: Any, name: str, manifest: Mapping[str, Any]) -> None:
    """The component's metadata must record the sha256 the manifest does (else it is from another bundle)."""
    expected = manifest["components"][name].get("sha256")
    metadata_file = root / f"{name}{_METADATA_SUFFIX[name]}"
    try:
        recorded = json.loads(read_limited(metadata_file, name, MAX_METADATA_BYTES).decode("utf-8")).get(_SHA_KEYS[name])
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"bundle {root} lists {name} but {metadata_file} is missing") from exc
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise ModelIntegrityError(f"malformed model metadata {metadata_file}: {exc}") from exc
    if recorded != expected:
        raise ModelIntegrityError(
            f"{name} in bundle {root} does not match its manifest (sha256 {recorded} vs {expected}): "
            "a component was replaced; write the bundle again"
        )


def _check_probe_dimension(root: Any, classifiers: Mapping[str, TrainedClassifier], dim: int) -> None:
    for attr, clf in classifiers.items():
        features = getattr(clf.scaler, "n_features_in_", dim)
        if features != dim:
            raise ArrayFileError(
                f"{root / (CLASSIFIERS + CLASSIFIERS_SUFFIX)}: probe {attr} takes {features}-d embeddings, "
                f"the bundle declares {dim}"
            )


def _domain_schema(metadata: dict[str, Any], where: str) -> dict[str, GroupSchema]:
    dims = check_dims({"rows": metadata.get("rows"), "features": metadata.get("features")}, where)
    return {DOMAIN: GroupSchema(DOMAIN_ARRAYS, dims)}


def _load_domain(root: Any, embedding_dim: int) -> DomainReference:
    """The domain reference, its embeddings checked (float16, declared rows × the bundle's dimension, finite)."""
    paths = model_paths(root, DOMAIN, DOMAIN_SUFFIX, ".json", kind="domain reference")
    where = str(paths.metadata)
    payload, metadata = load_model(
        root, DOMAIN, DOMAIN_SUFFIX, ".json", kind="domain reference",
        max_bytes=lambda record: max_payload_bytes(_domain_schema(record, where)),
    )
    if metadata.get("features") != embedding_dim:
        raise ArrayFileError(f"{where}: features {metadata.get('features')!r}, the bundle's dimension is {embedding_dim}")
    threshold, quantile = metadata.get("threshold"), metadata.get("quantile")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (threshold, quantile)) \
            or not 0.0 <= threshold <= 2.0 or not 0.0 < quantile <= 1.0:
        raise ArrayFileError(f"{where}: threshold must be in [0, 2] and quantile in (0, 1]")
    embeddings = read_arrays(payload, _domain_schema(metadata, where), str(paths.weights))[DOMAIN]["embeddings"]
    if len(embeddings) < 2:
        raise ArrayFileError(f"{paths.weights}: a domain reference needs at least 2 embeddings")
    return DomainReference(embeddings.astype(np.float32), float(threshold), float(quantile))


def read_bundle(path: Any) -> Bundle:
    """Load a bundle written by :func:`write_bundle`, every payload sha256-checked.

    Raises ``ModelNotFoundError`` (missing manifest or component), ``PickleFormatError`` (a
    bundle of the old pickle format, never unpickled), ``ArrayFileError`` (a component's arrays
    or structure are not what they must be) and ``ModelIntegrityError``, their base (malformed
    manifest, checksum mismatch, component from another bundle). Every message is one line
    naming the file; nothing is returned unless every component loaded.
    """
    root = to_upath(path)
    manifest = read_manifest(root)
    components = manifest["components"]
    _check_component(root, CLASSIFIERS, manifest)
    classifiers = load_classifiers(root, CLASSIFIERS)
    _check_probe_dimension(root, classifiers, _trained_with(manifest, root).embedding_dim)
    regressor = None
    if REGRESSOR in components:
        _check_component(root, REGRESSOR, manifest)
        regressor = load_regressor(root, REGRESSOR)
    domain = None
    if DOMAIN in components:
        _check_component(root, DOMAIN, manifest)
        domain = _load_domain(root, _trained_with(manifest, root).embedding_dim)
    return Bundle(root, manifest, classifiers, regressor, domain)


def check_compatible(
    bundle: Bundle, clip_id: str, revision: str, dim: int, face_mode: str | None, chip_version: str
) -> None:
    """Raise :class:`BundleMismatchError` listing every difference between the bundle's training and this run.

    Weights are compared by revision when both are known (the same weights under
    another name or folder are fine), else by CLIP id. ``face_mode=None`` skips the face-mode
    comparison: pre-cropped reference faces (``whole``) and faces detected in photos give the
    same chips when the chip version (margin, sizes) is the same, which is compared.
    """
    trained = bundle.trained_with
    problems: list[str] = []
    known = "unknown" not in (trained.clip_revision, revision)
    if (known and trained.clip_revision != revision) or (not known and trained.clip_id != clip_id):
        problems.append(
            f"bundle trained with CLIP {trained.clip_id} rev {trained.clip_revision}; "
            f"this run uses {clip_id} rev {revision}"
        )
    if trained.embedding_dim != int(dim):
        problems.append(f"embedding dimension {trained.embedding_dim} in the bundle, {dim} in this run")
    if face_mode is not None and trained.face_mode != face_mode:
        problems.append(f"face mode {trained.face_mode!r} in the bundle, {face_mode!r} in this run")
    if trained.chip_version != chip_version:
        problems.append(f"chip/preprocessing version {trained.chip_version!r} in the bundle, {chip_version!r} here")
    if problems:
        raise BundleMismatchError(
            f"model bundle {bundle.path} does not fit this run: " + "; ".join(problems)
            + " — retrain or point FACESTATS_MODELS elsewhere"
        )


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-" if value is None else str(value)


def describe_bundle(bundle: Bundle) -> str:
    """A readable text block: training conditions, label sets, models and their held-out metrics."""
    m = bundle.manifest
    trained = bundle.trained_with
    lines = [
        f"model bundle {bundle.path}",
        f"  created {m.get('created', '-')} by FaceStats {m.get('facestats_version', '-')}",
        f"  CLIP {trained.clip_id} (revision {trained.clip_revision}, {trained.embedding_dim}-d embeddings)",
        f"  face mode {trained.face_mode}, chip version {trained.chip_version}",
        "  label sets:" if trained.label_sets else "  label sets: none recorded",
    ]
    for name, info in trained.label_sets.items():
        lines.append(f"    {name}: {json.dumps(info, sort_keys=True, default=str)}")
    lines.append("  attribute probes (held-out):")
    for attr, clf in bundle.classifiers.items():
        metrics = clf.metrics
        lines.append(
            f"    {attr:<10} accuracy {_fmt(metrics.get('accuracy'))}, "
            f"balanced {_fmt(metrics.get('balanced_accuracy'))}, "
            f"majority baseline {_fmt(metrics.get('majority_baseline_accuracy'))} "
            f"(n_train {_fmt(metrics.get('n_train'))}, n_val {_fmt(metrics.get('n_val'))}; "
            f"classes {', '.join(clf.classes)})"
        )
    if bundle.regressor is None or bundle.regressor.evaluation is None:
        lines.append("  attractiveness regressor: none")
    else:
        held_out = bundle.regressor.evaluation.held_out
        mlp = held_out.mlp
        lines.append(
            f"  attractiveness regressor (held-out): pearson r {_fmt(mlp.pearson_r)}, "
            f"MAE {_fmt(mlp.mae)}, RMSE {_fmt(mlp.rmse)} (n_test {_fmt(held_out.n_test)})"
        )
    if bundle.domain is None:
        lines.append("  out-of-domain reference: none")
    else:
        lines.append(
            f"  out-of-domain reference: {len(bundle.domain.embeddings)} training embeddings, threshold "
            f"{bundle.domain.threshold:.4f} (quantile {bundle.domain.quantile:g} of leave-one-out distances)"
        )
    return "\n".join(lines)
