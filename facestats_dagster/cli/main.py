"""facestats: analyse a folder of photos (`facestats run PHOTOS`), its demo, and its model and composite helpers.

`facestats run PHOTOS` reads the photos in place and keeps results, settings (`facestats.toml`), the
Dagster home and the log in a project folder; `facestats update --project DIR` (cron), `facestats demo`
(`make demo`) and `facestats ui` use the same project and the same run path. Settings: flag >
environment variable > project file > default (`facestats settings` shows each value and its source).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from facestats_dagster.cli import analyse, composites, models, pipeline, score
from facestats_dagster.cli.dagster_runs import dagster_env, sibling_command
from facestats_dagster.settings import (
    SettingsError,
    add_setting_flags,
    configure,
    effective_rows,
    flags_from,
    settings_markdown,
)
from facestats_demo.random_clip import build_random_clip
from facestats_demo.train_clip import train_demo_clip


def cmd_build_clip(args: argparse.Namespace) -> int:
    """A seeded random CLIP of a preset, or (`--train`) the demo CLIP trained on demo faces."""
    import time

    if args.train:
        started = time.perf_counter()
        out = train_demo_clip(Path(args.out), progress=lambda line: print(line, flush=True))
        print(f"trained the demo CLIP in {time.perf_counter() - started:.0f} s; saved to {out}")
        return 0

    out = build_random_clip(Path(args.out), preset=args.preset, seed=args.seed)
    print(f"saved a random {args.preset} CLIP to {out}")
    return 0


def cmd_settings(args: argparse.Namespace, flags: dict[str, object]) -> int:
    """Every effective value and its source, or (`--table`) README's table of every setting."""
    if args.table:
        print(settings_markdown())
        return 0
    settings = configure(args.project, flags)
    where = settings.settings_file()
    print(f"# project: {settings.project or '(none)'}; file: {where if where and where.exists() else '(none)'}")
    rows = list(effective_rows(settings))
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        print(f"{key:<{width}} = {value}   # {source}")
    return 0


def cmd_ui(args: argparse.Namespace, flags: dict[str, object]) -> int:
    """The Dagster UI (`dagster dev`) on a project's runs, settings and assets."""
    import os

    project = args.project_dir or args.project
    configure(project, flags)
    workspace = Path(__file__).resolve().parents[2] / "workspace.yaml"
    command = [sibling_command("dagster"), "dev", "-h", args.host, "-p", str(args.port)]
    command += ["-w", str(workspace)] if workspace.exists() else ["-m", "facestats_dagster.definitions"]
    print(f"facestats ui: http://{args.host}:{args.port} on project {project or '(none: defaults and environment)'}",
          flush=True)
    os.execve(command[0], command, dagster_env())  # dagster dev takes this process over (and its signals)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facestats", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo_data = sub.add_parser("demo-data", help="write the synthetic demo faces, labels and ratings")
    demo_data.add_argument("--data-root", default="data", help="where to write raw/ and labels/ (default data)")
    demo_data.add_argument("--n-images", type=int, default=600, help="number of demo faces (default 600)")
    demo_data.add_argument("--size", type=int, default=256, help="side of each demo image in pixels (default 256)")
    demo_data.add_argument("--seed", type=int, default=0, help="random seed of faces, labels and ratings")
    demo_data.add_argument("--reference-root", default=None,
                           help="write the labelled faces there (a reference set) and unlabelled ones to the data "
                           "root, their true labels kept as labels/truth_*.csv for evaluation only")
    demo_data.add_argument("--reference-images", type=int, default=None,
                           help="number of labelled reference faces with --reference-root (default: --n-images)")
    demo_data.set_defaults(func=pipeline.cmd_demo_data)

    run = sub.add_parser("run", help="analyse a folder of photos in place; results in a project folder",
                         description="Analyse PHOTOS (read only: never moved, copied or changed). Results, "
                         "settings (facestats.toml, written on the first run, updated with the flags given), "
                         "the Dagster home and the log go to the project folder (--project; default "
                         "./facestats-<folder name>, or ~/facestats/<folder name> when run inside PHOTOS).")
    run.add_argument("photos", help="the folder of photos (sub-folders included)")
    _setting_flags(run)
    run.set_defaults(func=pipeline.cmd_run)

    update = sub.add_parser("update", help="bring a project up to date with its settings (for cron)")
    _setting_flags(update)
    update.set_defaults(func=pipeline.cmd_update)

    ui = sub.add_parser("ui", help="the Dagster UI on a project's runs and settings")
    ui.add_argument("project_dir", nargs="?", default=None, metavar="PROJECT", help="the project folder")
    ui.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=3000, help="port of the UI (default 3000)")
    _setting_flags(ui, verbose=False)
    ui.set_defaults(func=cmd_ui)

    demo = sub.add_parser("demo", help="demo data + the whole pipeline, as a project in the working directory")
    demo.add_argument("--n-images", type=int, default=600, help="number of demo faces when generating (default 600)")
    demo.add_argument("--reference-images", type=int, default=1500,
                      help="number of labelled reference faces the probes and the regressor train on (default 1500)")
    demo.add_argument("--regenerate", action="store_true", help="rewrite the demo data even if present")
    _setting_flags(demo)
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

    settings = sub.add_parser("settings", help="every setting's value in effect and where it came from")
    settings.add_argument("--table", action="store_true", help="print README's table of every setting instead")
    _setting_flags(settings, verbose=False)
    settings.set_defaults(func=cmd_settings)

    analyse.register(sub)
    composites.register(sub)
    models.register(sub)
    for name in ("analyse", "score"):  # they build the resources: the project's settings apply
        _setting_flags(sub.choices[name], verbose=False)
    return parser


def _setting_flags(parser: argparse.ArgumentParser, verbose: bool = True) -> None:
    """`--project`, one flag per setting (generated from the declarations) and `-v`."""
    add_setting_flags(parser)
    if verbose:
        parser.add_argument("-v", "--verbose", action="store_true", help="stream Dagster's event log to the terminal")
    parser.set_defaults(takes_settings=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "takes_settings", False):
            flags = flags_from(args)
            configure(args.project, flags)  # checked here, before anything runs
            if args.func in (analyse.cmd_analyse, score.cmd_score):
                return int(args.func(args))
            return int(args.func(args, flags))
        return int(args.func(args))
    except SettingsError as exc:
        print(f"facestats: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
