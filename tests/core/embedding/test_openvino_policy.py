"""The OpenVINO backend's policy and its torch fallbacks: these run whether or not openvino is installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from facestats_core.embedding.clip import ClipConfig, load_clip
from facestats_core.embedding.openvino_backend import resolve_backend


def _available() -> None:
    return None


def _missing() -> str:
    return "openvino is not importable"


@pytest.mark.parametrize(
    ("backend", "precision", "has_bf16", "expected"),
    [
        ("torch", "bf16", True, ("torch", "bf16")),
        ("torch", "int8", True, ("torch", "fp32")),
        ("auto", "fp32", True, ("torch", "fp32")),  # fp32 numbers stay torch's
        ("auto", "bf16", True, ("openvino", "bf16")),
        ("auto", "bf16", False, ("torch", "bf16")),  # no native bf16: OpenVINO would not be faster
        ("auto", "int8", True, ("openvino", "int8")),
        ("openvino", "fp32", True, ("openvino", "fp32")),
        ("openvino", "bf16", False, ("openvino", "fp32")),  # recorded as openvino-fp32
    ],
)
def test_policy(backend: str, precision: str, has_bf16: bool, expected: tuple[str, str]) -> None:
    choice = resolve_backend(backend, precision, "cpu", missing=_available, has_bf16=lambda: has_bf16)
    assert (choice.backend, choice.precision) == expected
    assert choice.reason


@pytest.mark.parametrize("backend", ["auto", "openvino"])
def test_policy_without_openvino_or_off_cpu_is_torch(backend: str) -> None:
    assert resolve_backend(backend, "bf16", "cpu", missing=_missing, has_bf16=lambda: True).backend == "torch"
    assert resolve_backend(backend, "int8", "cpu", missing=_missing).precision == "fp32"
    assert resolve_backend(backend, "bf16", "cuda", missing=_available).backend == "torch"
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("onnx", "fp32")


def test_config_validates_backend_and_int8() -> None:
    assert ClipConfig(precision="int8", backend="auto").precision == "int8"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        ClipConfig(backend="onnx")  # type: ignore[arg-type]


def test_openvino_not_importable_falls_back_to_torch(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.warns(UserWarning, match="OpenVINO not used: openvino is not importable"):
        clip = load_clip(ClipConfig(model=str(tiny_clip_dir), backend="openvino", precision="bf16"))
    assert clip.openvino is None and clip.precision == "bf16" and clip.recorded_precision == "bf16"
    assert next(clip.model.vision_model.parameters()).dtype == torch.bfloat16  # the image tower only
    assert next(clip.model.text_model.parameters()).dtype == torch.float32
    with pytest.warns(UserWarning, match="OpenVINO not used"):
        clip = load_clip(ClipConfig(model=str(tiny_clip_dir), backend="auto", precision="int8"))  # type: ignore[arg-type]
    assert clip.openvino is None and clip.recorded_precision == "fp32"
