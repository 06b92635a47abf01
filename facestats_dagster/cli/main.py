"""facestats: run the FaceStats pipeline, its demo, and its model and composite helpers.

`facestats demo` is what `make demo` runs: it writes the demo faces, picks a CLIP model, and
materializes the pipeline the way `facestats update` does for cron: Dagster runs in one process,
as few as the partitions allow, recorded in $DAGSTER_HOME (README.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from facestats_dagster.cli import analyse, composites, models, pipeline, score
from facestats_dagster.settings import environment_settings, load_settings, settings_markdown


def cmd_build_clip(args: argparse.Namespace) -> int:
    """A seeded random CLIP of a preset, or (`--train`) the demo CLIP trained on demo faces."""
    import time

    if args.train:
        from facestats_demo.train_clip import train_demo_clip

        started = time.perf_counter()
        out = train_demo_clip(Path(args.out), progress=lambda line: print(line, flush=True))
        print(f"trained the demo CLIP in {time.perf_counter() - started:.0f} s; saved to {out}")
        return 0
    from facestats_demo.random_clip import build_random_clip

    out = build_random_clip(Path(args.out), preset=args.preset, seed=args.seed)
    print(f"saved a random {args.preset} CLIP to {out}")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    """The settings table (README's) or, with --values, every setting's current value."""
    if not args.values:
        print(settings_markdown())
        return 0
    for name, value in environment_settings().items():
        print(f"{name}={value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facestats", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo_data = sub.add_parser("demo-data", help="write the synthetic demo faces, labels and ratings")
    demo_data.add_argument("--data-root", default=load_settings(resolve_clip=False).data_root,
                           help="where to write raw/ and labels/ (default: FACESTATS_DATA_ROOT, else data)")
    demo_data.add_argument("--n-images", type=int, default=600, help="number of demo faces (default 600)")
    demo_data.add_argument("--size", type=int, default=256, help="side of each demo image in pixels (default 256)")
    demo_data.add_argument("--seed", type=int, default=0, help="random seed of faces, labels and ratings")
    demo_data.add_argument("--reference-root", default=None,
                           help="write the labelled faces there (a reference set) and unlabelled ones to the data "
                           "root, their true labels kept as labels/truth_*.csv for evaluation only")
    demo_data.add_argument("--reference-images", type=int, default=None,
                           help="number of labelled reference faces with --reference-root (default: --n-images)")
    demo_data.set_defaults(func=pipeline.cmd_demo_data)

    update = sub.add_parser("update", help="materialize everything: Dagster runs in this process (for cron)")
    update.set_defaults(func=pipeline.cmd_update)

    demo = sub.add_parser("demo", help="demo data + the whole pipeline (as update does)")
    demo.add_argument("--n-images", type=int, default=600, help="number of demo faces when generating (default 600)")
    demo.add_argument("--reference-images", type=int, default=1500,
                      help="number of labelled reference faces the probes and the regressor train on (default 1500)")
    demo.add_argument("--regenerate", action="store_true", help="rewrite the demo data even if present")
    demo.set_defaults(func=pipeline.cmd_demo)

    build = sub.add_parser("build-clip", help="save a seeded random CLIP (tests, benchmarks) or train the demo CLIP")
    build.add_argument("--train", action="store_true",
                       help="train the demo CLIP on synthetic demo faces (what facestats_demo/demo_clip holds; "
                            "deterministic, about 20 min on one core)")
    build.add_argument("--preset", default="small", choices=["tiny", "small", "demo", "vit-b-32"],
                       help="model size of a random CLIP (default small)")
    build.add_argument("--out", required=True, help="folder to save the model, processor and tokenizer in")
    build.add_argument("--seed", type=int, default=0, help="seed of the random weights (not with --train)")
    build.set_defaults(func=cmd_build_clip)

    score_cmd = sub.add_parser("score", help="attractiveness score and percentile of image files")
    score_cmd.add_argument("images", nargs="+", help="image files (any format FaceStats reads)")
    score_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
    score_cmd.set_defaults(func=score.cmd_score)

    settings = sub.add_parser("settings", help="the FACESTATS_* settings: defaults and meaning, or current values")
    settings.add_argument("--values", action="store_true", help="print each setting's current value instead")
    settings.set_defaults(func=cmd_settings)

    analyse.register(sub)
    composites.register(sub)
    models.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
