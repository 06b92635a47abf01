"""``composite_specs_sensor``: keeps the ``composite_specs`` partitions in sync with ``config/composites.yaml``.

Every evaluation reads the YAML (path: ``CompositesResource.specs_file``),
canonicalises each entry, adds the specs that are not partitions yet, and
requests one run per entry it has not requested before (only once the master table
exists: before that the specs are registered and their runs wait) (run key = canonical
spec + hash of the entry as written, so editing an entry requests it again).
The cursor remembers the requested run keys, so nothing is requested twice;
partitions that already have a materialization (e.g. built by ``make demo``)
are recorded without a run. Invalid entries are logged and skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from facestats_core.composites.spec_config import read_spec_config
from facestats_dagster.assets.composites import COMPOSITE_SPECS, composite, composite_specs
from facestats_dagster.resources import CompositesResource, PathsResource


def _load_cursor(cursor: str | None) -> dict[str, object]:
    if not cursor:
        return {"requested": [], "file_hash": ""}
    try:
        data = json.loads(cursor)
    except json.JSONDecodeError:
        return {"requested": [], "file_hash": ""}
    return data if isinstance(data, dict) else {"requested": [], "file_hash": ""}


@dg.sensor(
    name="composite_specs_sensor",
    target=composite,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds the filter specs of config/composites.yaml as composite_specs partitions and runs them.",
)
def composite_specs_sensor(
    context: dg.SensorEvaluationContext, composites: CompositesResource, paths: PathsResource
) -> dg.SensorResult | dg.SkipReason:
    path = Path(composites.specs_file)
    try:
        config = read_spec_config(path)
    except OSError as exc:
        return dg.SkipReason(f"cannot read {path.absolute()}: {exc.strerror or exc}")
    for error in config.errors:
        context.log.warning(f"{path}: {error} (skipped)")
    for duplicate in config.duplicates:
        context.log.info(f"{path}: {duplicate} (skipped)")
    cursor = _load_cursor(context.cursor)
    requested = set(cursor.get("requested", []))  # type: ignore[arg-type]
    existing = set(context.instance.get_dynamic_partitions(COMPOSITE_SPECS))
    new_partitions = [entry.canonical for entry in config.entries if entry.canonical not in existing]
    pending = [entry for entry in config.entries if entry.run_key not in requested]
    if not paths.layout().artifact("master_metadata").exists():
        # Nothing to average yet: register the specs now, run them once the master table exists
        # (declarative automation also rebuilds composites when master_metadata updates).
        pending = []
    materialized: set[str] = set()
    if pending and existing:
        materialized = set(context.instance.get_materialized_partitions(composite.key))
    run_requests = [
        dg.RunRequest(run_key=entry.run_key, partition_key=entry.canonical, tags={"facestats/spec": entry.canonical})
        for entry in pending
        if entry.canonical not in materialized
    ]
    if not new_partitions and not pending:
        return dg.SkipReason(f"{len(config.entries)} specs in {path}, none new")
    for entry in pending:
        if entry.canonical in materialized:
            context.log.info(f"{entry.canonical!r} is already materialized: recorded without a run")
    new_cursor = {
        "requested": sorted(requested | {entry.run_key for entry in pending}),
        "file_hash": config.file_hash,
    }
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[composite_specs.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(new_cursor),
    )
