"""`facestats models describe BUNDLE`: what a model bundle holds and what it was trained with."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from facestats_core.models.bundle import describe_bundle, read_bundle
from facestats_core.models.store import ModelIntegrityError


def cmd_describe(args: argparse.Namespace) -> int:
    """Print `describe_bundle` of the bundle at `args.bundle` (every payload sha256-checked on the way)."""

    try:
        bundle = read_bundle(args.bundle)
    except ModelIntegrityError as exc:  # ModelNotFoundError included
        print(f"facestats models describe: {exc}", file=sys.stderr)
        return 2
    print(describe_bundle(bundle))
    return 0


def register(subparsers: Any) -> None:
    """Add the `models` command group to the `facestats` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "models", help="model bundles (describe)", description=__doc__,
    )
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="models_command")
    describe = sub.add_parser("describe", help="print a bundle's training conditions, models and held-out metrics")
    describe.add_argument("bundle", help="bundle folder (local path or fsspec URL)")
    describe.set_defaults(func=cmd_describe)
