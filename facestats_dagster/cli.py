"""The ``facestats`` command line: demo data, demo run, model helpers.

``facestats demo`` is what ``make demo`` runs: it writes the demo faces,
picks a CLIP model, and materializes the pipeline through the real
``dagster asset materialize`` commands that README.md documents for cron.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

DEFINITIONS_MODULE = "facestats_dagster.definitions"
FALLBACK_MODEL_DIR = "clip-small-random"


def materialize_commands(dagster: str = "dagster", specs_file: str | None = None) -> list[list[str]]:
    """The commands that bring every artifact up to date, in order (``facestats update`` runs them;
    README's cron section lists them): image shards, analysis, master table, composites, contact
    sheet, report."""
    from facestats_dagster.composites_cli import ANALYSIS_SELECTION, demo_composite_commands
    from facestats_dagster.partitions import ALL_SHARDS_RANGE

    base = [dagster, "asset", "materialize", "-m", DEFINITIONS_MODULE]
    return [
        [*base, "--select", IMAGE_SELECTION, "--partition-range", ALL_SHARDS_RANGE],
        [*base, "--select", ANALYSIS_SELECTION],
        *demo_composite_commands(dagster, specs_file=specs_file, include_aligned=False),
        [*base, "--select", "stats_report"],
    ]


IMAGE_SELECTION = "raw_images,preprocessed_images,embedding_shards,aligned_faces"


def run_commands(commands: list[list[str]], env: dict[str, str]) -> int:
    """Run each command, echoing it; stop at the first failure and return its exit code."""
    for command in commands:
        shown = [Path(command[0]).name, *command[1:]]
        print("$ " + " ".join(f"'{part}'" if " " in part else part for part in shown), flush=True)
        completed = subprocess.run(command, env=env, check=False)
        if completed.returncode != 0:
            print(f"facestats: the command above failed with exit code {completed.returncode}", file=sys.stderr)
            return completed.returncode
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    """Materialize everything with the configured settings (what cron runs)."""
    env = {**os.environ, "DAGSTER_HOME": str(ensure_dagster_home())}
    dagster = str(Path(sys.executable).with_name("dagster"))
    return run_commands(materialize_commands(dagster), env)


def _roots() -> tuple[Path, Path]:
    return (
        Path(os.environ.get("FACESTATS_DATA_ROOT") or "data"),
        Path(os.environ.get("FACESTATS_MODEL_ROOT") or "models"),
    )


def cmd_demo_data(args: argparse.Namespace) -> int:
    from facestats_demo.faces import DemoSpec, generate_demo_dataset
    from facestats_demo.edge_cases import write_edge_cases

    root = Path(args.data_root)
    dataset = generate_demo_dataset(root, DemoSpec(n_images=args.n_images, size=args.size, seed=args.seed))
    edge = write_edge_cases(root / "raw" / "edge_cases", seed=args.seed)
    print(f"wrote {dataset.n_images} demo faces to {dataset.images_dir}")
    print(f"wrote {len(edge)} edge-case files to {root / 'raw' / 'edge_cases'}")
    print(f"labels: {dataset.fairface_labels}, ratings: {dataset.ratings}")
    return 0


def cmd_build_clip(args: argparse.Namespace) -> int:
    from facestats_demo.random_clip import build_random_clip

    out = build_random_clip(Path(args.out), preset=args.preset, seed=args.seed)
    print(f"saved a random {args.preset} CLIP to {out}")
    return 0


def _hub_reachable(host: str = "huggingface.co") -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def resolve_demo_model(model_root: Path) -> str:
    """``FACESTATS_CLIP_MODEL`` if set, else ViT-B/32 when loadable, else a seeded small CLIP (loudly)."""
    from facestats_demo.random_clip import build_random_clip
    from facestats_core.embedding.clip import DEFAULT_MODEL, ClipConfig, ClipLoadError, load_clip

    chosen = os.environ.get("FACESTATS_CLIP_MODEL")
    if chosen:
        return chosen
    reason = "huggingface.co cannot be reached from this machine"
    for local_only in (True, False):
        if not local_only and not _hub_reachable():
            break
        try:
            load_clip(ClipConfig(model=DEFAULT_MODEL, local_files_only=local_only))
            return DEFAULT_MODEL
        except ClipLoadError as exc:
            reason = str(exc).split(";")[0]
    fallback = model_root / FALLBACK_MODEL_DIR
    if not (fallback / "config.json").exists():
        build_random_clip(fallback, preset="small", seed=0)
    banner = "!" * 78
    print(
        f"\n{banner}\n"
        + textwrap.fill(
            f"NOTICE: {DEFAULT_MODEL} could not be loaded ({reason}). The demo runs on a SEEDED "
            f"RANDOM small CLIP saved at {fallback}: its embeddings are random features, not "
            "semantic CLIP features, so attribute numbers from it say nothing about real CLIP. "
            "Set FACESTATS_CLIP_MODEL to a real CLIP folder or model id for real results.",
            width=78,
        )
        + f"\n{banner}\n",
        flush=True,
    )
    return str(fallback)


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME (default ``.dagster_home``), created with telemetry off when new."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return home


def cmd_demo(args: argparse.Namespace) -> int:
    data_root, model_root = _roots()
    labels = data_root / "labels" / "fairface_labels.csv"
    if not labels.exists() or args.regenerate:
        cmd_demo_data(argparse.Namespace(data_root=str(data_root), n_images=args.n_images, size=256, seed=0))
    model = resolve_demo_model(model_root)
    from facestats_core.io.atomic import atomic_write_text
    from facestats_dagster.resources import CLIP_POINTER_FILE

    atomic_write_text(model_root / CLIP_POINTER_FILE, model + "\n")
    env = {
        **os.environ,
        "FACESTATS_CLIP_MODEL": model,
        "FACESTATS_DATA_ROOT": str(data_root.absolute()),
        "FACESTATS_MODEL_ROOT": str(model_root.absolute()),
        "DAGSTER_HOME": str(ensure_dagster_home()),
    }
    dagster = str(Path(sys.executable).with_name("dagster"))
    code = run_commands(materialize_commands(dagster), env)
    if code:
        return code
    print_summary(data_root, model_root)
    return 0


def print_summary(data_root: Path, model_root: Path) -> None:
    """Where the outputs are, with their row counts, and how the attractiveness MLP compares."""
    import json

    import polars as pl

    from facestats_core.models.attractiveness import regressor_paths, regressor_summary
    from facestats_core.io.layout import Layout

    layout = Layout.from_roots(data_root, model_root)
    raw = layout.read_partitions("raw_images")
    pre = layout.read_partitions("preprocessed_images")
    embeddings = layout.read_artifact("embeddings_clip")
    if embeddings is None:
        print(f"facestats: no embeddings at {layout.artifact('embeddings_clip')}", file=sys.stderr)
        return
    unreadable = raw.filter(~pl.col("readable")) if raw is not None else None
    print("\nFaceStats demo finished. Outputs:")
    print(f"  raw manifest       {layout.artifact_dir('raw_images')}/  ({raw.height if raw is not None else 0} images,"
          f" {unreadable.height if unreadable is not None else 0} unreadable with reasons)")
    print(f"  preprocessed faces {layout.preproc_dir}/  ({int(pre['ok'].sum()) if pre is not None else 0} JPEGs)")
    print(f"  preprocess manifest {layout.artifact_dir('preprocessed_images')}/")
    print(f"  embeddings         {layout.artifact('embeddings_clip')}  ({embeddings.height} rows,"
          f" model {embeddings['model_id'][0] if embeddings.height else '-'})")
    regressor_json = regressor_paths(layout.model_root).metadata
    if regressor_json.exists():
        print(f"  attractiveness     {regressor_summary(json.loads(regressor_json.read_text()))}")
    master = layout.read_artifact("master_metadata", columns=["image_id"])
    if master is not None:
        print(f"  master table       {layout.artifact('master_metadata')}  ({master.height} rows)")
    composites = layout.composites_dir
    if composites.exists():
        made = sorted(p.name for p in composites.glob("*.png") if p.name != "contact_sheet.png")
        print(f"  composites         {composites}/  ({len(made)} composites + contact_sheet.png)")
    report = layout.report_dir / "index.html"
    if report.exists():
        print(f"  report             {report}")
    print("Open the Dagster UI with `make ui` (http://127.0.0.1:3000) to browse runs and metadata.")
    print("Score new images with `.venv/bin/facestats score IMAGE...`.")


def cmd_score(args: argparse.Namespace) -> int:
    """Score images with the trained regressor, exactly as the pipeline preprocesses and embeds."""
    import json
    import tempfile

    from facestats_core.models.attractiveness import load_regressor, percentile_against, predict_scores
    from facestats_core.embedding.clip import embed_paths
    from facestats_core.images.preprocess import preprocess_image
    from facestats_dagster.resources import from_env

    resources = from_env()
    layout = resources["paths"].layout()  # type: ignore[attr-defined]
    try:
        regressor = load_regressor(layout.model_root)
    except (FileNotFoundError, ValueError) as exc:
        print(f"facestats score: no usable attractiveness model in {layout.model_root} ({exc}); "
              "materialize attractiveness_regressor first (make demo).", file=sys.stderr)
        return 2
    from facestats_core.embedding.clip import ClipLoadError

    try:
        clip = resources["clip"].load()  # type: ignore[attr-defined]
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
    config = resources["preprocess"].config()  # type: ignore[attr-defined]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ready: list[tuple[int, Path]] = []
        for index, name in enumerate(args.images):
            try:
                data = Path(name).read_bytes()
            except OSError as exc:
                rows.append({"image": name, "error": f"cannot read: {exc.strerror or exc}"})
                continue
            result = preprocess_image(data, f"image{index:05d}", Path(tmp), config)
            rows.append({"image": name, "error": result.error})
            if result.ok:
                ready.append((len(rows) - 1, Path(tmp) / str(result.output_path)))
        embedded = embed_paths(clip, [path for _, path in ready], batch_size=clip_batch(resources))
        raw = predict_scores(regressor, embedded.embeddings) if len(embedded.ok_indices) else []
        percentiles = percentile_against(reference, raw) if reference is not None and len(raw) else [None] * len(raw)
        for position, score, percentile in zip(embedded.ok_indices, raw, percentiles, strict=True):
            row = rows[ready[position][0]]
            row["score"] = round(float(score), 4)
            row["percentile"] = None if percentile is None else round(float(percentile), 2)
        for position, reason in embedded.failures.items():
            rows[ready[position][0]]["error"] = reason
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        scale = f"percentile vs {len(reference)} scored images" if reference is not None else "no scored data set"
        print(f"{'image':40s} {'score (1-5)':>11s} {'percentile':>10s}   ({scale})")
        for row in rows:
            if row.get("score") is None:
                print(f"{str(row['image']):40s} {'-':>11s} {'-':>10s}   {row['error']}")
            else:
                pct = "-" if row["percentile"] is None else f"{row['percentile']:.1f}"
                print(f"{str(row['image']):40s} {row['score']:>11.3f} {pct:>10s}")
    return 0 if any(row.get("score") is not None for row in rows) else 1


def clip_batch(resources: dict[str, object]) -> int:
    return int(resources["clip"].batch_size)  # type: ignore[attr-defined]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facestats", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo_data = sub.add_parser("demo-data", help="write the synthetic demo faces, labels and ratings")
    demo_data.add_argument("--data-root", default=os.environ.get("FACESTATS_DATA_ROOT") or "data")
    demo_data.add_argument("--n-images", type=int, default=600)
    demo_data.add_argument("--size", type=int, default=256)
    demo_data.add_argument("--seed", type=int, default=0)
    demo_data.set_defaults(func=cmd_demo_data)

    update = sub.add_parser("update", help="materialize everything through the dagster CLI (for cron)")
    update.set_defaults(func=cmd_update)

    demo = sub.add_parser("demo", help="demo data + the whole pipeline through the dagster CLI")
    demo.add_argument("--n-images", type=int, default=600)
    demo.add_argument("--regenerate", action="store_true", help="rewrite the demo data even if present")
    demo.set_defaults(func=cmd_demo)

    build = sub.add_parser("build-clip", help="save a seeded random CLIP (tests, offline demo, benchmark)")
    build.add_argument("--preset", default="small", choices=["tiny", "small", "vit-b-32"])
    build.add_argument("--out", required=True)
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(func=cmd_build_clip)

    score = sub.add_parser("score", help="attractiveness score and percentile of image files")
    score.add_argument("images", nargs="+", help="image files (any format FaceStats reads)")
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")
    score.set_defaults(func=cmd_score)

    from facestats_dagster import composites_cli

    composites_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
