"""Composite faces: the aligned-face cache, one composite per filter spec, and a contact sheet.

``composite`` is partitioned by ``composite_specs``, a dynamic partitions
definition whose keys are canonical filter specs (``facestats_core.composites.filter_spec``).
Specs are added by ``composite_specs_sensor`` (from ``config/composites.yaml``)
or by ``facestats composites add|sync``.
"""

import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from PIL import Image

from facestats_core.faces.aligned_faces import ALIGN_ERRORS, align_manifest, map_landmarks
from facestats_core.faces.alignment import read_landmarks_csv
from facestats_core.composites.average import (
    TooFewFacesError,
    average_images,
    composite_meta,
    composite_sharpness,
    contact_sheet as tile_contact_sheet,
    select_usable,
    to_uint8,
    write_composite,
)
from facestats_core.composites.filter_spec import FilterSpec, FilterSpecError, parse_spec
from facestats_core.io.layout import Layout
from facestats_core.images.thumbnails import thumbnail_strip
from facestats_dagster.assets._metadata import counts_table, image_markdown
from facestats_dagster.assets.images import IMAGE_ASSET_ARGS, _progress_logger
from facestats_dagster.resources import CompositesResource, PathsResource, PreprocessResource

COMPOSITE_SPECS = "composite_specs"
composite_specs = dg.DynamicPartitionsDefinition(name=COMPOSITE_SPECS)
CONTACT_SHEET_NAME = "contact_sheet.png"


# --------------------------------------------------------------------------- aligned faces


@dg.asset(**IMAGE_ASSET_ARGS, kinds={"python", "parquet", "jpeg"})
def aligned_faces(
    context: dg.AssetExecutionContext,
    raw_images: dict[str, pl.DataFrame],
    preprocessed_images: dict[str, pl.DataFrame],
    paths: PathsResource,
    preprocess: PreprocessResource,
    composites: CompositesResource,
) -> dict[str, pl.DataFrame]:
    """Eye positions and aligned crops of every preprocessed face, cached per image id at
    ``processed/aligned/<alignment version>/<image_id>.jpg`` (eyes on fixed points).

    Eyes come from the landmarks file (raw-image coordinates mapped through the
    preprocessing resize + centre crop), else from dlib when installed. Faces without
    eyes are rows with ``aligned_ok = false`` and a reason, excluded from aligned composites.
    Sharded like the image assets; images aligned before with the same eyes and settings are reused.
    """
    layout = paths.layout()
    config = composites.alignment()
    eyes, unmatched, landmarks_note = _landmark_eyes(context, composites, layout, raw_images, preprocess.size)
    detector, detector_name = composites.eye_detector()
    previous = layout.read_partitions("aligned_faces")
    started = time.perf_counter()
    outputs: dict[str, pl.DataFrame] = {}
    totals = Counter[str]()
    failed = Counter[str]()
    sources = Counter[str]()
    for shard, manifest in preprocessed_images.items():
        frame, stats = align_manifest(
            manifest, layout.preproc_dir, layout.aligned_dir, config, preprocess.size,
            eyes=eyes, detector=detector, detector_name=detector_name, previous=previous,
            progress=_progress_logger(context, f"align shard {shard}"),
        )
        outputs[shard] = frame
        totals.update(aligned=stats.aligned, reused=stats.reused, detected=stats.detected)
        failed.update(stats.failed)
        sources.update(stats.sources)
    combined = pl.concat(list(outputs.values()))
    ok = combined.filter(pl.col("aligned_ok"))
    metadata: dict[str, Any] = {
        "images": combined.height,
        "aligned_ok": ok.height,
        "aligned_new": totals["aligned"],
        "reused": totals["reused"],
        "detector_runs": totals["detected"],
        "excluded": combined.height - ok.height,
        "excluded_by_reason": counts_table(failed),
        "eyes_source": counts_table(sources, key="source"),
        "landmarks_file": landmarks_note,
        "landmark_rows_without_image": unmatched,
        "detector": detector_name,
        "alignment_version": config.version,
        "seconds": round(time.perf_counter() - started, 3),
        "cache": dg.MetadataValue.path(str(layout.aligned_dir / config.version)),
    }
    if ok.height:
        metadata["preview"] = dg.MetadataValue.path(str(layout.aligned_dir / ok["aligned_path"][0]))
        strip = thumbnail_strip([layout.aligned_dir / p for p in ok.sort("image_id")["aligned_path"].head(8)])
        metadata["aligned_preview"] = image_markdown(strip, alt="aligned faces")
    context.add_output_metadata(metadata)
    return outputs


