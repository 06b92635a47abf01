"""Named arrays in a `safetensors` file, checked against a schema before anything is built from them.

A model file is plain data: a `safetensors` payload (an 8-byte header length, a JSON header of
names, dtypes, shapes and byte offsets, then the raw little-endian array bytes; no code, no
compression, so its size bounds what it can allocate) whose arrays are grouped by name
`<group>.<array>` (e.g. `gender.coef`). Each group is read against a schema: a tuple of
:class:`ArraySpec`, each naming an array, its shape in named dimensions, the dtypes it may have,
whether it is required and, for integer arrays, the dimension its values index. Dimension sizes
come from the metadata JSON beside the file; :func:`read_arrays` refuses (``ArrayFileError``,
one line naming the file and the reason) a file that is not safetensors or is truncated, an
unknown or missing array, a wrong dtype, a shape other than the declared one, NaN/inf, or an
index out of range, before returning anything. Adding an array to a model is one more
:class:`ArraySpec` in its schema.

`safetensors` (Hugging Face) is used rather than `.npz`: a zip member can be compressed (a small
file declaring a huge array), a safetensors file cannot, and its header is validated by the
library against the file's length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facestats_core.models.store import ModelIntegrityError

FLOAT_DTYPES: tuple[str, ...] = ("float32", "float64")
INDEX_DTYPES: tuple[str, ...] = ("int64",)
MAX_DIM = 10_000_000
"""No declared dimension may exceed this (a bound on what a metadata file can make us accept)."""
HEADER_ALLOWANCE = 1 << 16
"""Bytes a safetensors header may take beyond the arrays' own bytes (names, shapes, offsets)."""


class ArrayFileError(ModelIntegrityError):
    """A model array file is not what its schema and metadata declare."""


@dataclass(frozen=True)
class ArraySpec:
    """One array of a group: `name`, `shape` as dimension names, allowed `dtypes`.

    `required=False`: the array may be absent (an optional extra). `index_of`: integer values
    must lie in `[0, dims[index_of])`. Float arrays must be finite.
    """

    name: str
    shape: tuple[str, ...]
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    required: bool = True
    index_of: str | None = None

    def resolved_shape(self, dims: Mapping[str, int]) -> tuple[int, ...]:
        """The shape in numbers; `KeyError` naming the dimension when `dims` lacks one."""
        return tuple(int(dims[d]) for d in self.shape)


@dataclass(frozen=True)
class GroupSchema:
    """What one group must hold: its specs and its dimension sizes."""

    specs: tuple[ArraySpec, ...]
    dims: Mapping[str, int]


def infer_dims(specs: Sequence[ArraySpec], arrays: Mapping[str, np.ndarray], known: Mapping[str, int]) -> dict[str, int]:
    """Dimension sizes the optional arrays in `arrays` define beyond `known` (for writing their metadata).

    Raises `ValueError` for an array the schema does not name, a wrong rank or a size that
    contradicts `known` or another array.
    """
    by_name = {spec.name: spec for spec in specs}
    dims = dict(known)
    for name, array in arrays.items():
        spec = by_name.get(name)
        if spec is None:
            raise ValueError(f"array {name!r} is not in the schema ({sorted(by_name)})")
        if np.ndim(array) != len(spec.shape):
            raise ValueError(f"array {name!r} has shape {np.shape(array)}, the schema says {spec.shape}")
        for dim, size in zip(spec.shape, np.shape(array)):
            if dims.setdefault(dim, int(size)) != size:
                raise ValueError(f"array {name!r}: dimension {dim} is {size} here and {dims[dim]} elsewhere")
    return {d: s for d, s in dims.items() if d not in known}


def write_arrays(groups: Mapping[str, Mapping[str, np.ndarray]]) -> bytes:
    """The safetensors bytes of every group's arrays, named `<group>.<array>`."""
    from safetensors.numpy import save  # noqa: PLC0415 - imported when used

    flat = {
        f"{group}.{name}": np.ascontiguousarray(array)
        for group, arrays in groups.items() for name, array in arrays.items()
    }
    return save(flat)


def max_payload_bytes(schemas: Mapping[str, GroupSchema]) -> int:
    """The largest file the schemas allow: every array at its declared shape in its widest dtype."""
    total = HEADER_ALLOWANCE + 8
    for schema in schemas.values():
        for spec in schema.specs:
            if all(d in schema.dims for d in spec.shape):
                itemsize = max(np.dtype(t).itemsize for t in spec.dtypes)
                total += itemsize * math.prod(spec.resolved_shape(schema.dims))
    return total


def check_dims(dims: Mapping[str, Any], where: str) -> dict[str, int]:
    """`dims` as ints in `[0, MAX_DIM]`; `ArrayFileError` otherwise."""
    out: dict[str, int] = {}
    for name, size in dims.items():
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_DIM:
            raise ArrayFileError(f"{where}: dimension {name} = {size!r} is not an integer in [0, {MAX_DIM}]")
        out[str(name)] = size
    return out


def _load(payload: bytes, source: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError  # noqa: PLC0415 - imported when used
    from safetensors.numpy import load  # noqa: PLC0415 - imported when used

    try:
        return load(payload)
    except (SafetensorError, ValueError, TypeError, OverflowError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArrayFileError(f"{source}: not a readable safetensors file (truncated or corrupt: {reason})") from exc


def _check(array: np.ndarray, spec: ArraySpec, dims: Mapping[str, int], key: str, source: str) -> np.ndarray:
    if array.dtype.name not in spec.dtypes:
        raise ArrayFileError(f"{source}: array {key} has dtype {array.dtype.name}, expected {' or '.join(spec.dtypes)}")
    expected = spec.resolved_shape(dims)
    if array.shape != expected:
        raise ArrayFileError(
            f"{source}: array {key} has shape {array.shape}, the metadata declares {expected} {spec.shape}"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ArrayFileError(f"{source}: array {key} holds NaN or infinite values")
    if spec.index_of is not None and array.size and (array.min() < 0 or array.max() >= dims[spec.index_of]):
        raise ArrayFileError(f"{source}: array {key} holds indices outside [0, {dims[spec.index_of]})")
    return array


def read_arrays(payload: bytes, schemas: Mapping[str, GroupSchema], source: str) -> dict[str, dict[str, np.ndarray]]:
    """Every group's arrays (name → array), all checked against `schemas`; `ArrayFileError` on the first problem.

    `source` names the file in messages. The payload must not exceed :func:`max_payload_bytes`;
    arrays of a group whose spec lists a dimension missing from its `dims` are refused.
    """
    limit = max_payload_bytes(schemas)
    if len(payload) > limit:
        raise ArrayFileError(f"{source}: {len(payload)} bytes, more than the {limit} its declared dimensions allow")
    flat = _load(payload, source)
    out: dict[str, dict[str, np.ndarray]] = {group: {} for group in schemas}
    for key in sorted(flat):
        group, _, name = key.partition(".")
        schema = schemas.get(group)
        spec = next((s for s in schema.specs if s.name == name), None) if schema else None
        if spec is None:
            raise ArrayFileError(f"{source}: unexpected array {key} (not in the schema)")
        try:
            out[group][name] = _check(flat[key], spec, schema.dims, key, source)
        except KeyError as exc:
            raise ArrayFileError(f"{source}: array {key} needs dimension {exc.args[0]}, not declared") from exc
    for group, schema in schemas.items():
        missing = [f"{group}.{s.name}" for s in schema.specs if s.required and s.name not in out[group]]
        if missing:
            raise ArrayFileError(f"{source}: missing array {', '.join(missing)}")
    return out
