"""The attractiveness regressor's files, through the model store.

``<name>.pt``: a plain dict of tensors (the module's state dict plus ``target_mean`` and
``target_std``, and ``cv_predictions``, one float64 per training row, when the regressor was
cross-validated), read with ``torch.load(weights_only=True)`` and checked (exactly the tensors the
config builds, float, finite, no larger than the config allows) before a module is built from it.
``<name>.json``: the config, data hash, evaluation (``metrics``, ``cross_validation``), what it was
trained on and with, and the ``.pt`` sha256 (``weights_sha256``), written and checked by the
model store (:mod:`facestats_core.models.store`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.attractiveness.evaluation import Evaluation
from facestats_core.attractiveness.training import TARGET_KEYS, MLPConfig, build_module
from facestats_core.models.store import (
    MetadataKeys,
    ModelIntegrityError,
    StoredModel,
    load_model,
    model_paths,
    save_model,
)

DEFAULT_NAME = "attractiveness_regressor"
FORMAT_VERSION = 1
WEIGHTS_SUFFIX = ".pt"
METADATA_SUFFIX = ".json"
METADATA_KEYS = MetadataKeys(file="weights_file", sha256="weights_sha256")
_KIND = "regressor"
CV_PREDICTIONS = "cv_predictions"
"""Optional tensor of the `.pt`: ``(n_train + n_val + n_test,)`` out-of-fold predictions."""


def _weights_bytes(model: AttractivenessRegressor) -> bytes:
    import torch

    payload = dict(model.state_dict_)
    payload["target_mean"] = torch.tensor(model.target_mean_, dtype=torch.float64)
    payload["target_std"] = torch.tensor(model.target_std_, dtype=torch.float64)
    if len(model.cv_predictions_):
        payload[CV_PREDICTIONS] = torch.from_numpy(np.ascontiguousarray(model.cv_predictions_, dtype=np.float64))
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _record(model: AttractivenessRegressor, name: str) -> dict[str, Any]:
    """The JSON beside the weights (without the sha256 the store adds)."""
    if model.evaluation is None:
        raise ValueError("an unfitted AttractivenessRegressor cannot be saved")
    held_out = model.evaluation.held_out
    record: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "config": asdict(model.config_),
        "data_hash": model.data_hash_,
        "metrics": held_out.to_dict(),
        "target_mean": model.target_mean_,
        "target_std": model.target_std_,
        "n_train": held_out.n_train,
        "n_val": held_out.n_val,
        "n_test": held_out.n_test,
        "epochs_run": model.epochs_run_,
        "best_epoch": model.best_epoch_,
        "torch_version": model.torch_version_,
    }
    if model.evaluation.cross_validation is not None:
        record["cross_validation"] = model.evaluation.cross_validation.to_dict()
    record.update({key: value for key, value in (("trained_on", model.trained_on),
                                                 ("training_fingerprint", model.fingerprint)) if value})
    return record


def save_regressor(model: AttractivenessRegressor, model_root: Any, name: str = DEFAULT_NAME) -> StoredModel:
    """Write ``<name>.pt`` then ``<name>.json`` atomically through the model store (a trained model,
    or one read from a file or a bundle: the same record either way)."""
    record = _record(model, name)
    return save_model(model_root, name, _weights_bytes(model), record, WEIGHTS_SUFFIX, METADATA_SUFFIX,
                      keys=METADATA_KEYS, kind=_KIND)


MAX_PARAMETERS = 50_000_000
"""A regressor config declaring more parameters than this is refused before anything is built."""
_FILE_ALLOWANCE = 1 << 20
"""Bytes a `.pt` file may take beyond its float64 parameters (zip and pickle framing)."""


def _parameter_count(config: MLPConfig) -> int:
    widths = (config.input_dim, *config.hidden, 1)
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def _config(metadata: Mapping[str, Any], where: str) -> MLPConfig:
    try:
        config = MLPConfig.from_dict(metadata["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelIntegrityError(f"{where}: malformed regressor metadata, bad 'config' ({exc})") from exc
    if _parameter_count(config) > MAX_PARAMETERS:
        raise ModelIntegrityError(f"{where}: the config declares more than {MAX_PARAMETERS} parameters")
    return config


def _training_rows(metadata: Mapping[str, Any]) -> int:
    """Rows the regressor was trained and scored on, as its metadata records them (0 when malformed)."""
    try:
        return max(0, sum(int(metadata[key]) for key in ("n_train", "n_val", "n_test")))
    except (KeyError, TypeError, ValueError):
        return 0


def _checked_tensors(payload: Any, config: MLPConfig, where: str, rows: int) -> dict[str, Any]:
    """The state dict's tensors, every one float, finite and of the shape `config` builds (and the
    optional `cv_predictions`, one per training row)."""
    import torch

    expected = {k: tuple(v.shape) for k, v in build_module(config).state_dict().items()}
    expected.update({key: () for key in TARGET_KEYS})
    if isinstance(payload, dict) and CV_PREDICTIONS in payload:
        expected[CV_PREDICTIONS] = (rows,)
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ModelIntegrityError(f"{where}: not a dict of tensors")
    missing, unexpected = sorted(set(expected) - set(payload)), sorted(set(payload) - set(expected))
    if missing or unexpected:
        raise ModelIntegrityError(f"{where}: missing tensors {missing}, unexpected tensors {unexpected}")
    for key, tensor in payload.items():
        if not tensor.is_floating_point():
            raise ModelIntegrityError(f"{where}: tensor {key} has dtype {tensor.dtype}, expected a float")
        if tuple(tensor.shape) != expected[key]:
            raise ModelIntegrityError(f"{where}: tensor {key} has shape {tuple(tensor.shape)}, the config builds {expected[key]}")
        if not bool(torch.isfinite(tensor).all()):
            raise ModelIntegrityError(f"{where}: tensor {key} holds NaN or infinite values")
    if float(payload["target_std"]) <= 0:
        raise ModelIntegrityError(f"{where}: target_std must be positive")
    return payload


def load_regressor(model_root: Any, name: str = DEFAULT_NAME) -> AttractivenessRegressor:
    """Load a saved regressor with `torch.load(weights_only=True)` once its sha256 checks out.

    The `.pt` may be no larger than its config's parameters and training rows allow, and must hold
    exactly the tensors that config builds (float, finite) plus `target_mean` and `target_std` (and
    optionally `cv_predictions`, one per training row the metadata records).
    Raises `ModelIntegrityError` (a `ValueError`) for an unsafe name or path,
    malformed metadata, a sha256 mismatch or a file that is not such tensors, one line naming
    the file, and `ModelNotFoundError` (also a `FileNotFoundError`) when the `.pt` or `.json` is missing.
    """
    import pickle  # noqa: PLC0415 - for its error class only: nothing here unpickles

    import torch

    paths = model_paths(model_root, name, WEIGHTS_SUFFIX, METADATA_SUFFIX, kind=_KIND)
    blob, metadata = load_model(
        model_root, name, WEIGHTS_SUFFIX, METADATA_SUFFIX, keys=METADATA_KEYS, kind=_KIND,
        max_bytes=lambda record: (8 * (_parameter_count(_config(record, str(paths.metadata))) + _training_rows(record))
                                  + _FILE_ALLOWANCE),
    )
    config = _config(metadata, str(paths.metadata))
    try:
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelIntegrityError(f"{paths.weights}: not a file of tensors (truncated or corrupt: {reason})") from exc
    payload = _checked_tensors(payload, config, str(paths.weights), _training_rows(metadata))
    try:
        evaluation = Evaluation.from_dict(metadata)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelIntegrityError(f"{paths.metadata}: malformed regressor metadata, bad 'metrics' ({exc!r})") from exc
    weights = {k: v for k, v in payload.items() if k not in TARGET_KEYS and k != CV_PREDICTIONS}
    cv_predictions = payload[CV_PREDICTIONS].numpy() if CV_PREDICTIONS in payload else None
    return AttractivenessRegressor.from_weights(
        config, weights, float(payload["target_mean"]), float(payload["target_std"]), evaluation,
        trained_on=str(metadata.get("trained_on", "")), fingerprint=str(metadata.get("training_fingerprint", "")),
        epochs_run=int(metadata.get("epochs_run", 0)), best_epoch=int(metadata.get("best_epoch", 0)),
        data_hash=str(metadata.get("data_hash", "")), torch_version=str(metadata.get("torch_version", "")),
        cv_predictions=cv_predictions,
    )
