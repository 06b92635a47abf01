"""load_clip: the model from a saved folder, a clear error when it cannot, and the one image tower it picks."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

import facestats_core.embedding.config as config
from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.loader import ClipLoadError, load_clip
from facestats_core.embedding.torch_tower import TorchTower


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir: Path):
    return load_clip(ClipConfig(model=str(tiny_clip_dir), precision="fp32"))


def test_load_from_saved_folder_uses_its_processor_config(tiny_clip) -> None:
    assert tiny_clip.image_size == 32
    assert tiny_clip.dim == 16
    assert tiny_clip.model.training is False
    assert tiny_clip.revision.startswith("sha256:")


def test_a_loaded_clip_is_frozen_with_one_torch_tower(tiny_clip) -> None:
    assert isinstance(tiny_clip.tower, TorchTower)
    assert (tiny_clip.tower.backend, tiny_clip.tower.precision, tiny_clip.recorded_precision) == ("torch", "fp32", "fp32")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny_clip.tower = None  # type: ignore[misc]


def test_load_error_names_what_was_tried(tmp_path) -> None:
    missing = tmp_path / "no-such-clip"
    with pytest.raises(ClipLoadError) as raised:
        load_clip(ClipConfig(model=str(missing), local_files_only=True))
    message = str(raised.value)
    assert str(missing) in message and "FACESTATS_CLIP_MODEL" in message and "save_pretrained" in message


@pytest.mark.parametrize("flags", [frozenset({"avx512_bf16"}), frozenset({"avx2"})])
def test_auto_loads_and_records_the_concrete_precision(tiny_clip_dir, monkeypatch, flags) -> None:
    import torch

    monkeypatch.setattr(config, "cpu_flags", lambda: flags)
    clip = load_clip(ClipConfig(model=str(tiny_clip_dir), precision="auto"))
    expected = "bf16" if "avx512_bf16" in flags else "fp32"
    assert clip.tower.precision == clip.recorded_precision == expected
    dtype = torch.bfloat16 if expected == "bf16" else torch.float32
    assert clip.model.vision_model.embeddings.patch_embedding.weight.dtype == dtype
    assert clip.model.visual_projection.weight.dtype == dtype
    assert clip.model.text_projection.weight.dtype == torch.float32  # text embeddings never depend on it


def test_openvino_not_importable_falls_back_to_torch(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.warns(UserWarning, match="OpenVINO not used: openvino is not importable"):
        clip = load_clip(ClipConfig(model=str(tiny_clip_dir), backend="openvino", precision="bf16"))
    assert clip.tower.backend == "torch" and clip.tower.precision == "bf16" and clip.recorded_precision == "bf16"
    assert next(clip.model.vision_model.parameters()).dtype == torch.bfloat16  # the image tower only
    assert next(clip.model.text_model.parameters()).dtype == torch.float32
    with pytest.warns(UserWarning, match="OpenVINO not used"):
        clip = load_clip(ClipConfig(model=str(tiny_clip_dir), backend="auto", precision="int8"))  # type: ignore[arg-type]
    assert clip.tower.backend == "torch" and clip.recorded_precision == "fp32"
