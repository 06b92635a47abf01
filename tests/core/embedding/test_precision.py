"""`precision=auto`: bf16 where the hardware runs it natively, else fp32; the loaded model records the concrete one."""

from __future__ import annotations

import pytest

import facestats_core.embedding.clip as embedding
from facestats_core.embedding.clip import ClipConfig, load_clip, resolve_precision


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


def test_auto_is_the_default() -> None:
    assert ClipConfig().precision == "auto"


def test_cpu_flags_reads_the_flags_lines(tmp_path, monkeypatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu sse\n")
    real_path = embedding.Path
    monkeypatch.setattr(embedding, "Path", lambda p: real_path(cpuinfo) if p == "/proc/cpuinfo" else real_path(p))
    embedding.cpu_flags.cache_clear()
    try:
        assert embedding.cpu_flags() == {"fpu", "avx512f", "avx512_bf16", "sse"}
    finally:
        embedding.cpu_flags.cache_clear()


@pytest.mark.parametrize("flags", [frozenset({"avx512_bf16"}), frozenset({"avx2"})])
def test_auto_loads_and_records_the_concrete_precision(tiny_clip_dir, monkeypatch, flags) -> None:
    import torch

    monkeypatch.setattr(embedding, "cpu_flags", lambda: flags)
    clip = load_clip(ClipConfig(model=str(tiny_clip_dir), precision="auto"))
    expected = "bf16" if "avx512_bf16" in flags else "fp32"
    assert clip.precision == expected
    dtype = torch.bfloat16 if expected == "bf16" else torch.float32
    assert clip.model.vision_model.embeddings.patch_embedding.weight.dtype == dtype
    assert clip.model.visual_projection.weight.dtype == dtype
    assert clip.model.text_projection.weight.dtype == torch.float32  # text embeddings never depend on it
