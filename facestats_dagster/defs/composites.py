"""Stage 7, composites: one average face per filter spec, and a contact sheet of them all.

`composite` is partitioned by `composite_specs`, a dynamic partitions definition whose keys are
canonical filter specs (`facestats_core.composites.filter_spec`). Specs are added by
`composite_specs_sensor` (from `config/composites.yaml`) or by `facestats composites add|sync`.
Building lives in `facestats_core.composites`; this module turns its results into UI metadata.

`composite_specs_sensor` reads the YAML on every evaluation, canonicalises each entry, adds the
specs that are not partitions yet, and requests one run per entry it has not requested before
(only once the master table exists: before that the specs are registered and their runs wait;
run key = canonical spec + hash of the entry as written, so editing an entry requests it again).
The cursor remembers the requested run keys, so nothing is requested twice; partitions that
already have a materialization (e.g. built by `make demo`) are recorded without a run. Invalid
entries are logged and skipped.
"""

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.composites.build import (
    BuiltComposite,
    CompositeError,
    CompositeSettings,
    build_composites,
    parse_partition_key,
)
from facestats_core.composites.contact_sheet import build_contact_sheet
from facestats_core.composites.not_built import record_not_built
from facestats_core.composites.purity import purity_from_face_truth, purity_text
from facestats_core.composites.spec_config import read_spec_config
from facestats_core.images.thumbnails import thumbnail_jpeg
from facestats_dagster.checks import COMPOSITE_CHECKS, composite_json_matches_image
from facestats_dagster.conditions import REFRESH_COMPOSITES, follow_upstream_except
from facestats_dagster.metadata import counts_table, image_markdown
from facestats_dagster.partitions import COMPOSITE_SPECS, composite_specs
from facestats_dagster.resources import CompositesResource, FacesResource, LabelsResource, PathsResource
from facestats_dagster.sensor_cursor import load_cursor
from facestats_dagster.truth import face_truth


def _settings(composites: CompositesResource, faces: FacesResource) -> CompositeSettings:
    return CompositeSettings(
        min_faces=composites.min_faces, relax=composites.relax, align=True,
        image_format=composites.image_format, alignment=composites.alignment(),
        method=composites.method, size=faces.composite_size, background=composites.background,
        min_confidence=composites.min_confidence,
    )


def _valid_spec(key: str) -> Any:
    """The spec of a canonical partition key, or None for a key that is not one."""
    try:
        return parse_partition_key(key)
    except CompositeError:
        return None


def _picture(path: Any, caption: str, side: int) -> dg.MetadataValue:
    """A small inline JPEG of `path`, so the Dagster UI shows the picture in the metadata panel."""
    return image_markdown(thumbnail_jpeg(path, side=side), alt=caption)


@dg.asset(
    group_name="composites",
    partitions_def=composite_specs,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"python", "png"},
    automation_condition=REFRESH_COMPOSITES,
    check_specs=COMPOSITE_CHECKS,
)
def composite(
    context: dg.AssetExecutionContext,
    master_metadata: pl.DataFrame,
    paths: PathsResource,
    composites: CompositesResource,
    faces: FacesResource,
    labels: LabelsResource,
) -> dg.MaterializeResult:
    """The average face of the faces a filter spec selects (partition key = canonical spec),
    from their composite chips (cut from the originals at `composite_size`): by default
    (`method=warp`) every face with 68-point landmarks is warped onto the mean landmark shape
    (Delaunay, piecewise affine), faces with only eye landmarks are eye-aligned (recorded);
    `eyes` aligns every chip on the eyes, `none` averages the chips as cut. Float64, streamed,
    written as
    `processed/composites/<slug>.png` + `<slug>.json` (canonical spec, method, matched, used,
    members, skipped with reasons, mean shape, seed, alignment stats). `relax` (off by default)
    drops filters when too few faces match and says which.
    A partition range runs every spec in one process and in one pass over the faces: each member
    chip is decoded once however many specs use it and warped onto each spec's own mean shape, in
    threads over the cores (`profile_select_s`, `profile_average_s`, `profile_write_s` in the metadata). A spec that cannot be built (too few
    matching faces, attractiveness terms without scores) is recorded, not failed: its
    `<slug>.json` says `status: not_built` and why, and the UI metadata, the contact sheet and
    the report show the reason. `composite_json_matches_image` then checks the whole composites
    folder in this step (one result per run, whatever partitions it built).
    With true labels configured (FACESTATS_TRUTH_LABELS, evaluation only), the metadata also gives each
    composite's purity: per spec term, the share of members whose true label satisfies it
    (`facestats_core.composites.purity`).
    """
    layout = paths.layout()
    settings = _settings(composites, faces)
    truth = face_truth(context, master_metadata, labels, paths, own_labels=False)
    results: list[BuiltComposite] = []
    not_built: dict[str, str] = {}
    run = build_composites(context.partition_keys, master_metadata, layout, settings,
                           workers=max(1, os.cpu_count() or 1))
    for key, outcome in run.results.items():
        if isinstance(outcome, BuiltComposite):
            results.append(outcome)
            continue
        spec = _valid_spec(key)
        if spec is None:  # not a canonical spec: nothing to record it under
            raise dg.Failure(description=str(outcome), metadata=outcome.metadata) from outcome
        record_not_built(layout.composites_dir, spec, str(outcome), outcome.metadata)
        not_built[key] = str(outcome)
        context.log.warning(f"composite {key!r} not built: {outcome}")
    check = [composite_json_matches_image(paths)]
    profile = {f"profile_{part}_s": round(seconds, 3) for part, seconds in run.profile.items()}
    if len(context.partition_keys) == 1 and not_built:
        key, reason = next(iter(not_built.items()))
        return dg.MaterializeResult(metadata={"spec": key, "status": "not built", "reason": reason, **profile},
                                    check_results=check)
    for result in results:
        context.log.info(
            f"composite {result.meta['spec']!r}: matched {result.meta['matched']}, used {result.meta['used']}, "
            f"{result.seconds:.2f} s -> {result.image_path}"
        )
    purity = {str(r.meta["spec"]): _purity(r, truth) for r in results} if truth is not None else {}
    if len(results) == 1 and not not_built:
        metadata = _composite_metadata(results[0])
        if purity:
            metadata["purity_vs_truth"] = next(iter(purity.values()))
        return dg.MaterializeResult(metadata={**metadata, **profile}, check_results=check)
    extra = " purity vs truth |" if purity else ""
    lines = [f"| spec | matched | used | excluded | relaxed | file |{extra}",
             "|---|---:|---:|---:|---|---|" + ("---|" if purity else "")]
    lines += [f"| `{key}` | not built: {reason} | | | | |{' |' if purity else ''}" for key, reason in not_built.items()]
    lines += [
        f"| `{r.meta['spec']}` | {r.meta['matched']} | {r.meta['used']} | "
        f"{r.meta['alignment']['excluded_no_landmarks']} | {', '.join(r.meta['relaxed']) or '-'} | "
        f"{Path(str(r.image_path)).name} |" + (f" {purity[str(r.meta['spec'])]} |" if purity else "")
        for r in results
    ]
    return dg.MaterializeResult(
        metadata={
            "composites": len(results),
            "not_built": len(not_built),
            "summary": dg.MetadataValue.md("\n".join(lines)),
            "folder": dg.MetadataValue.path(str(layout.composites_dir)),
            **profile,
        },
        check_results=check,
    )


