"""The settings policies: precision (`auto` is bf16 only where the hardware runs it natively), compilation
(`auto` only for jobs large enough to repay it), backend (OpenVINO only where it changes no numbers)."""

from __future__ import annotations

import pytest

import facestats_core.embedding.config as config
from facestats_core.embedding.config import (
    COMPILE_MIN_IMAGES,
    ClipConfig,
    parse_compile,
    resolve_backend,
    resolve_precision,
    should_compile,
)


@pytest.mark.parametrize(
    ("requested", "device", "flags", "cuda_bf16", "expected"),
    [
        ("auto", "cpu", {"avx512f", "avx512_bf16"}, False, "bf16"),
        ("auto", "cpu", {"avx512f", "amx_tile", "amx_bf16"}, False, "bf16"),
        ("auto", "cpu", {"avx512f", "avx512bw", "avx2"}, False, "fp32"),  # bf16 would be emulated
        ("auto", "cpu", set(), False, "fp32"),
        ("auto", "cuda", set(), True, "bf16"),
        ("auto", "cuda:1", {"avx512_bf16"}, False, "fp32"),  # the GPU decides, not the host CPU
        ("auto", "mps", {"avx512_bf16"}, True, "fp32"),
        ("fp32", "cpu", {"avx512_bf16"}, True, "fp32"),
        ("bf16", "cpu", set(), False, "bf16"),
    ],
)
def test_resolve_precision(requested, device, flags, cuda_bf16, expected) -> None:
    assert resolve_precision(requested, device, cpu_flags=flags, cuda_bf16=cuda_bf16) == expected


def test_resolve_precision_refuses_unknown_values() -> None:
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision"):
        ClipConfig(precision="fp16")  # type: ignore[arg-type]


def test_auto_precision_is_the_default() -> None:
    assert ClipConfig().precision == "auto"


def test_cpu_flags_reads_the_flags_lines(tmp_path, monkeypatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu sse\n")
    real_path = config.Path
    monkeypatch.setattr(config, "Path", lambda p: real_path(cpuinfo) if p == "/proc/cpuinfo" else real_path(p))
    config.cpu_flags.cache_clear()
    try:
        assert config.cpu_flags() == {"fpu", "avx512f", "avx512_bf16", "sse"}
    finally:
        config.cpu_flags.cache_clear()


@pytest.mark.parametrize(("text", "expected"), [("auto", "auto"), ("AUTO", "auto"), ("1", True), ("true", True),
                                                ("0", False), ("off", False), (True, True), (False, False)])
def test_parse_compile(text, expected) -> None:
    assert parse_compile(text) == expected
    assert ClipConfig(compile=text).compile == expected


def test_bad_compile_value_names_the_setting() -> None:
    with pytest.raises(ValueError, match="FACESTATS_CLIP_COMPILE"):
        ClipConfig(compile="sometimes")  # type: ignore[arg-type]


def test_auto_is_the_default_and_compiles_from_the_threshold_on() -> None:
    assert ClipConfig().compile == "auto"
    assert not should_compile("auto", COMPILE_MIN_IMAGES - 1)
    assert should_compile("auto", COMPILE_MIN_IMAGES)
    assert should_compile("auto", 10_000)  # the 10k-image job of docs/performance.md compiles
    assert should_compile(True, 1) and not should_compile(False, 10**6)


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
def test_backend_policy(backend: str, precision: str, has_bf16: bool, expected: tuple[str, str]) -> None:
    choice = resolve_backend(backend, precision, "cpu", missing=_available, has_bf16=lambda: has_bf16)
    assert (choice.backend, choice.precision) == expected
    assert choice.reason


@pytest.mark.parametrize("backend", ["auto", "openvino"])
def test_backend_policy_without_openvino_or_off_cpu_is_torch(backend: str) -> None:
    assert resolve_backend(backend, "bf16", "cpu", missing=_missing, has_bf16=lambda: True).backend == "torch"
    assert resolve_backend(backend, "int8", "cpu", missing=_missing).precision == "fp32"
    assert resolve_backend(backend, "bf16", "cuda", missing=_available).backend == "torch"
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("onnx", "fp32")


def test_config_validates_backend_and_int8() -> None:
    assert ClipConfig(precision="int8", backend="auto").precision == "int8"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        ClipConfig(backend="onnx")  # type: ignore[arg-type]
