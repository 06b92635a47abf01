"""Compare two runs' artifact trees file by file and say what differs.

Used to check that a change keeps the outputs ("same outputs where the algorithm is unchanged"):
run the demo (or ``bench_pipeline.py --keep``) before and after, then::

    .venv/bin/python benchmarks/compare_artifacts.py OLD_DATA_DIR NEW_DATA_DIR [--limit 20]

Every file present in either tree is classed as

* ``identical``: the same bytes;
* ``equal table``: a parquet file whose rows and values are equal (column order and
  parquet encoding may differ); otherwise the columns added, removed and changed, with the
  number of changed rows and the largest absolute difference of numeric columns;
* ``equal json``: the same JSON value; otherwise the changed keys (dotted paths);
* ``image``: same size, with the mean and largest absolute pixel difference;
* ``differs`` (any other file), ``only old``, ``only new``.

Files under a directory whose name is a content version (``chip-m025-...``) are matched by
their path below it, so a renamed version directory is compared too. Prints one line per class
and directory, then details of the first ``--limit`` differing files, and ends with
``summary: files=<n> identical=<n> equal=<n> differ=<n> only_old=<n> only_new=<n>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})


@dataclass(frozen=True)
class Verdict:
    kind: str
    """``identical``, ``equal``, ``differs``, ``only_old`` or ``only_new``."""
    detail: str = ""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json_paths(old: object, new: object, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(where + (" (new)" if key not in old else " (removed)"))
            else:
                out.extend(_json_paths(old[key], new[key], where))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(_json_paths(a, b, f"{prefix}[{index}]"))
        return out
    return [] if old == new else [prefix or "<root>"]


def compare_json(old: Path, new: Path) -> Verdict:
    try:
        a, b = json.loads(old.read_text()), json.loads(new.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        return Verdict("differs", f"not JSON: {error}")
    changed = _json_paths(a, b)
    if not changed:
        return Verdict("equal", "same JSON value")
    return Verdict("differs", f"{len(changed)} keys: " + ", ".join(changed[:12]))


def _column_change(a: pl.Series, b: pl.Series) -> str | None:
    if a.dtype != b.dtype:
        return f"{a.name}: dtype {a.dtype} -> {b.dtype}"
    if a.equals(b):
        return None
    if a.dtype.is_numeric():
        diff = (a.cast(pl.Float64) - b.cast(pl.Float64)).abs()
        rows = int((diff > 0).sum()) + int((a.is_null() != b.is_null()).sum())
        return f"{a.name}: {rows} rows, max |diff| {diff.max():.3g}"
    if isinstance(a.dtype, pl.List | pl.Array) and a.dtype.inner is not None and a.dtype.inner.is_numeric():
        try:
            x = np.asarray(a.to_list(), dtype=np.float64)
            y = np.asarray(b.to_list(), dtype=np.float64)
            if x.shape == y.shape:
                rows = int(np.any(x != y, axis=tuple(range(1, x.ndim))).sum())
                return f"{a.name}: {rows} rows, max |diff| {np.abs(x - y).max():.3g}"
        except (TypeError, ValueError):
            pass
    rows = int((a.cast(pl.String, strict=False) != b.cast(pl.String, strict=False)).fill_null(True).sum())
    return f"{a.name}: {rows} rows differ"


def compare_parquet(old: Path, new: Path) -> Verdict:
    a, b = pl.read_parquet(old), pl.read_parquet(new)
    added = [c for c in b.columns if c not in a.columns]
    removed = [c for c in a.columns if c not in b.columns]
    parts = []
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    if a.height != b.height:
        parts.append(f"rows {a.height} -> {b.height}")
        return Verdict("differs", "; ".join(parts))
    shared = [c for c in a.columns if c in b.columns]
    changes = [change for c in shared if (change := _column_change(a[c], b[c])) is not None]
    parts.extend(changes)
    if not parts:
        return Verdict("equal", f"{a.height} rows equal")
    if not changes:
        return Verdict("differs", "; ".join(parts) + f"; the {len(shared)} shared columns equal")
    return Verdict("differs", "; ".join(parts))


def compare_image(old: Path, new: Path) -> Verdict:
    with Image.open(old) as ia, Image.open(new) as ib:
        if ia.size != ib.size or ia.mode != ib.mode:
            return Verdict("differs", f"{ia.size} {ia.mode} -> {ib.size} {ib.mode}")
        x = np.asarray(ia, dtype=np.int16)
        y = np.asarray(ib, dtype=np.int16)
    diff = np.abs(x - y)
    if not diff.any():
        return Verdict("equal", "same pixels")
    return Verdict("differs", f"pixels: mean |diff| {diff.mean():.3f}, max {int(diff.max())}")


def compare_file(old: Path, new: Path) -> Verdict:
    if _digest(old) == _digest(new):
        return Verdict("identical")
    suffix = old.suffix.lower()
    if suffix == ".parquet":
        return compare_parquet(old, new)
    if suffix == ".json":
        return compare_json(old, new)
    if suffix in IMAGE_SUFFIXES:
        return compare_image(old, new)
    return Verdict("differs", f"{old.stat().st_size} -> {new.stat().st_size} bytes")


def _key(root: Path, path: Path) -> str:
    parts = path.relative_to(root).parts
    return "/".join("<version>" if part.startswith("chip-") else part for part in parts)


def _files(root: Path) -> dict[str, Path]:
    return {_key(root, p): p for p in sorted(root.rglob("*")) if p.is_file() and ".tmp" not in p.name}


def compare_trees(old_root: Path, new_root: Path) -> dict[str, Verdict]:
    """Every file of either tree → its verdict, keyed by the path relative to the roots."""
    old, new = _files(old_root), _files(new_root)
    out: dict[str, Verdict] = {}
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out[key] = Verdict("only_old")
        elif key not in old:
            out[key] = Verdict("only_new")
        else:
            out[key] = compare_file(old[key], new[key])
    return out


def _group(key: str) -> str:
    parent = key.rsplit("/", 1)[0] if "/" in key else "."
    return parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--limit", type=int, default=40, help="differing files to detail (default 40)")
    args = parser.parse_args(argv)
    verdicts = compare_trees(args.old, args.new)
    counts: Counter[tuple[str, str]] = Counter((_group(k), v.kind) for k, v in verdicts.items())
    print("| directory | verdict | files |\n|---|---|---:|")
    for (group, kind), n in sorted(counts.items()):
        print(f"| {group} | {kind} | {n} |")
    shown = 0
    print()
    for key, verdict in verdicts.items():
        if verdict.kind in ("identical", "equal") or shown >= args.limit:
            continue
        shown += 1
        print(f"- {key}: {verdict.kind} {verdict.detail}".rstrip())
    total = Counter(v.kind for v in verdicts.values())
    print(
        f"summary: files={len(verdicts)} identical={total['identical']} equal={total['equal']} "
        f"differ={total['differs']} only_old={total['only_old']} only_new={total['only_new']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
