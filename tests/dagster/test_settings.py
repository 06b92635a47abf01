"""facestats_dagster.settings: the only reader of the environment."""

from __future__ import annotations

import pytest

from facestats_dagster.defs.resources import build_resources
from facestats_dagster.settings import DEFAULT_CLIP, Settings, environment_settings, load_settings


def test_defaults_and_parsing(tmp_path) -> None:
    settings = load_settings({"FACESTATS_MODEL_ROOT": str(tmp_path)})
    assert settings == Settings(model_root=str(tmp_path), clip_model=DEFAULT_CLIP)
    parsed = load_settings({"FACESTATS_SEED": "7", "FACESTATS_RELAX": "yes", "FACESTATS_AUTOMATION": "0",
                            "FACESTATS_CHIP_MARGIN": "0.4", "FACESTATS_MODEL_ROOT": str(tmp_path)})
    assert (parsed.seed, parsed.relax, parsed.automation) == (7, True, False)
    assert build_resources(parsed)["faces"].chips().margin == 0.4


def test_empty_values_turn_optional_files_off_and_fall_back_elsewhere(tmp_path) -> None:
    settings = load_settings({"FACESTATS_RATINGS": "", "FACESTATS_SEED": "", "FACESTATS_MODEL_ROOT": str(tmp_path)})
    assert settings.ratings == "" and settings.seed == Settings.seed


@pytest.mark.parametrize(("name", "value"), [("FACESTATS_SEED", "seven"), ("FACESTATS_RELAX", "maybe")])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings({name: value})


def test_the_clip_pointer_file_names_the_model_when_unset(tmp_path) -> None:
    (tmp_path / "CLIP_MODEL").write_text("/models/demo-clip\n")
    assert load_settings({"FACESTATS_MODEL_ROOT": str(tmp_path)}).clip_model == "/models/demo-clip"
    assert load_settings({"FACESTATS_MODEL_ROOT": str(tmp_path)}, resolve_clip=False).clip_model == ""
    explicit = {"FACESTATS_MODEL_ROOT": str(tmp_path), "FACESTATS_CLIP_MODEL": "/x"}
    assert load_settings(explicit).clip_model == "/x"


def test_resources_are_built_from_the_settings(tmp_path) -> None:
    settings = load_settings({"FACESTATS_COMPOSITE_SIZE": "128", "FACESTATS_FACE_MODE": "whole",
                              "FACESTATS_MULTI_FACE": "largest", "FACESTATS_MIN_FACE_PX": "40",
                              "FACESTATS_DETECT_MAX_SIDE": "800", "FACESTATS_FACE_DETECTOR": "none",
                              "FACESTATS_LANDMARKS": "labels/eyes.csv", "FACESTATS_MIN_FACES": "3",
                              "FACESTATS_CLIP_PRECISION": "bf16", "FACESTATS_MODEL_ROOT": str(tmp_path)})
    resources = build_resources(settings)
    faces = resources["faces"]
    assert faces.chips().composite_size == 128
    detection = faces.detection(faces.face_detector()[1])
    assert (detection.face_mode, detection.multi_face, detection.min_face_px, detection.max_side) == (
        "whole", "largest", 40, 800)
    assert faces.landmarks == "labels/eyes.csv" and faces.detector == "none"
    assert "preprocess" not in resources
    assert resources["composites"].min_faces == 3
    assert resources["clip"].config().precision == "bf16"
    assert environment_settings({"FACESTATS_MIN_FACES": "3", "FACESTATS_MODEL_ROOT": str(tmp_path)})[
        "FACESTATS_MIN_FACES"] == "3"


def test_float_settings_are_parsed_and_bad_ones_name_the_variable(tmp_path) -> None:
    assert load_settings({"FACESTATS_CHIP_MARGIN": "0.4", "FACESTATS_MODEL_ROOT": str(tmp_path)}).chip_margin == 0.4
    with pytest.raises(ValueError, match="FACESTATS_CHIP_MARGIN"):
        load_settings({"FACESTATS_CHIP_MARGIN": "wide"})


def test_the_compile_help_states_the_core_threshold() -> None:
    from dataclasses import fields

    from facestats_core.embedding.clip import COMPILE_MIN_IMAGES
    from facestats_dagster.settings import Settings

    spec = next(f for f in fields(Settings) if f.name == "clip_compile")
    assert spec.default == "auto" and f"at least {COMPILE_MIN_IMAGES} faces" in spec.metadata["help"]
