"""The declaration of one FaceStats setting: `setting(default, help, env=...)` on a resource field.

A setting is a field of a Dagster resource (or of `settings.RunSettings`) whose default is
`setting(...)`: name (the field), type (the annotation), default, help, environment variable,
allowed values. Everything else is generated from these fields by `facestats_dagster.settings`:
the loader (flag > environment > project file > default), the command-line flags, the project
file template and README's table. Fields declared without `setting(...)` are internal knobs, not
user settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo

MARK = "facestats_setting"
"""The key of a setting's declaration in its pydantic field's `json_schema_extra`."""


def setting(default: Any, help: str, *, env: str, choices: tuple[str, ...] = (), empty_ok: bool = False,
            path: bool = False, flag: str = "", shown: str = "") -> Any:
    """A pydantic field that is a user setting.

    `env`: its environment variable; `choices`: the allowed values (empty: any); `empty_ok`: an
    empty value turns the feature off (else an empty variable means "the default"); `path`: a
    path that, when relative and given in the project file (or left at its default), is relative
    to the project folder; `flag`: the command-line flag (default: `env` without `FACESTATS_`,
    lower case, `_` → `-`); `shown`: how README shows the default when it is not the literal."""
    extra = {MARK: {"env": env, "choices": list(choices), "empty_ok": empty_ok, "path": path,
                    "flag": flag, "shown": shown}}
    return Field(default=default, description=help, json_schema_extra=extra)


@dataclass(frozen=True)
class SettingSpec:
    """One declared setting, read back from its field. `key` is `section.name` (the TOML table and key)."""

    section: str
    name: str
    type: type
    default: Any
    help: str
    env: str
    choices: tuple[str, ...]
    empty_ok: bool
    path: bool
    flag: str
    shown: str

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"


def spec_of(section: str, name: str, info: FieldInfo) -> SettingSpec | None:
    """The `SettingSpec` of a pydantic field, or None when the field is not a setting."""
    extra = info.json_schema_extra
    if not isinstance(extra, dict) or MARK not in extra:
        return None
    mark: dict[str, Any] = extra[MARK]  # type: ignore[assignment]
    env = str(mark["env"])
    flag = str(mark["flag"]) or "--" + env.removeprefix("FACESTATS_").lower().replace("_", "-")
    kind = info.annotation if isinstance(info.annotation, type) else str
    return SettingSpec(section, name, kind, info.default, info.description or "", env, tuple(mark["choices"]),
                       bool(mark["empty_ok"]), bool(mark["path"]), flag, str(mark["shown"]))
