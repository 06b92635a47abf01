"""`facestats score IMAGE...`: attractiveness score and percentile of every face of image files,
found, cut out and embedded exactly as the pipeline does."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from facestats_core.analysis.scores import percentile_against
from facestats_core.attractiveness.model_file import load_regressor
from facestats_core.embedding.loader import ClipLoadError
from facestats_core.models.store import ModelIntegrityError, absent_reason
from facestats_dagster.cli.face_rows import embed_files
from facestats_dagster.defs.resources import build_resources
from facestats_dagster.settings import load_settings


def _print_table(rows: list[dict[str, Any]], reference_size: int | None) -> None:
    scale = f"percentile vs {reference_size} scored images" if reference_size is not None else "no scored data set"
    print(f"{'image':40s} {'face':>4s} {'score (1-5)':>11s} {'percentile':>10s}   ({scale})")
    for row in rows:
        face = "-" if row.get("face") is None else str(row["face"])
        if row.get("score") is None:
            print(f"{str(row['image']):40s} {face:>4s} {'-':>11s} {'-':>10s}   {row['error']}")
        else:
            pct = "-" if row["percentile"] is None else f"{row['percentile']:.1f}"
            print(f"{str(row['image']):40s} {face:>4s} {row['score']:>11.3f} {pct:>10s}")


def cmd_score(args: argparse.Namespace) -> int:
    """Score every face of the images with the trained regressor."""

    resources = build_resources(load_settings())
    layout = resources["paths"].layout()
    absent = absent_reason(layout.model_root, "attractiveness_regressor")
    if absent is not None:
        print(f"facestats score: no attractiveness model in {layout.model_root} ({absent}); configure ratings "
              "or a bundle and materialize attractiveness_regressor.", file=sys.stderr)
        return 2
    try:
        regressor = load_regressor(layout.model_root)
    except (FileNotFoundError, ModelIntegrityError, ValueError) as exc:
        print(f"facestats score: no usable attractiveness model in {layout.model_root} ({exc}); "
              "materialize attractiveness_regressor first (make demo).", file=sys.stderr)
        return 2
    try:
        clip = resources["clip"].load()
    except ClipLoadError as exc:
        print(f"facestats score: {exc}", file=sys.stderr)
        return 2
    scored = layout.read_artifact("attractiveness_scores", columns=["attractiveness_raw"])
    reference = scored["attractiveness_raw"].drop_nulls().to_numpy() if scored is not None else None
    embedded = layout.read_artifact("embeddings_clip", columns=["model_id", "model_revision"])
    if embedded is not None:
        trained_on = embedded.unique().rows()
        if trained_on and trained_on[0] != (clip.model_id, clip.revision):
            print(f"facestats score: the data set was embedded with {trained_on[0]}, but the configured CLIP is "
                  f"{(clip.model_id, clip.revision)}; set FACESTATS_CLIP_MODEL to the same model.", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        found = embed_files(list(args.images), resources, clip, Path(tmp))
    rows = found.rows
    raw = regressor.predict(found.embeddings) if found.row_of else []
    percentiles = percentile_against(reference, raw) if reference is not None and len(raw) else [None] * len(raw)
    for position, score, percentile in zip(found.row_of, raw, percentiles, strict=True):
        rows[position]["score"] = round(float(score), 4)
        rows[position]["percentile"] = None if percentile is None else round(float(percentile), 2)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows, len(reference) if reference is not None else None)
    return 0 if any(row.get("score") is not None for row in rows) else 1