def _landmark_eyes(
    context: dg.AssetExecutionContext,
    composites: CompositesResource,
    layout: Layout,
    raw_images: dict[str, pl.DataFrame],
    size: int,
) -> tuple[pl.DataFrame | None, int, str]:
    source = composites.landmarks_file(layout)
    if source is None:
        return None, 0, "not configured"
    if not source.exists():
        context.log.warning(
            f"Landmarks file {source} does not exist: eyes come from the detector only "
            "(set FACESTATS_LANDMARKS, or empty it to silence this)."
        )
        return None, 0, f"missing: {source}"
    try:
        if source.protocol in ("", "file", "local"):
            landmarks = read_landmarks_csv(Path(source.path))
        else:
            landmarks = _read_remote_landmarks(source)
    except (OSError, ValueError) as exc:
        raise dg.Failure(f"Cannot read the landmarks file {source}: {exc}") from exc
    raw = pl.concat(list(raw_images.values()), how="vertical_relaxed")
    eyes, unmatched = map_landmarks(landmarks, raw, size, prefix=composites.landmarks_prefix)
    return eyes, unmatched, str(source)


def _read_remote_landmarks(source: Any) -> pl.DataFrame:
    """Remote landmark files are read through a temporary local copy (the reader takes a path)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / (Path(str(source)).name or "landmarks.csv")
        with source.open("rb") as fh:
            local.write_bytes(fh.read())
        return read_landmarks_csv(local)


# --------------------------------------------------------------------------- composites


def composite_files(layout: Layout, spec: FilterSpec, fmt: str = "png") -> tuple[Any, Any]:
    """``(<slug>.<fmt>, <slug>.json)`` under the composites folder; refuses anything outside it."""
    folder = layout.composites_dir
    image, sidecar = folder / f"{spec.slug}.{fmt}", folder / f"{spec.slug}.json"
    for path in (image, sidecar):
        if path.parent != folder or "/" in spec.slug or "\\" in spec.slug or ".." in spec.slug:
            raise dg.Failure(f"composite path {path} would leave {folder}")
    return image, sidecar


def markdown_thumbnail(path: Any, caption: str, side: int = 160) -> dg.MetadataValue:
    """A small inline JPEG of ``path`` so the Dagster UI shows the picture in the metadata panel."""
    with path.open("rb") as fh:
        image = Image.open(io.BytesIO(fh.read())).convert("RGB")
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return image_markdown(buffer.getvalue(), alt=caption)


def _build_one(
    key: str, master: pl.DataFrame, layout: Layout, composites: CompositesResource
) -> dict[str, Any]:
    """Make one composite; returns its json sidecar plus file paths. Raises ``dg.Failure``."""
    try:
        spec = parse_spec(key)
    except FilterSpecError as exc:
        raise dg.Failure(f"partition {key!r} is not a valid filter spec: {exc}") from exc
    if spec.canonical != key:
        raise dg.Failure(
            f"partition {key!r} is not in canonical form (it should be {spec.canonical!r}); "
            "add specs with `facestats composites add` or the YAML sensor, which canonicalise them"
        )
    config = composites.alignment()
    faces = master.filter(pl.col("preproc_ok"))
    started = time.perf_counter()
    try:
        if composites.align:
            selection, excluded = select_usable(
                faces, spec, composites.min_faces, composites.relax, usable=pl.col("aligned_ok"),
                excluded_reason="without eye landmarks / alignment",
            )
        else:
            selection, excluded = select_usable(faces, spec, composites.min_faces, composites.relax)
    except TooFewFacesError as exc:
        hint = ""
        if composites.align and exc.excluded and exc.matched == 0:
            hint = (" No matching face has eye landmarks: configure FACESTATS_LANDMARKS, install "
                    "dlib-bin + face-recognition-models, or set FACESTATS_ALIGN=0.")
        raise dg.Failure(
            description=str(exc) + hint,
            metadata={"matched": exc.matched + exc.excluded, "usable": exc.matched,
                      "excluded_no_landmarks": exc.excluded, "min_faces": exc.min_faces},
        ) from exc
    except ValueError as exc:
        raise dg.Failure(f"cannot select faces for {key!r}: {exc}") from exc
    rows = faces.filter(pl.col("image_id").is_in(selection.image_ids)).sort("image_id")
    if composites.align:
        files = [layout.aligned_dir / p for p in rows["aligned_path"].to_list()]
    else:
        files = [layout.preproc_dir / p for p in rows["preproc_path"].to_list()]
    mean, used, failures = average_images(files, config.output_size)
    if used < composites.min_faces:
        raise dg.Failure(
            f"filter spec {key!r}: only {used} of {len(files)} selected images could be read "
            f"(first failure: {failures[0] if failures else '-'}); a composite needs at least {composites.min_faces}"
        )
    image = Image.fromarray(to_uint8(mean), "RGB")
    sharpness = composite_sharpness(image)
    matched_rows = faces.filter(selection.spec.to_polars_expr())
    not_aligned = matched_rows.filter(~pl.col("aligned_ok"))
    alignment = {
        "aligned": composites.align,
        "source_images": "aligned" if composites.align else "preprocessed (alignment disabled)",
        "alignment_version": config.version if composites.align else None,
        "output_size": config.output_size,
        "eye_targets": [list(p) for p in config.eye_targets],
        "excluded_no_landmarks": excluded,
        "excluded_by_reason": dict(Counter(str(r) for r in not_aligned["alignment_error"].to_list()))
        if composites.align else {},
        "eyes_source": dict(Counter(str(s) for s in rows["eyes_source"].to_list())) if composites.align else {},
    }
    meta = composite_meta(spec, selection, used, failures, alignment=alignment, sharpness=round(sharpness, 3))
    meta["min_faces"] = composites.min_faces
    image_path, json_path = composite_files(layout, spec, composites.image_format)
    write_composite(layout.composites_dir, spec.slug, image, meta, fmt=composites.image_format)
    return {**meta, "_image_path": image_path, "_json_path": json_path,
            "_seconds": time.perf_counter() - started}


@dg.asset(
    group_name="composites",
    partitions_def=composite_specs,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"python", "png"},
)
def composite(
    context: dg.AssetExecutionContext,
    master_metadata: pl.DataFrame,
    paths: PathsResource,
    composites: CompositesResource,
) -> dg.MaterializeResult:
    """The average face of the images a filter spec selects (partition key = canonical spec):
    aligned faces (eyes on fixed points) averaged in float64, streamed, written as
    ``processed/composites/<slug>.png`` + ``<slug>.json`` (canonical spec, matched, used,
    image ids, seed, alignment stats). Fewer than ``min_faces`` usable matches fail the
    partition with the count; ``relax`` (off by default) drops filters and says which.
    A partition range runs every spec in one process; a failing spec fails the run after
    the others are written.
    """
    layout = paths.layout()
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    for key in context.partition_keys:
        try:
            results.append(_build_one(key, master_metadata, layout, composites))
        except dg.Failure as exc:
            if len(context.partition_keys) == 1:
                raise
            errors.append(f"{key}: {exc.description}")
            context.log.error(f"composite {key!r} failed: {exc.description}")
    if errors:
        raise dg.Failure(f"{len(errors)} of {len(context.partition_keys)} composites failed:\n" + "\n".join(errors))
    for result in results:
        context.log.info(
            f"composite {result['spec']!r}: matched {result['matched']}, used {result['used']}, "
            f"{result['_seconds']:.2f} s -> {result['_image_path']}"
        )
    if len(results) == 1:
        return dg.MaterializeResult(metadata=_composite_metadata(results[0]))
    lines = ["| spec | matched | used | excluded | relaxed | file |", "|---|---:|---:|---:|---|---|"]
    lines += [
        f"| `{r['spec']}` | {r['matched']} | {r['used']} | {r['alignment']['excluded_no_landmarks']} | "
        f"{', '.join(r['relaxed']) or '-'} | {Path(str(r['_image_path'])).name} |"
        for r in results
    ]
    return dg.MaterializeResult(
        metadata={
            "composites": len(results),
            "summary": dg.MetadataValue.md("\n".join(lines)),
            "folder": dg.MetadataValue.path(str(layout.composites_dir)),
        }
    )


def _composite_metadata(result: dict[str, Any]) -> dict[str, Any]:
    alignment = result["alignment"]
    return {
        "spec": result["spec"],
        "effective_spec": result["effective_spec"],
        "matched": result["matched"],
        "used": result["used"],
        "excluded_no_landmarks": alignment["excluded_no_landmarks"],
        "excluded_by_reason": counts_table(alignment["excluded_by_reason"]),
        "relaxed": ", ".join(result["relaxed"]) or "none",
        "aligned": alignment["aligned"],
        "source_images": alignment["source_images"],
        "read_failures": len(result["failures"]),
        "sharpness": result["sharpness"],
        "seconds": round(result["_seconds"], 3),
        "preview": dg.MetadataValue.path(str(result["_image_path"])),
        "picture": markdown_thumbnail(result["_image_path"], result["spec"]),
        "json": dg.MetadataValue.path(str(result["_json_path"])),
    }


# --------------------------------------------------------------------------- contact sheet


@dg.asset(group_name="composites", deps=[composite], kinds={"png"})
def contact_sheet(
    context: dg.AssetExecutionContext, paths: PathsResource, composites: CompositesResource
) -> dg.MaterializeResult:
    """``processed/composites/contact_sheet.png``: every built composite of the registered specs
    (in the order they were added) with its canonical spec and face count as caption."""
    layout = paths.layout()
    keys = context.instance.get_dynamic_partitions(COMPOSITE_SPECS)
    items: list[tuple[Image.Image, str]] = []
    missing: list[str] = []
    for key in keys:
        try:
            spec = parse_spec(key)
            image_path, json_path = composite_files(layout, spec, composites.image_format)
        except (FilterSpecError, dg.Failure):
            missing.append(key)
            continue
        if not json_path.exists() or not image_path.exists():
            missing.append(key)
            continue
        with json_path.open("r") as fh:
            meta = json.load(fh)
        with image_path.open("rb") as fh:
            picture = Image.open(io.BytesIO(fh.read())).convert("RGB")
        items.append((picture, f"{meta['spec']} (n={meta['used']})"))
    if not items:
        raise dg.Failure(
            f"No composites built yet for the {len(keys)} registered specs; materialize `composite` first."
        )
    sheet = tile_contact_sheet(items, columns=4, tile=192)
    target = layout.composites_dir / CONTACT_SHEET_NAME
    from facestats_core.io.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(target, buffer.getvalue())
    if missing:
        context.log.warning(f"{len(missing)} registered specs have no composite yet: {missing}")
    return dg.MaterializeResult(
        metadata={
            "composites": len(items),
            "missing": dg.MetadataValue.json(missing),
            "preview": dg.MetadataValue.path(str(target)),
            "picture": markdown_thumbnail(target, "contact sheet", side=640),
        }
    )


__all__ = ["ALIGN_ERRORS", "aligned_faces", "composite", "composite_specs", "contact_sheet"]
