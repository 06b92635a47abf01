"""Stage 2, faces: eye positions and aligned face crops of every preprocessed image, one
partition per hash shard (like the image assets)."""

import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.faces.aligned_faces import align_manifest, map_landmarks
from facestats_core.faces.alignment import read_landmarks_csv
from facestats_core.images.thumbnails import thumbnail_strip
from facestats_core.io.layout import Layout
from facestats_dagster.defs.images import IMAGE_ASSET_ARGS
from facestats_dagster.metadata import counts_table, image_markdown
from facestats_dagster.progress import progress_logger
from facestats_dagster.resources import CompositesResource, PathsResource, PreprocessResource


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
    `processed/aligned/<alignment version>/<image_id>.jpg` (eyes on fixed points).

    Eyes come from the landmarks file (raw-image coordinates mapped through the
    preprocessing resize + centre crop), else from dlib when installed. Faces without
    eyes are rows with `aligned_ok = false` and a reason, excluded from aligned composites.
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
            progress=progress_logger(context, f"align shard {shard}"),
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
    source = layout.data_file(composites.landmarks)
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
