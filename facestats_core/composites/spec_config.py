"""The composites config file (``config/composites.yaml``): which filter specs to build.

Format::

    specs:
      - all
      - gender=female,age=20-39
      - spec: gender=male,attractiveness=top10   # the mapping form is accepted too

(a bare top-level list works as well). Each entry is parsed with
:func:`~facestats_core.composites.filter_spec.parse_spec`; invalid entries are reported
in :attr:`SpecConfig.errors` and skipped, never fatal, and an entry whose
canonical spec repeats an earlier one is dropped (reported in
:attr:`SpecConfig.duplicates`). ``entry_hash`` fingerprints the entry as
written, so the sensor's run keys change when an entry is edited.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from facestats_core.composites.filter_spec import FilterSpec, FilterSpecError, parse_spec


@dataclass(frozen=True)
class SpecEntry:
    """One valid entry: its position, the text as written, the parsed spec and a hash of the entry."""

    index: int
    text: str
    spec: FilterSpec
    entry_hash: str

    @property
    def canonical(self) -> str:
        return self.spec.canonical

    @property
    def run_key(self) -> str:
        return f"{self.canonical}#{self.entry_hash}"


@dataclass(frozen=True)
class SpecConfig:
    entries: list[SpecEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    file_hash: str = ""

    @property
    def canonical(self) -> list[str]:
        return [entry.canonical for entry in self.entries]


def entry_hash(entry: Any) -> str:
    """12 hex digits of the sha256 of the entry's JSON form."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:12]


def parse_spec_config(text: str) -> SpecConfig:
    """Parse the YAML text of a composites config; see the module docstring."""
    file_hash = hashlib.sha256(text.encode()).hexdigest()[:16]
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return SpecConfig(errors=[f"not valid YAML: {exc}"], file_hash=file_hash)
    if document is None:
        return SpecConfig(file_hash=file_hash)
    items = document.get("specs") if isinstance(document, dict) else document
    if isinstance(document, dict) and "specs" not in document:
        return SpecConfig(errors=["no 'specs:' list in the file"], file_hash=file_hash)
    if items is None:
        return SpecConfig(file_hash=file_hash)
    if not isinstance(items, list):
        return SpecConfig(errors=[f"'specs' must be a list, got {type(items).__name__}"], file_hash=file_hash)
    entries: list[SpecEntry] = []
    errors: list[str] = []
    duplicates: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        text_value = item.get("spec") if isinstance(item, dict) else item
        if isinstance(item, dict) and set(item) - {"spec"}:
            errors.append(f"entry {index}: unknown fields {sorted(set(item) - {'spec'})}; only 'spec' is allowed")
            continue
        if text_value is None:  # a bare "-": almost surely a slip; write "all" for every face
            errors.append(f"entry {index}: empty entry (write 'all' for a composite of every face)")
            continue
        if not isinstance(text_value, str):
            errors.append(f"entry {index}: expected a spec string, got {type(text_value).__name__} {text_value!r}")
            continue
        try:
            spec = parse_spec(text_value)
        except FilterSpecError as exc:
            errors.append(f"entry {index} {text_value!r}: {exc}")
            continue
        if spec.canonical in seen:
            duplicates.append(f"entry {index} {text_value!r} repeats {spec.canonical!r}")
            continue
        seen.add(spec.canonical)
        entries.append(SpecEntry(index, text_value, spec, entry_hash(item)))
    return SpecConfig(entries=entries, errors=errors, duplicates=duplicates, file_hash=file_hash)


def read_spec_config(path: str | Path) -> SpecConfig:
    """:func:`parse_spec_config` of a file; a missing or unreadable file raises ``OSError``."""
    return parse_spec_config(Path(path).read_text(encoding="utf-8"))
