"""``facestats composites …`` subcommands (filled in by the composites stage)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``composites`` command group to the ``facestats`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser("composites", help="composite-face filter specs")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
