"""Every FaceStats setting's value and where it came from: the only module that reads environment variables.

Settings are declared once, as resource fields (`facestats_dagster.resources`, `setting(...)`) and
the fields of `RunSettings` below; a setting's key is `<section>.<field>`, its section the resource
(`clip.model`, `faces.face_mode`, `run.shards`). This module reads them, in this precedence:

    command-line flag  >  environment variable  >  project file  >  default

The project file is `<project>/facestats.toml` (one table per section), written by `facestats run`
on its first run with the values used (`render_project_file`); the project is `--project`, else
`$FACESTATS_PROJECT` (what `dagster`/`dg` and cron use), else none (defaults and environment only,
paths relative to the working directory). In a project, relative paths from the file or the
defaults are relative to the project folder. Unknown keys and invalid values raise `SettingsError`
naming the key, the file and line, and the allowed values.

The command line, README's table (`settings_markdown`) and the project file template are generated
from the same declarations; `facestats settings` prints every effective value and its source.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from facestats_core.embedding.config import DEFAULT_MODEL
from facestats_core.io.atomic import atomic_write_text
from facestats_core.io.flags import parse_flag
from facestats_dagster.resources import (
    AnalysisResource,
    ClipResource,
    CompositesResource,
    FacesResource,
    LabelsResource,
    ModelsResource,
    PathsResource,
)
from facestats_dagster.setting import SettingSpec, setting, spec_of

DEFAULT_CLIP = DEFAULT_MODEL
"""The CLIP FaceStats uses when nothing else is configured."""

PROJECT_ENV = "FACESTATS_PROJECT"
"""The environment variable naming the project folder (for `dagster`, `dg`, cron)."""
SETTINGS_FILE = "facestats.toml"
"""The project's settings file, in the project folder."""
LOG_FILE = "facestats.log"
"""Dagster's event log of `facestats run`, in the project folder."""


class RunSettings(BaseModel):
    """How the definitions are built and where Dagster keeps its runs (settings that configure no resource)."""

    shards: int = setting(4, "number of hash shards (partitions) of the image-level assets", env="FACESTATS_SHARDS")
    automation: bool = setting(True, "`0`: the new-images and automation sensors start stopped",
                               env="FACESTATS_AUTOMATION")
    shard_executor: str = setting(
        "multiprocess", "executor of the `image_shards` job: `multiprocess`, `celery` (the `celery` extra) or `k8s`",
        env="FACESTATS_SHARD_EXECUTOR", choices=("multiprocess", "celery", "k8s"))
    shard_run_config: str = setting(
        "", "YAML run config of every `image_shards` run (its executor's config: Celery broker, k8s pod "
        "resources); empty: the executor's defaults", env="FACESTATS_SHARD_RUN_CONFIG")
    dagster_home: str = setting(".dagster_home", "Dagster's instance folder (runs, partitions, sensor cursors)",
                                env="DAGSTER_HOME", path=True)


SECTIONS: dict[str, type[BaseModel]] = {
    "paths": PathsResource,
    "faces": FacesResource,
    "clip": ClipResource,
    "labels": LabelsResource,
    "analysis": AnalysisResource,
    "models": ModelsResource,
    "composites": CompositesResource,
    "run": RunSettings,
}
"""Section (the resource key in the definitions, and the project file's table) → the class declaring its settings."""


def _specs() -> tuple[SettingSpec, ...]:
    found = []
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            spec = spec_of(section, name, info)
            if spec is not None:
                found.append(spec)
    return tuple(found)


SPECS: tuple[SettingSpec, ...] = _specs()
"""Every setting, in declaration order."""
BY_KEY: dict[str, SettingSpec] = {spec.key: spec for spec in SPECS}


class SettingsError(ValueError):
    """A setting that cannot be used: the message names the key, where it was given, and what is allowed."""


# ------------------------------------------------------------------ values


def allowed(spec: SettingSpec) -> str:
    """The allowed values of a setting, in words."""
    if spec.choices:
        return "one of " + ", ".join(spec.choices)
    return {bool: "1/0 (or true/false, yes/no, on/off)", int: "an integer", float: "a number"}.get(spec.type, "text")


def parse_value(spec: SettingSpec, value: Any, where: str) -> Any:
    """`value` (text from a flag or the environment, or a TOML value) as the setting's type; `SettingsError`
    naming `where` (e.g. `file facestats.toml:12`) and the allowed values when it is not one."""
    bad = SettingsError(f"{spec.key} = {value!r} ({where}) is not allowed: {allowed(spec)}")
    if spec.type is bool:
        parsed = value if isinstance(value, bool) else parse_flag(str(value))
        if parsed is None:
            raise bad
        return parsed
    if spec.type is int:
        if isinstance(value, bool) or isinstance(value, float):
            raise bad
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad from None
    if spec.type is float:
        if isinstance(value, bool):
            raise bad
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if not isinstance(value, str):
        raise bad
    if spec.choices and value not in spec.choices and not (spec.empty_ok and value == ""):
        raise bad
    return value


