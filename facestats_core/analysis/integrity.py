"""Consistency checks between artifacts (the asset checks of ``facestats_dagster.checks`` call these).

Each function takes data (or a folder) and returns a plain report dict: counts plus
the offending ids, never raising on bad data.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl

from facestats_core.composites.filter_spec import FilterSpecError, parse_spec
from facestats_core.composites.not_built import is_built

NORM_TOLERANCE = 1e-3


def embedding_health(table: pl.DataFrame, tolerance: float = NORM_TOLERANCE) -> dict[str, Any]:
    """NaN/inf rows and rows whose L2 norm is off 1 by ``tolerance`` or more (``embeddings_clip``)."""
    ids = table["face_id"].to_list()
    if table.height == 0:
        return {"rows": 0, "non_finite_ids": [], "bad_norm_ids": [], "norm_min": None, "norm_max": None}
    matrix = np.asarray(table["embedding"].to_numpy(), dtype=np.float64)
    finite = np.isfinite(matrix).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(matrix), matrix, 0.0), axis=1)
    bad_norm = finite & (np.abs(norms - 1.0) >= tolerance)
    return {
        "rows": table.height,
        "non_finite_ids": [ids[i] for i in np.flatnonzero(~finite)],
        "bad_norm_ids": [ids[i] for i in np.flatnonzero(bad_norm)],
        "norm_min": float(norms[finite].min()) if finite.any() else None,
        "norm_max": float(norms[finite].max()) if finite.any() else None,
    }


def id_coverage(expected: Iterable[str], actual: Iterable[str]) -> dict[str, Any]:
    """Which ``expected`` ids are missing from ``actual`` (and which ``actual`` ids are extra)."""
    want, have = set(expected), list(actual)
    have_set = set(have)
    return {
        "expected": len(want),
        "present": len(want & have_set),
        "missing_ids": sorted(want - have_set),
        "extra_ids": sorted(have_set - want),
        "duplicate_ids": sorted(i for i, n in Counter(have).items() if n > 1),
    }


def composite_sidecar_problems(folder: Any) -> dict[str, Any]:
    """Check every ``<slug>.json`` in the composites ``folder`` (Path or UPath) against its image.

    Per sidecar: the json parses; a not-built one (``status: not_built``) has a reason and no picture; its ``spec`` is a valid filter spec in canonical form whose slug
    is the file's stem; the image file (``image_file``, else ``<slug>.png``) exists and opens; its
    size is the json's ``size`` (or ``alignment.output_size`` squared) when recorded;
    ``used`` + read ``failures`` == ``len(face_ids)``; ``used`` <= ``matched``;
    ``used`` >= ``min_faces`` when recorded. Returns ``{"checked", "problems": {slug: [reasons]}}``.
    """
    from PIL import Image

    problems: dict[str, list[str]] = {}
    sidecars = sorted(folder.glob("*.json")) if folder.exists() else []
    for sidecar in sidecars:
        stem = sidecar.name[: -len(".json")]
        found: list[str] = []
        try:
            with sidecar.open("r") as fh:
                meta = json.load(fh)
        except (OSError, ValueError) as exc:
            problems[stem] = [f"unreadable json: {exc}"]
            continue
        if not isinstance(meta, dict):
            problems[stem] = ["json is not an object"]
            continue
        if not is_built(meta):
            if not meta.get("reason"):
                problems[stem] = ["not-built composite without a reason"]
            elif any((folder / f"{stem}.{fmt}").exists() for fmt in ("png", "jpg")):
                problems[stem] = ["not-built composite has a picture beside it"]
            continue
        spec_text = meta.get("spec")
        try:
            spec = parse_spec(str(spec_text))
        except FilterSpecError as exc:
            found.append(f"spec {spec_text!r} does not parse: {exc}")
        else:
            if spec.canonical != spec_text:
                found.append(f"spec {spec_text!r} is not canonical (re-parses to {spec.canonical!r})")
            elif parse_spec(spec.canonical).canonical != spec.canonical:
                found.append(f"canonical spec {spec.canonical!r} does not re-parse to itself")
            if spec.slug != stem or meta.get("slug", stem) != stem:
                found.append(
                    f"slug {spec.slug!r} (json says {meta.get('slug')!r}) does not match file {sidecar.name}"
                )
        face_ids = meta.get("face_ids")
        used, matched = meta.get("used"), meta.get("matched")
        failures = meta.get("failures") or []
        if not isinstance(face_ids, list) or not isinstance(used, int):
            found.append("json lacks face_ids or used")
        else:
            if used + len(failures) != len(face_ids):
                found.append(f"used={used} + {len(failures)} read failures != {len(face_ids)} face_ids")
            if len(set(face_ids)) != len(face_ids):
                found.append("face_ids has duplicates")
            if isinstance(matched, int) and used > matched:
                found.append(f"used={used} > matched={matched}")
            min_faces = meta.get("min_faces")
            if isinstance(min_faces, int) and used < min_faces:
                found.append(f"used={used} < min_faces={min_faces}")
        image_path = folder / str(meta.get("image_file") or f"{stem}.png")
        if not image_path.exists():
            found.append(f"image {image_path.name} is missing")
        else:
            try:
                with image_path.open("rb") as fh:
                    with Image.open(io.BytesIO(fh.read())) as picture:
                        size = picture.size
            except (OSError, ValueError) as exc:
                found.append(f"image {image_path.name} does not open: {exc}")
            else:
                expected = _recorded_size(meta)
                if expected is not None and tuple(size) != tuple(expected):
                    found.append(
                        f"image {image_path.name} is {size[0]}x{size[1]}, json says {expected[0]}x{expected[1]}"
                    )
        if found:
            problems[stem] = found
    return {"checked": len(sidecars), "problems": problems}


def _recorded_size(meta: dict[str, Any]) -> tuple[int, int] | None:
    size = meta.get("size")
    if isinstance(size, int):
        return (size, size)
    if isinstance(size, list | tuple) and len(size) == 2:
        return (int(size[0]), int(size[1]))
    side = (meta.get("alignment") or {}).get("output_size")
    return (int(side), int(side)) if isinstance(side, int) else None
