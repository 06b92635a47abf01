"""Small helpers that turn core results into Dagster UI metadata."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg


def counts_table(counts: Counter[str] | dict[str, int], key: str = "reason") -> dg.MetadataValue:
    """A two-column markdown table, most frequent first (`_none_` when empty)."""
    if not counts:
        return dg.MetadataValue.md("_none_")
    lines = [f"| {key} | count |", "|---|---:|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return dg.MetadataValue.md("\n".join(lines))


def count_values(values: Iterable[str | None]) -> Counter[str]:
    return Counter(value for value in values if value)


def log_issues(
    context: dg.AssetExecutionContext,
    source: str,
    issues: Sequence[Any],
    counts: Mapping[str, int],
    what: str = "issues",
    shown: int = 10,
) -> None:
    """Warn once with the per-kind `counts`, then the first `shown` issues (objects with
    `row`, `file`, `kind` and `message`), then how many were not shown."""
    if not issues:
        return
    context.log.warning(f"{source}: {len(issues)} {what} {dict(counts)}")
    for issue in issues[:shown]:
        context.log.warning(f"{source} row {issue.row} ({issue.file}): {issue.kind}: {issue.message}")
    if len(issues) > shown:
        context.log.warning(f"{source}: … and {len(issues) - shown} more")


def image_markdown(jpeg: bytes | None, alt: str = "preview") -> dg.MetadataValue:
    """Inline JPEG (or PNG) bytes as a markdown image (rendered in the asset's metadata panel)."""
    if jpeg is None:
        return dg.MetadataValue.md("_no preview_")
    mime = "image/png" if jpeg.startswith(b"\x89PNG\r\n\x1a\n") else "image/jpeg"
    return dg.MetadataValue.md(f"![{alt}](data:{mime};base64,{base64.b64encode(jpeg).decode()})")