def _toml_lines(text: str) -> dict[str, int]:
    """`{"section.key": line number}` of the key/value lines of a TOML text (for error messages)."""
    lines: dict[str, int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            section = header.group(1).strip().strip('"')
            lines.setdefault(section, number)
            continue
        pair = re.match(r"\s*\"?([A-Za-z0-9_.-]+)\"?\s*=", line)
        if pair:
            lines.setdefault(f"{section}.{pair.group(1)}" if section else pair.group(1), number)
    return lines


def read_project_file(path: Path) -> dict[str, tuple[Any, str]]:
    """`{key: (value, "file PATH:LINE")}` of a project file; `SettingsError` for a file that is not TOML,
    an unknown section or key, or a value of the wrong type or not allowed."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    lines = _toml_lines(text)
    values: dict[str, tuple[Any, str]] = {}
    for section, table in data.items():
        where = f"file {path}:{lines.get(section, '?')}"
        if section not in SECTIONS or not isinstance(table, dict):
            raise SettingsError(f"unknown section [{section}] ({where}); sections: {', '.join(SECTIONS)}")
        for name, value in table.items():
            key = f"{section}.{name}"
            where = f"file {path}:{lines.get(key, '?')}"
            spec = BY_KEY.get(key)
            if spec is None:
                known = ", ".join(s.name for s in SPECS if s.section == section)
                raise SettingsError(f"unknown key {name!r} in [{section}] ({where}); keys of [{section}]: {known}")
            values[key] = (parse_value(spec, value, where), where)
    return values


# ------------------------------------------------------------------ the loaded settings


@dataclass(frozen=True)
class Settings:
    """The effective settings: `values` and `sources` by key (`clip.model`), the project (or None), and
    `written`: what a project file should hold for these settings (file and default values as given,
    flag and environment values with relative paths made absolute)."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    project: Path | None = None
    written: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def section(self, name: str) -> dict[str, Any]:
        """`{field: value}` of one section (the keyword arguments of its resource)."""
        return {spec.name: self.values[spec.key] for spec in SPECS if spec.section == name}

    def explicit(self, key: str) -> bool:
        """Whether the user gave `key` (flag, environment or project file) rather than leaving its default."""
        return self.sources[key] != "default"

    @property
    def paths(self) -> PathsResource:
        return PathsResource(**self.section("paths"))

    @property
    def run(self) -> RunSettings:
        return RunSettings(**self.section("run"))

    def settings_file(self) -> Path | None:
        return None if self.project is None else self.project / SETTINGS_FILE

    def log_file(self) -> Path | None:
        return None if self.project is None else self.project / LOG_FILE

    def dagster_home(self) -> Path:
        return Path(self.values["run.dagster_home"]).absolute()


def _is_relative_local(value: str) -> bool:
    return bool(value) and "://" not in value and not Path(value).expanduser().is_absolute()


def _resolve(spec: SettingSpec, value: Any, source: str, project: Path | None) -> Any:
    """A path setting's value, absolute in a project: file and default values against the project
    folder, flag and environment values against the working directory."""
    if not spec.path or project is None or not isinstance(value, str) or not value:
        return value
    if "://" in value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    base = project if source == "default" or source.startswith("file ") else Path.cwd()
    return str((base / path).absolute())


@dataclass
class _Active:
    project: Path | None = None
    flags: dict[str, Any] = field(default_factory=dict)


_ACTIVE: _Active | None = None


def configure(project: str | Path | None, flags: Mapping[str, Any] | None = None) -> Settings:
    """Make `project` and the command line's `flags` (`{key: value}`) what every later `load_settings()`
    of this process reads (the `facestats` command calls this once, before Dagster loads the
    definitions); returns the settings, checked."""
    global _ACTIVE
    active = _Active(Path(project).absolute() if project else None, dict(flags or {}))
    settings = load_settings(flags=active.flags, project=active.project)
    _ACTIVE = active
    return settings


def project_from(environ: Mapping[str, str] | None = None) -> Path | None:
    """The project folder in effect: `configure`'s, else `$FACESTATS_PROJECT`, else None."""
    if _ACTIVE is not None and _ACTIVE.project is not None:
        return _ACTIVE.project
    named = (os.environ if environ is None else environ).get(PROJECT_ENV, "")
    return Path(named).expanduser().absolute() if named else None


def load_settings(flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                  project: str | Path | None = None) -> Settings:
    """The effective settings: `flags` (`{key: value}`, default: `configure`'s) > `environ` (default: the
    process environment) > the project file of `project` (default: `project_from()`) > defaults.
    Raises `SettingsError` for an unknown key or a value that is not allowed."""
    env = os.environ if environ is None else environ
    if flags is None:
        flags = _ACTIVE.flags if _ACTIVE is not None else {}
    folder = Path(project).expanduser().absolute() if project else project_from(env)
    in_file: dict[str, tuple[Any, str]] = {}
    if folder is not None and (folder / SETTINGS_FILE).is_file():
        in_file = read_project_file(folder / SETTINGS_FILE)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    written: dict[str, Any] = {}
    for spec in SPECS:
        text = env.get(spec.env)
        if spec.key in flags and flags[spec.key] is not None:
            source = f"flag {spec.flag}"
            value = parse_value(spec, flags[spec.key], source)
        elif text is not None and (text != "" or spec.empty_ok):
            source = f"env {spec.env}"
            value = parse_value(spec, text, source)
        elif spec.key in in_file:
            value, source = in_file[spec.key]
        else:
            value, source = spec.default, "default"
        values[spec.key] = _resolve(spec, value, source, folder)
        sources[spec.key] = source
        written[spec.key] = value if source == "default" or source.startswith("file ") else values[spec.key]
    return Settings(values, sources, folder, written)


def environment_settings(settings: Settings | None = None) -> dict[str, str]:
    """`{environment variable: value in effect}` of every setting (for the report's reproducibility table)."""
    settings = load_settings() if settings is None else settings
    return {spec.env: str(settings[spec.key]) for spec in SPECS}


def effective_rows(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """`(key, value, source)` of every setting (what `facestats settings` prints)."""
    for spec in SPECS:
        yield spec.key, _toml_value(settings[spec.key]), settings.sources[spec.key]


# ------------------------------------------------------------------ generated text


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _plain(text: str) -> str:
    return text.replace("`", "")


def render_project_file(values: Mapping[str, Any], when: datetime | None = None) -> str:
    """The project file holding `values` (`{key: value}`; keys left out take their default), with each
    setting's meaning, variable, flag and default as comments."""
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"# FaceStats project settings, written by `facestats run` ({stamp}) with the values it used.",
        "# Precedence: command-line flag > environment variable > this file > default.",
        "# Relative paths of [paths], [run] and other path settings are relative to this folder.",
        "# `facestats settings --project DIR` prints every value in effect and where it came from.",
    ]
    section = ""
    for spec in SPECS:
        if spec.section != section:
            section = spec.section
            out += ["", f"[{section}]"]
        out += textwrap.wrap(_plain(spec.help), width=100, initial_indent="# ", subsequent_indent="# ")
        extra = f"; allowed: {', '.join(spec.choices)}" if spec.choices else ""
        out.append(f"# env {spec.env}, flag {spec.flag}; default {_toml_value(spec.default)}{extra}")
        out.append(f"{spec.name} = {_toml_value(values.get(spec.key, spec.default))}")
    return "\n".join(out) + "\n"


def write_project_file(settings: Settings, updates: Mapping[str, Any] | None = None) -> Path:
    """Write the project's settings file: on the first run every value `settings` used; later, the file's
    values with `updates` (`{key: value}`, the command line's) applied. Atomic; returns the path."""

    if settings.project is None:
        raise SettingsError("no project folder: pass --project DIR (or set FACESTATS_PROJECT)")
    path = settings.project / SETTINGS_FILE
    if path.exists():
        values = {key: value for key, (value, _) in read_project_file(path).items()}
        values.update({key: settings.written[key] for key in (updates or {})})
    else:
        values = dict(settings.written)
    settings.project.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render_project_file(values))
    return path


