"""The open-vocabulary tags file (``config/tags.yaml``): each tag's positive and contrast prompts.

Format::

    tags:
      eyeglasses:
        description: wears glasses          # optional
        positive: ["a photo of a person wearing eyeglasses.", ...]
        negative: ["a photo of a person without glasses.", ...]

A tag name is lower-case letters, digits and ``_``, starting with a letter (at
most 40 characters), so ``tag_<name>`` is a safe column name and ``tag=<name>``
a valid filter-spec value. ``positive`` and ``negative`` are non-empty lists of
non-empty strings. Unlike the composites file (whose bad entries are skipped),
a malformed tags file raises one :class:`TagConfigError` listing every problem:
a tag silently missing would change what a filter selects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TAG_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_FIELDS = frozenset({"positive", "negative", "description"})


class TagConfigError(ValueError):
    """The tags YAML is malformed; the message lists every problem found."""


@dataclass(frozen=True)
class TagSpec:
    """One tag: its name, the prompts describing it and the contrast prompts describing its absence."""

    name: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    description: str = ""


def _prompts(name: str, field: str, value: Any, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        problems.append(f"tag {name!r}: '{field}' must be a non-empty list of prompts")
        return ()
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        problems.append(f"tag {name!r}: '{field}' holds non-text or empty prompts {bad!r}")
        return ()
    return tuple(v.strip() for v in value)


def _tag(name: Any, body: Any, problems: list[str]) -> TagSpec | None:
    if not isinstance(name, str) or not TAG_NAME.fullmatch(name):
        problems.append(
            f"tag name {name!r}: use lower-case letters, digits and '_', starting with a letter (<= 40 chars)"
        )
        return None
    if not isinstance(body, dict):
        problems.append(f"tag {name!r}: expected a mapping with 'positive' and 'negative', got {type(body).__name__}")
        return None
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        problems.append(f"tag {name!r}: unknown fields {unknown}; allowed: {sorted(_FIELDS)}")
    missing = [f for f in ("positive", "negative") if f not in body]
    if missing:
        problems.append(f"tag {name!r}: missing {missing}")
        return None
    count = len(problems)
    positive = _prompts(name, "positive", body["positive"], problems)
    negative = _prompts(name, "negative", body["negative"], problems)
    description = body.get("description", "")
    if not isinstance(description, str):
        problems.append(f"tag {name!r}: 'description' must be text")
    if len(problems) > count or unknown or not isinstance(description, str):
        return None
    return TagSpec(name, positive, negative, description)


def parse_tag_config(text: str, source: str = "tags config") -> tuple[TagSpec, ...]:
    """The tags of a YAML document, in file order; raises :class:`TagConfigError` naming ``source``."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TagConfigError(f"{source}: not valid YAML: {exc}") from exc
    if document is None:
        return ()
    if not isinstance(document, dict) or set(document) != {"tags"}:
        raise TagConfigError(f"{source}: expected one top-level key 'tags' holding a mapping of tag name → prompts")
    tags = document["tags"] or {}
    if not isinstance(tags, dict):
        raise TagConfigError(f"{source}: 'tags' must be a mapping of tag name → prompts, got {type(tags).__name__}")
    problems: list[str] = []
    specs = [spec for name, body in tags.items() if (spec := _tag(name, body, problems)) is not None]
    if problems:
        raise TagConfigError(f"{source}: " + "; ".join(problems))
    return tuple(specs)


def read_tag_config(path: str | Path) -> tuple[TagSpec, ...]:
    """:func:`parse_tag_config` of a file; a missing file raises ``FileNotFoundError``."""
    return parse_tag_config(Path(path).read_text(encoding="utf-8"), source=str(path))
