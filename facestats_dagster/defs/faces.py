"""Stage 2, faces: every face of every image (detected on the upright original), then each face's
chips cut from the original at full resolution. One partition per hash shard, like the image assets."""

import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.faces.box_preview import busiest_photo
from facestats_core.faces.chips import chip_manifest
from facestats_core.faces.face_table import COLUMN_MEANINGS, NO_FACE_REASONS, DetectionPool, detect_manifest
from facestats_core.faces.known_landmarks import landmarks_by_path, read_landmark_file
from facestats_core.faces.quality import QUALITY_REASONS, quality_counts
from facestats_core.images.thumbnails import thumbnail_strip
from facestats_core.io.layout import Layout
from facestats_core.report.figures import histogram
from facestats_dagster.defs.images import IMAGE_ASSET_ARGS
from facestats_dagster.metadata import counts_table, image_markdown
from facestats_dagster.progress import progress_logger
from facestats_dagster.resources import FacesResource, PathsResource


@dg.asset(**IMAGE_ASSET_ARGS, kinds={"python", "parquet"})
def face_detections(
    context: dg.AssetExecutionContext,
    raw_images: dict[str, pl.DataFrame],
    paths: PathsResource,
    faces: FacesResource,
) -> dict[str, pl.DataFrame]:
    """One row per face found (box, score, 68 landmarks, the CNN's 5 points, the face's rotation, stable
    `face_id`) plus one row per image without a usable face, with its `reason` (no_face, face_too_small,
    skipped_multi, unreadable, …).

    `face_mode` decides how: `detect` runs the detector on the upright original (a copy whose
    longest side is at most `max_side`, plus full-resolution tiles for a CNN; sideways photos are
    searched turned by 90° steps), `whole` takes the image as the face, `auto` detects and
    falls back to the whole image for a near-square portrait. Rows are cached per image id and
    detection settings: unchanged images are not detected again.
    """
    layout = paths.layout()
    detector, detector_name = faces.face_detector()
    config = faces.detection(detector_name)
    if detector is None and config.face_mode == "detect":
        context.log.warning(f"face_mode=detect without a detector ({detector_name}): every image gets reason "
                            "`no_detector`. Install the detect extra or set FACESTATS_FACE_MODE=whole.")
    raw = pl.concat(list(raw_images.values()), how="vertical_relaxed")
    known, unmatched, source = _known_landmarks(context, faces, layout, raw)
    previous = layout.read_partitions("face_detections")
    started = time.perf_counter()
    outputs: dict[str, pl.DataFrame] = {}
    totals: dict[str, Any] = {"runs": 0, "reused": 0}
    reasons: dict[str, int] = {}
    with DetectionPool(detector, faces.detect_workers()) as pool:  # one set of worker processes for every shard
        for shard, manifest in raw_images.items():
            frame, stats = detect_manifest(manifest, layout.raw_dir, detector, config, previous=previous,
                                           landmarks=known, progress=progress_logger(context, f"detect shard {shard}"),
                                           pool=pool)
            outputs[shard] = frame
            totals["runs"] += stats.detector_runs
            totals["reused"] += stats.reused
            for reason, count in stats.reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
    combined = pl.concat(list(outputs.values()))
    found = combined.filter(pl.col("face_id").is_not_null())
    per_image = combined.group_by("image_id").agg(pl.col("face_id").count().alias("n"))
    context.add_output_metadata({
        "images": per_image.height,
        "faces": found.height,
        "images_with_faces": int((per_image["n"] > 0).sum()),
        "images_without_face": int((per_image["n"] == 0).sum()),
        "without_face_by_reason": counts_table(reasons),
        "faces_per_image": counts_table({str(k): v for k, v in sorted(
            per_image["n"].value_counts().iter_rows())}, key="faces"),
        "face_source": counts_table(dict(found["face_source"].value_counts().iter_rows()), key="source"),
        "detector": detector_name,
        "detector_runs": totals["runs"],
        "reused": totals["reused"],
        "face_mode": config.face_mode,
        "multi_face": config.multi_face,
        "detection_version": config.version,
        "landmarks_file": source,
        "landmark_rows_without_image": unmatched,
        "reasons_legend": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in NO_FACE_REASONS.items())),
        "columns_legend": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in COLUMN_MEANINGS.items())),
        "rotated_faces": int((found["rotation_pass"].fill_null(0) != 0).sum()) if found.height else 0,
        "seconds": round(time.perf_counter() - started, 3),
        **_busiest_photo(layout, found),
    })
    return outputs


def _busiest_photo(layout: Layout, faces: pl.DataFrame) -> dict[str, Any]:
    """The photo with the most faces, its faces outlined (UI metadata); nothing without a multi-face photo."""
    found = busiest_photo(faces.sort("face_index"), layout.raw_dir)
    if found is None:
        return {}
    jpeg, caption = found
    return {"busiest_photo": caption, "busiest_photo_faces": image_markdown(jpeg, alt=caption)}