def _shown_default(spec: SettingSpec) -> str:
    if spec.shown:
        return spec.shown
    if isinstance(spec.default, bool):
        return f"`{int(spec.default)}`"
    return f"`{spec.default}`" if spec.default != "" else "(empty)"


def settings_markdown() -> str:
    """README's settings table: key, variable, flag, default, meaning."""
    lines = ["| key (project file) | variable | flag | default | meaning |", "|---|---|---|---|---|"]
    for spec in SPECS:
        choices = f" Allowed: {', '.join(f'`{c}`' for c in spec.choices)}." if spec.choices else ""
        lines.append(f"| `{spec.key}` | `{spec.env}` | `{spec.flag}` | {_shown_default(spec)} | {spec.help}.{choices} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ the command line


def flag_dest(spec: SettingSpec) -> str:
    return f"setting__{spec.section}__{spec.name}"


def add_setting_flags(parser: Any) -> None:
    """One flag per setting (`--clip-model DIR` …), grouped by section, generated from the declarations."""
    import argparse

    for section in SECTIONS:
        group = parser.add_argument_group(f"[{section}] settings")
        for spec in (s for s in SPECS if s.section == section):
            text = f"{_plain(spec.help)} (env {spec.env}; default {_toml_value(spec.default)})".replace("%", "%%")
            if spec.type is bool:
                group.add_argument(spec.flag, dest=flag_dest(spec), action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=text)
            else:
                group.add_argument(spec.flag, dest=flag_dest(spec), default=argparse.SUPPRESS, help=text,
                                   choices=list(spec.choices) or None,
                                   metavar=None if spec.choices else spec.name.upper())
    parser.add_argument("--project", default=None, metavar="DIR",
                        help=f"the project folder holding {SETTINGS_FILE}, the results and the log "
                        f"(default: ${PROJECT_ENV}, else none)")


def flags_from(args: Any) -> dict[str, Any]:
    """`{key: value}` of the setting flags given on the command line (`add_setting_flags`)."""
    given = vars(args)
    return {spec.key: given[flag_dest(spec)] for spec in SPECS if flag_dest(spec) in given}
