"""`facestats analyse IMAGE...`: every face of some image files with its gender, age bin, ethnicity,
tags and attractiveness score — found, cut out, embedded and predicted with the pipeline's code.

Models, in order (the pipeline's own rule, `facestats_core.models.model_source`): the bundle of
`FACESTATS_MODELS`, else the probes and regressor the pipeline trained (`<model root>`), else CLIP
zero-shot prompts (no score then).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from facestats_core.attractiveness.model_file import load_regressor
from facestats_core.embedding.loader import ClipLoadError
from facestats_core.models.bundle import BundleMismatchError
from facestats_core.models.classifier_file import load_classifiers
from facestats_core.models.face_predictions import attributes_without_probes, face_attribute_table
from facestats_core.models.model_source import Available, ModelSources, decide_model_sources
from facestats_core.models.prompt_models import prompt_models
from facestats_core.models.store import ModelIntegrityError, PickleFormatError, absent_reason
from facestats_core.models.tag_config import read_tag_config
from facestats_dagster.cli.face_rows import embed_files
from facestats_dagster.defs.resources import build_resources
from facestats_dagster.settings import load_settings


def _models(resources: dict[str, Any], clip: Any) -> tuple[dict[str, Any], Any, ModelSources]:
    """`(probes, regressor or None, the decision)`: the bundle's models, else those the pipeline stored
    in the model root, else zero-shot and no score (`decide_model_sources`, with no set to train on)."""
    models, faces = resources["models"], resources["faces"]
    if models.bundle:
        bundle = models.compatible_bundle(clip, faces.chips().version)
        sources = decide_model_sources(Available(bundle=models.bundle,
                                                 bundle_has_regressor=bundle.regressor is not None))
        return bundle.classifiers, bundle.regressor, sources
    root = resources["paths"].layout().model_root
    try:
        probes = load_classifiers(root)
    except PickleFormatError:
        raise  # an old pickle-format model root: say how to re-create it rather than fall back silently
    except (FileNotFoundError, ModelIntegrityError):
        probes = {}
    regressor = None
    if absent_reason(root, "attractiveness_regressor") is None:
        try:
            regressor = load_regressor(root)
        except (FileNotFoundError, ModelIntegrityError):
            regressor = None
    sources = decide_model_sources(Available(stored_root=str(root), stored_probes=bool(probes),
                                             stored_regressor=regressor is not None))
    return probes, regressor, sources


def _summary(sources: ModelSources, resources: dict[str, Any]) -> str:
    """One phrase for both targets: the bundle, the model root, or zero-shot."""
    kinds = {sources.attributes.source, sources.attractiveness.source}
    if "bundle" in kinds:
        return f"bundle {resources['models'].bundle}"
    if "stored" in kinds:
        return f"models in {resources['paths'].layout().model_root}"
    return "zero-shot (no trained models)"


def _tags(path: str) -> tuple[Any, ...]:
    return tuple(read_tag_config(Path(path))) if path and Path(path).exists() else ()


def analyse_files(images: list[str], resources: dict[str, Any]) -> tuple[list[dict[str, Any]], ModelSources]:
    """One row per face (or per image without one), and where the models came from."""
    clip = resources["clip"].load()
    probes, regressor, sources = _models(resources, clip)
    tags = _tags(resources["models"].tags_file)
    with tempfile.TemporaryDirectory() as tmp:
        found = embed_files(images, resources, clip, Path(tmp))
        rows = found.rows
        if not found.row_of:
            return rows, sources
        prompts = None
        if attributes_without_probes(probes) or tags:
            prompts = prompt_models(clip, tags, cache_dir=resources["paths"].layout().model_root / "text_cache")
        table = face_attribute_table(found.embeddings, probes, prompts)
        scores = regressor.predict(found.embeddings) if regressor is not None else None
        for i, position in enumerate(found.row_of):
            row = rows[position]
            for attr in ("gender", "age", "ethnicity"):
                row[attr] = table[f"{attr}_pred"][i]
                row[f"{attr}_prob"] = round(float(table[f"{attr}_prob"][i]), 3)
                row[f"{attr}_method"] = table[f"{attr}_method"][i]
            row["tags"] = {spec.name: round(float(table[f"tag_{spec.name}"][i]), 3) for spec in tags}
            row["score"] = None if scores is None else round(float(scores[i]), 3)
    return rows, sources


def _print(rows: list[dict[str, Any]], source: str) -> None:
    print(f"models: {source}")
    print(f"{'image':36s} {'face':>4s}  {'gender':14s} {'age':12s} {'ethnicity':22s} {'score':>5s}  tags")
    for row in rows:
        face = "-" if row.get("face") is None else str(row["face"])
        if row.get("gender") is None:
            print(f"{str(row['image']):36s} {face:>4s}  {row.get('error') or '-'}")
            continue
        cells = [f"{row[a]} {row[f'{a}_prob']:.2f}" for a in ("gender", "age", "ethnicity")]
        tags = ", ".join(name for name, p in row["tags"].items() if p >= 0.5) or "-"
        score = "-" if row["score"] is None else f"{row['score']:.2f}"
        print(f"{str(row['image']):36s} {face:>4s}  {cells[0]:14s} {cells[1]:12s} {cells[2]:22s} {score:>5s}  {tags}")


def cmd_analyse(args: argparse.Namespace) -> int:
    resources = build_resources(load_settings())
    try:
        rows, sources = analyse_files(list(args.images), resources)
    except (ClipLoadError, BundleMismatchError, ModelIntegrityError) as exc:
        print(f"facestats analyse: {exc}", file=sys.stderr)
        return 2
    source = _summary(sources, resources)
    if args.json:
        decided = {d.target: {"source": d.source, "reason": d.reason}
                   for d in (sources.attributes, sources.attractiveness)}
        print(json.dumps({"models": source, "model_sources": decided, "faces": rows}, indent=2))
    else:
        _print(rows, source)
    return 0 if any(row.get("gender") is not None for row in rows) else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("analyse", help="faces of image files with attributes, tags and score",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", help="image files (any format FaceStats reads)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=cmd_analyse)