@dg.asset(**IMAGE_ASSET_ARGS, kinds={"python", "parquet", "jpeg"})
def face_chips(
    context: dg.AssetExecutionContext,
    face_detections: dict[str, pl.DataFrame],
    paths: PathsResource,
    faces: FacesResource,
) -> dict[str, pl.DataFrame]:
    """Each face cut from the upright original: the box grown by `margin`, rotated so the eyes are
    level, resampled once to CLIP's 224 px and once to the composite size. Each image decoded once
    (JPEG draft scaling when every chip of it is reduced 2x or more), images chipped in threads over
    the cores. Cached per face id and chip settings at
    `processed/chips/<chip version>/<size>/<face_id>.jpg`.

    Each face is judged too: head pose (yaw, pitch, roll from its landmarks), sharpness, size and
    detection score give `quality` (`good`/`poor`) and `quality_reasons` (profile, pitched, blurry,
    tiny, low_score); the thresholds are `FacesResource`'s (`facestats_core.faces.quality`)."""
    layout = paths.layout()
    config = faces.chips()
    quality = faces.quality()
    previous = layout.read_partitions("face_chips")
    started = time.perf_counter()
    outputs: dict[str, pl.DataFrame] = {}
    made = reused = failed = 0
    for shard, detections in face_detections.items():
        frame, stats = chip_manifest(detections, layout.raw_dir, layout.chips_dir, config, previous=previous,
                                     progress=progress_logger(context, f"chips of shard {shard}"), quality=quality,
                                     workers=max(1, os.cpu_count() or 1))
        outputs[shard] = frame
        made, reused, failed = made + stats.made, reused + stats.reused, failed + stats.failed
    combined = pl.concat(list(outputs.values()))
    ok = combined.filter(pl.col("ok"))
    seconds = time.perf_counter() - started
    flags: dict[str, int] = {}
    for row in combined["flags"].to_list():
        for flag in row or []:
            flags[flag] = flags.get(flag, 0) + 1
    metadata: dict[str, Any] = {
        "faces": combined.height,
        "ok": ok.height,
        "made": made,
        "reused": reused,
        "failed": failed,
        "flags": counts_table(flags, key="flag"),
        **_quality_metadata(ok),
        "chip_version": config.version,
        "faces_per_second": round(made / seconds, 1) if made and seconds > 0 else 0.0,
        "cache": dg.MetadataValue.path(str(layout.chips_dir / config.version)),
    }
    if ok.height:
        strip = thumbnail_strip([layout.chips_dir / p for p in ok.sort("face_id")["chip_path"].head(8)])
        metadata["chips_preview"] = image_markdown(strip, alt="face chips")
    context.add_output_metadata(metadata)
    return outputs


def _quality_metadata(chips: pl.DataFrame) -> dict[str, Any]:
    """UI metadata of the faces' quality: counts by verdict and by reason, and a yaw histogram (±90° at most)."""
    verdicts, reasons = quality_counts(chips)
    metadata: dict[str, Any] = {
        "quality": counts_table(verdicts, key="quality"),
        "poor_by_reason": counts_table(reasons, key="reason"),
        "quality_reasons_legend": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in QUALITY_REASONS.items())),
    }
    yaws = chips["yaw"].drop_nulls().clip(-90.0, 90.0).to_list() if "yaw" in chips.columns else []
    if yaws:
        png = histogram("Head yaw of the faces", yaws, bins=list(range(-90, 91, 10)), x_label="yaw (degrees)")
        metadata["yaw_histogram"] = image_markdown(png, alt="yaw histogram")
    return metadata


def _known_landmarks(
    context: dg.AssetExecutionContext, faces: FacesResource, layout: Layout, raw: pl.DataFrame
) -> tuple[dict[str, Any], int, str]:
    source = layout.data_file(faces.landmarks)
    if source is None:
        return {}, 0, "not configured"
    if not source.exists():
        context.log.info(f"No landmarks file at {source}: landmarks come from the detector only "
                         "(FACESTATS_LANDMARKS names one; the demo's is labels/demo_truth.csv).")
        return {}, 0, f"missing: {source}"
    try:
        if source.protocol in ("", "file", "local"):
            by_file = read_landmark_file(Path(source.path))
        else:
            by_file = _read_remote_landmarks(source, read_landmark_file)
    except (OSError, ValueError) as exc:
        raise dg.Failure(f"Cannot read the landmarks file {source}: {exc}") from exc
    known, unmatched = landmarks_by_path(by_file, raw, prefix=faces.landmarks_prefix)
    return known, unmatched, str(source)


def _read_remote_landmarks(source: Any, reader: Any) -> pl.DataFrame:
    """Remote landmark files are read through a temporary local copy (the reader takes a path)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / (Path(str(source)).name or "landmarks.csv")
        with source.open("rb") as fh:
            local.write_bytes(fh.read())
        return reader(local)