def _purity(result: BuiltComposite, truth: pl.DataFrame) -> str:
    """One line: the composite's members checked against the true labels, term by term."""
    spec = parse_partition_key(str(result.meta["spec"]))
    return purity_text(purity_from_face_truth(spec, [str(i) for i in result.meta["face_ids"]], truth))


def _composite_metadata(result: BuiltComposite) -> dict[str, Any]:
    meta, alignment = result.meta, result.meta["alignment"]
    return {
        "spec": meta["spec"],
        "effective_spec": meta["effective_spec"],
        "matched": meta["matched"],
        "used": meta["used"],
        "excluded_no_landmarks": alignment["excluded_no_landmarks"],
        "excluded_by_reason": counts_table(alignment["excluded_by_reason"]),
        "excluded_low_confidence": meta.get("excluded_low_confidence", 0),
        "quality": meta.get("quality", "good"),
        "excluded_quality": meta.get("excluded_quality", 0),
        "excluded_quality_by_reason": counts_table(meta.get("excluded_quality_by_reason", {})),
        "relaxed": ", ".join(meta["relaxed"]) or "none",
        "method": meta["method"],
        "method_note": meta["method_note"] or "-",
        "warped": meta["warped"],
        "eyes_fallback": len(meta["eyes_fallback"]),
        "aligned": alignment["aligned"],
        "source_images": alignment["source_images"],
        "read_failures": len(meta["failures"]),
        "sharpness": meta["sharpness"],
        "seconds": round(result.seconds, 3),
        "preview": dg.MetadataValue.path(str(result.image_path)),
        "picture": _picture(result.image_path, meta["spec"], side=160),
        "json": dg.MetadataValue.path(str(result.json_path)),
    }


@dg.asset(
    group_name="composites",
    deps=[composite],
    kinds={"png"},
    automation_condition=follow_upstream_except("composite"),
)
def contact_sheet(
    context: dg.AssetExecutionContext, paths: PathsResource, composites: CompositesResource
) -> dg.MaterializeResult:
    """`processed/composites/contact_sheet.png`: every built composite of the registered specs
    (in the order they were added) with its canonical spec and face count as caption; specs
    without a picture (not built, with their reason in `<slug>.json`) are listed as `missing`.
    No composite built at all: no sheet, and the metadata says so (the run stays green)."""
    keys = context.instance.get_dynamic_partitions(COMPOSITE_SPECS)
    try:
        sheet = build_contact_sheet(paths.layout().composites_dir, keys, composites.image_format)
    except CompositeError as exc:
        context.log.warning(f"No contact sheet: {exc}")
        return dg.MaterializeResult(metadata={"composites": 0, "contact_sheet": f"not written: {exc}"})
    if sheet.missing:
        context.log.warning(f"{len(sheet.missing)} registered specs have no composite yet: {list(sheet.missing)}")
    return dg.MaterializeResult(
        metadata={
            "composites": sheet.count,
            "missing": dg.MetadataValue.json(list(sheet.missing)),
            "preview": dg.MetadataValue.path(str(sheet.path)),
            "picture": _picture(sheet.path, "contact sheet", side=640),
        }
    )


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
    cursor = load_cursor(context.cursor)
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
