"""facestats_dagster.settings: one declaration per setting; flag > environment > project file > default."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from facestats_dagster.defs.resources import build_resources
from facestats_dagster.settings import (
    DEFAULT_CLIP,
    SECTIONS,
    SETTINGS_FILE,
    SPECS,
    SettingsError,
    configure,
    load_settings,
    read_project_file,
    render_project_file,
    write_project_file,
)

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_parsing() -> None:
    settings = load_settings(environ={})
    assert settings["clip.model"] == DEFAULT_CLIP and settings["run.shards"] == 4
    assert all(source == "default" for source in settings.sources.values())
    parsed = load_settings(environ={"FACESTATS_SEED": "7", "FACESTATS_RELAX": "yes", "FACESTATS_AUTOMATION": "0",
                                    "FACESTATS_CHIP_MARGIN": "0.4"})
    assert (parsed["analysis.seed"], parsed["composites.relax"], parsed["run.automation"]) == (7, True, False)
    assert build_resources(parsed)["faces"].chips().margin == 0.4


def test_empty_values_turn_optional_files_off_and_fall_back_elsewhere() -> None:
    settings = load_settings(environ={"FACESTATS_RATINGS": "", "FACESTATS_SEED": ""})
    assert settings["labels.ratings"] == "" and settings["analysis.seed"] == 0


@pytest.mark.parametrize(("name", "value"), [("FACESTATS_SEED", "seven"), ("FACESTATS_RELAX", "maybe"),
                                             ("FACESTATS_CHIP_MARGIN", "wide")])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(environ={name: value})


def test_a_value_outside_its_choices_names_the_allowed_ones() -> None:
    with pytest.raises(SettingsError, match="one of detect, whole, auto"):
        load_settings(environ={"FACESTATS_FACE_MODE": "faces"})


def test_precedence_flag_over_environment_over_file_over_default(tmp_path) -> None:
    (tmp_path / SETTINGS_FILE).write_text('[analysis]\nseed = 3\n\n[composites]\nmin_faces = 4\nrelax = true\n'
                                          '\n[clip]\nbatch_size = 8\n')
    env = {"FACESTATS_MIN_FACES": "5", "FACESTATS_SEED": "6"}
    settings = load_settings(flags={"analysis.seed": "9"}, environ=env, project=tmp_path)
    assert settings["analysis.seed"] == 9 and settings.sources["analysis.seed"] == "flag --seed"
    assert settings["composites.min_faces"] == 5 and settings.sources["composites.min_faces"] == "env FACESTATS_MIN_FACES"
    assert settings["clip.batch_size"] == 8
    assert settings.sources["clip.batch_size"] == f"file {tmp_path / SETTINGS_FILE}:9"
    assert settings["clip.threads"] == 0 and settings.sources["clip.threads"] == "default"


def test_the_project_comes_from_the_environment_and_relative_paths_from_the_project(tmp_path) -> None:
    (tmp_path / SETTINGS_FILE).write_text('[paths]\nphotos = "pics"\n')
    settings = load_settings(environ={"FACESTATS_PROJECT": str(tmp_path)})
    assert settings.project == tmp_path
    assert settings["paths.photos"] == str(tmp_path / "pics")
    assert settings["paths.data_root"] == str(tmp_path / "data")  # a default, in the project
    assert settings["run.dagster_home"] == str(tmp_path / ".dagster_home")
    assert settings.paths.layout().raw_dir.path == str(tmp_path / "pics")


@pytest.mark.parametrize(("text", "expected"), [
    ('[clip]\nmodle = "x"\n', r"unknown key 'modle' in \[clip\] \(file .*facestats.toml:2\); keys of \[clip\]: model,"),
    ('[faces]\n\nface_mode = "eyes"\n', r"faces.face_mode = 'eyes' \(file .*facestats.toml:3\) is not allowed: "
                                         r"one of detect, whole, auto"),
    ('[cli]\nx = 1\n', r"unknown section \[cli\] \(file .*facestats.toml:1\)"),
    ('[run]\nshards = "four"\n', r"run.shards = 'four' \(file .*:2\) is not allowed: an integer"),
    ('[run\n', r"not valid TOML"),
])
def test_bad_project_files_name_the_key_the_file_and_line_and_what_is_allowed(tmp_path, text, expected) -> None:
    (tmp_path / SETTINGS_FILE).write_text(text)
    with pytest.raises(SettingsError, match=expected):
        load_settings(environ={}, project=tmp_path)


def test_the_written_file_reads_back_to_the_same_values_with_comments(tmp_path) -> None:
    settings = configure(tmp_path, {"clip.model": "/models/clip", "composites.relax": True})
    try:
        path = write_project_file(settings, {"clip.model": "/models/clip", "composites.relax": True})
        text = path.read_text()
        assert "# env FACESTATS_CLIP_MODEL, flag --clip-model" in text and 'model = "/models/clip"' in text
        assert "allowed: detect, whole, auto" in text
        values = read_project_file(path)
        assert values["clip.model"][0] == "/models/clip" and values["composites.relax"][0] is True
        assert len(values) == len(SPECS)
        again = load_settings(flags={}, environ={}, project=tmp_path)
        assert again["clip.model"] == "/models/clip" and again.sources["clip.model"].startswith("file ")
        # a later run's flags update the file; the rest stays as written
        write_project_file(load_settings(flags={"analysis.seed": 5}, environ={}, project=tmp_path), {"analysis.seed": 5})
        assert load_settings(flags={}, environ={}, project=tmp_path)["analysis.seed"] == 5
        assert render_project_file({}).count("\n[") == len(SECTIONS)
    finally:
        configure(None, {})


def test_resources_are_built_from_the_settings() -> None:
    settings = load_settings(environ={"FACESTATS_COMPOSITE_SIZE": "128", "FACESTATS_FACE_MODE": "whole",
                                      "FACESTATS_MULTI_FACE": "largest", "FACESTATS_MIN_FACE_PX": "40",
                                      "FACESTATS_DETECT_MAX_SIDE": "800", "FACESTATS_FACE_DETECTOR": "none",
                                      "FACESTATS_LANDMARKS": "labels/eyes.csv", "FACESTATS_MIN_FACES": "3",
                                      "FACESTATS_CLIP_PRECISION": "bf16"})
    resources = build_resources(settings)
    faces = resources["faces"]
    assert faces.chips().composite_size == 128
    detection = faces.detection(faces.face_detector()[1])
    assert (detection.face_mode, detection.multi_face, detection.min_face_px, detection.max_side) == (
        "whole", "largest", 40, 800)
    assert faces.landmarks == "labels/eyes.csv" and faces.detector == "none"
    assert resources["composites"].min_faces == 3
    assert resources["clip"].config().precision == "bf16"


def test_the_compile_help_states_the_core_threshold() -> None:
    from facestats_core.embedding.config import COMPILE_MIN_IMAGES

    spec = next(s for s in SPECS if s.key == "clip.compile")
    assert spec.default == "auto" and f"at least {COMPILE_MIN_IMAGES} faces" in spec.help


def test_each_setting_is_declared_once() -> None:
    """Every setting's variable, flag and key are unique, each variable is written in exactly one
    `setting(...)` call of the source, and no resource field takes its default from elsewhere."""
    assert len({s.env for s in SPECS}) == len({s.flag for s in SPECS}) == len({s.key for s in SPECS}) == len(SPECS)
    declared: list[str] = []
    for path in sorted((ROOT / "facestats_dagster").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setting":
                declared += [k.value.value for k in node.keywords if k.arg == "env" and isinstance(k.value, ast.Constant)]
    assert sorted(declared) == sorted(s.env for s in SPECS)
    for model in SECTIONS.values():
        source = Path(__import__(model.__module__, fromlist=["x"]).__file__).read_text()
        assert "Settings." not in source.split(f"class {model.__name__}")[1].split("\nclass ")[0]
