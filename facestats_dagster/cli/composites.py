"""facestats composites: manage the filter specs that partition the `composite` asset.

  add SPEC [SPEC ...]  validate each spec, print its canonical form and slug, and add it as a
                       `composite_specs` partition of the Dagster instance in $DAGSTER_HOME
                       (default ./.dagster_home, as `make ui` uses)
  list                 the registered specs (and whether their composite is on disk) and the
                       YAML specs not registered yet
  sync                 add every spec of config/composites.yaml (what the sensor does, without
                       the daemon)
  build                sync, then materialize the YAML's composites in this process, in
                       as few Dagster runs as possible (one partition range per block of
                       consecutively registered specs), as `facestats update` does

Materialize one with `dagster asset materialize -m facestats_dagster.definitions --select
composite --partition 'SPEC'` (the canonical form), or in the UI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from facestats_core.composites.filter_spec import FilterSpecError, parse_spec
from facestats_core.composites.not_built import is_built
from facestats_core.composites.spec_config import read_spec_config
from facestats_core.io.layout import Layout
from facestats_dagster.cli.dagster_runs import composite_runs, ensure_dagster_home, execute_runs, open_instance
from facestats_dagster.names import COMPOSITE_SPECS
from facestats_dagster.settings import load_settings


def _specs_file(args: argparse.Namespace) -> Path:
    return Path(args.config or load_settings()["composites.specs_file"])


def _instance() -> Any:
    return open_instance()


def _add(instance: Any, canonical: list[str]) -> list[str]:
    """Add the specs that are not partitions yet (order kept); return the added ones."""
    existing = set(instance.get_dynamic_partitions(COMPOSITE_SPECS))
    new = [spec for spec in dict.fromkeys(canonical) if spec not in existing]
    if new:
        instance.add_dynamic_partitions(COMPOSITE_SPECS, new)
    return new


def cmd_add(args: argparse.Namespace) -> int:

    specs = []
    for text in args.spec:
        try:
            specs.append(parse_spec(text))
        except FilterSpecError as exc:
            print(f"facestats composites add: invalid spec {text!r}: {exc}", file=sys.stderr)
            return 2
    with _instance() as instance:
        added = set(_add(instance, [spec.canonical for spec in specs]))
    for spec in specs:
        state = "added" if spec.canonical in added else "already registered"
        print(f"{spec.canonical}\tslug={spec.slug}\t{state}")
    if added:
        print("materialize with: dagster asset materialize -m facestats_dagster.definitions --select composite "
              f"--partition '{specs[0].canonical}'")
    return 0


def sync_specs(path: Path) -> tuple[Any, list[str]]:
    """Register every valid spec of the YAML at `path` as a partition: `(the read config, the specs added)`;
    `OSError` when the file cannot be read."""

    config = read_spec_config(path)
    with _instance() as instance:
        added = _add(instance, config.canonical)
    return config, added


def sync_quietly(path: Path, note: Any) -> int:
    """`sync_specs` for a run: one `note(line)` with the counts (and one per invalid spec); 2 when unreadable."""
    try:
        config, added = sync_specs(path)
    except OSError as exc:
        note(f"cannot read the composites config {path}: {exc.strerror or exc}")
        return 2
    for error in config.errors:
        note(f"{path}: {error} (skipped)")
    note(f"composite specs: {len(config.entries)} in {path.name}, {len(added)} new, {len(config.errors)} invalid")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    path = _specs_file(args)
    try:
        config, added = sync_specs(path)
    except OSError as exc:
        print(f"facestats composites sync: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for error in config.errors:
        print(f"{path}: {error} (skipped)", file=sys.stderr)
    print(f"{path}: {len(config.entries)} specs, {len(added)} added, "
          f"{len(config.entries) - len(added)} already registered, {len(config.errors)} invalid")
    for spec in added:
        print(f"  + {spec}")
    return 1 if config.errors and args.strict else 0


def cmd_list(args: argparse.Namespace) -> int:

    layout = load_settings().paths.layout()
    with _instance() as instance:
        registered = list(instance.get_dynamic_partitions(COMPOSITE_SPECS))
    rows = []
    for key in registered:
        try:
            slug = parse_spec(key).slug
        except FilterSpecError:
            rows.append({"spec": key, "slug": None, "status": "invalid"})
            continue
        sidecar = layout.composites_dir / f"{slug}.json"
        status = "not built"
        if sidecar.exists():
            with sidecar.open("r") as fh:
                meta = json.load(fh)
            status = (f"built, {meta.get('used')} faces" if is_built(meta)
                      else f"not built: {meta.get('reason')}")
        rows.append({"spec": key, "slug": slug, "status": status})
    path = _specs_file(args)
    unregistered: list[str] = []
    if path.exists():
        unregistered = [spec for spec in read_spec_config(path).canonical if spec not in set(registered)]
    if args.json:
        print(json.dumps({"registered": rows, "in_yaml_not_registered": unregistered}, indent=2))
        return 0
    print(f"{len(rows)} registered composite specs (DAGSTER_HOME={ensure_dagster_home()}):")
    width = max((len(r["spec"]) for r in rows), default=4)
    for row in rows:
        print(f"  {row['spec']:<{width}}  {row['slug'] or '-'}  [{row['status']}]")
    if unregistered:
        print(f"{len(unregistered)} specs in {path} not registered yet (run `facestats composites sync`):")
        for spec in unregistered:
            print(f"  {spec}")
    return 0


def registered_specs() -> list[str]:
    """The `composite_specs` partitions of the instance in `$DAGSTER_HOME`, in the order they were added."""
    with _instance() as instance:
        return list(instance.get_dynamic_partitions(COMPOSITE_SPECS))


def cmd_build(args: argparse.Namespace) -> int:
    """Sync the YAML, then materialize its composites in as few Dagster runs as possible (`execute_runs`)."""

    code = cmd_sync(args)
    if code:
        return code
    wanted = read_spec_config(_specs_file(args)).canonical
    return execute_runs(composite_runs(registered_specs(), wanted), who="facestats composites build")


def register(subparsers: Any) -> None:
    """Add the `composites` command group to the `facestats` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "composites", help="composite-face filter specs (add, list, sync, build)", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="composites_command")

    add = sub.add_parser("add", help="validate specs and add them as composite partitions")
    add.add_argument("spec", nargs="+", help="filter spec, e.g. 'gender=female,age=20-29,attractiveness=top10'")
    add.set_defaults(func=cmd_add)

    listing = sub.add_parser("list", help="registered specs and their composites")
    listing.add_argument("--config", help="specs YAML (default: FACESTATS_COMPOSITES_CONFIG, else config/composites.yaml)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=cmd_list)

    sync = sub.add_parser("sync", help="add every spec of the YAML as a partition (what the sensor does)")
    sync.add_argument("--config", help="specs YAML (default: FACESTATS_COMPOSITES_CONFIG, else config/composites.yaml)")
    sync.add_argument("--strict", action="store_true", help="exit 1 when the YAML has invalid entries")
    sync.set_defaults(func=cmd_sync)

    build = sub.add_parser(
        "build", help="sync the YAML, then materialize its composites (Dagster runs in this process)"
    )
    build.add_argument("--config", help="specs YAML (default: FACESTATS_COMPOSITES_CONFIG, else config/composites.yaml)")
    build.add_argument("--strict", action="store_true", help="stop when the YAML has invalid entries")
    build.set_defaults(func=cmd_build)
