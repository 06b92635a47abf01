"""A whole face set from its folder to face embeddings, with the analysed set's functions and caches.

:func:`embed_face_set` lists ``<root>/raw``, finds the faces, cuts their chips and embeds them
with the given CLIP — the same core functions the image assets run per shard — keeping its
manifests under ``<root>/processed/manifests/reference_*.parquet`` and its chips under
``<root>/processed/chips``, so a second run re-embeds nothing that did not change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from facestats_core.embedding.checkpoint import Checkpoint
from facestats_core.embedding.table import embed_manifest
from facestats_core.embedding.tower import LoadedClip
from facestats_core.faces.chips import ChipConfig, chip_manifest
from facestats_core.faces.face_table import DetectionConfig, FaceDetector, detect_manifest
from facestats_core.faces.known_landmarks import landmarks_by_path
from facestats_core.images.scan import scan_shards
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import Layout, read_parquet

MANIFESTS: tuple[str, ...] = ("raw", "detections", "chips")


@dataclass(frozen=True)
class FaceSet:
    """The tables of a processed face set: raw manifest, detections, chips, embeddings."""

    raw: pl.DataFrame
    detections: pl.DataFrame
    chips: pl.DataFrame
    embeddings: pl.DataFrame
    detector_runs: int
    chips_made: int
    embedded: int
    resumed: int = 0
    """Faces reused from checkpoint parts of a killed run."""
    checkpoint_skipped: tuple[str, ...] = ()
    """Why checkpoint parts were not used."""


def manifest_path(layout: Layout, name: str) -> Any:
    return layout.processed_dir / "manifests" / f"reference_{name}.parquet"


def _previous(layout: Layout, name: str) -> pl.DataFrame | None:
    path = manifest_path(layout, name)
    return read_parquet(path) if path.exists() else None


def embed_face_set(
    layout: Layout,
    detector: FaceDetector | None,
    detection: DetectionConfig,
    chips: ChipConfig,
    clip: LoadedClip,
    batch_size: int,
    previous_embeddings: pl.DataFrame | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    landmark_files: Mapping[str, Any] | None = None,
    workers: int = 1,
    checkpoint: Checkpoint | None = None,
) -> FaceSet:
    """Process every image under ``layout.raw_dir``; see the module docstring. ``landmark_files`` maps
    file names (relative to the raw folder) to known landmarks, as the analysed set's landmarks file.
    With a ``checkpoint`` the embedding writes its finished chunks as parts there and a run after a
    killed one reuses them (:mod:`facestats_core.embedding.checkpoint`; the caller clears them)."""
    if not layout.raw_dir.exists():
        raise FileNotFoundError(f"the reference set has no image folder {layout.raw_dir}")
    manifests, _ = scan_shards(layout.raw_dir, ["00"], 1, previous=_previous(layout, "raw"))
    raw = manifests["00"]
    atomic_write_parquet(manifest_path(layout, "raw"), raw)
    landmarks = landmarks_by_path(landmark_files, raw)[0] if landmark_files else None
    detections, detected = detect_manifest(raw, layout.raw_dir, detector, detection,
                                           previous=_previous(layout, "detections"), landmarks=landmarks,
                                           workers=workers)
    atomic_write_parquet(manifest_path(layout, "detections"), detections)
    chip_table, made = chip_manifest(detections, layout.raw_dir, layout.chips_dir, chips,
                                     previous=_previous(layout, "chips"))
    atomic_write_parquet(manifest_path(layout, "chips"), chip_table)
    embeddings, stats, _ = embed_manifest(chip_table, clip, batch_size, layout.chips_dir,
                                          previous=previous_embeddings, progress=progress, checkpoint=checkpoint)
    return FaceSet(raw, detections, chip_table, embeddings, detected.detector_runs, made.made, stats.embedded,
                   stats.resumed, tuple(stats.checkpoint_skipped))
