"""Where every artifact lives, relative to the data and model roots.

One table (``ARTIFACTS``) maps asset names to paths, used by the Dagster IO
manager, by assets that reuse their previous output, and by the CLI, so the
three can never disagree. Roots may be local paths or fsspec URLs (UPath).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from upath import UPath

ARTIFACTS: dict[str, str] = {
    "raw_images": "manifests/raw_images",
    "face_detections": "manifests/face_detections",
    "face_chips": "manifests/face_chips",
    "embedding_shards": "embeddings/shards",
    "embeddings_clip": "embeddings/embeddings_clip",
    "reference_embeddings": "embeddings/reference_embeddings",
    "dataset_labels": "metadata/dataset_labels",
    "manual_labels": "metadata/manual_labels",
    "attributes": "metadata/attributes",
    "attribute_flags": "metadata/attribute_flags",
    "embedding_clusters": "metadata/embedding_clusters",
    "attractiveness_scores": "metadata/attractiveness_scores",
    "master_metadata": "metadata/master",
    "face_statistics": "metadata/face_statistics",
}
"""Asset name → path under ``<data_root>/processed`` (without ``.parquet``;
partitioned assets are folders holding ``<partition>.parquet``)."""


UNPARTITIONED = "all"
"""The partition name of an unpartitioned asset's checkpoint folder (``Layout.checkpoint_dir``)."""


def read_parquet(path: Any, columns: list[str] | None = None) -> pl.DataFrame:
    """Read a parquet file from a local path or any UPath (``s3://``, ``memory://`` …)."""
    with UPath(path).open("rb") as fh:
        return pl.read_parquet(fh, columns=columns)


def to_upath(root: str | Any) -> UPath:
    """A UPath for a local path or URL; relative local paths become absolute."""
    path = UPath(root)
    if path.protocol in ("", "file", "local"):
        return UPath(path.path if hasattr(path, "path") else str(path)).absolute()
    return path


@dataclass(frozen=True)
class Layout:
    """The artifact tree under a data root and a model root; the photos are `photos_dir` when given
    (read in place, never written), else `<data_root>/raw`."""

    data_root: UPath
    model_root: UPath
    photos_dir: UPath | None = None

    @classmethod
    def from_roots(cls, data_root: str | Any, model_root: str | Any, photos: str | Any | None = None) -> Layout:
        return cls(to_upath(data_root), to_upath(model_root), None if photos is None else to_upath(photos))

    @property
    def raw_dir(self) -> UPath:
        """The photos analysed: `photos_dir`, else `<data_root>/raw`."""
        return self.photos_dir if self.photos_dir is not None else self.data_root / "raw"

    @property
    def labels_dir(self) -> UPath:
        return self.data_root / "labels"

    @property
    def processed_dir(self) -> UPath:
        return self.data_root / "processed"

    @property
    def metadata_dir(self) -> UPath:
        return self.processed_dir / "metadata"

    @property
    def chips_dir(self) -> UPath:
        """Face-chip cache: ``chips/<chip version>/<size>/<face_id>.jpg``."""
        return self.processed_dir / "chips"

    @property
    def composites_dir(self) -> UPath:
        """Composite images and their json: ``composites/<slug>.png|.json``, ``contact_sheet.png``."""
        return self.processed_dir / "composites"

    @property
    def report_dir(self) -> UPath:
        """The stats report: ``report/index.html`` plus its PNG charts."""
        return self.processed_dir / "report"

    def checkpoint_dir(self, asset_name: str, partition: str = UNPARTITIONED) -> UPath:
        """Work in progress of one partition of an asset (e.g. the embedding parts of a shard), or of
        an unpartitioned asset: ``checkpoints/<asset name>/<partition>/``, removed once the
        artifact is written (with the asset's folder and ``checkpoints/`` when left empty)."""
        return self.processed_dir / "checkpoints" / asset_name / partition

    def data_file(self, setting: str) -> UPath | None:
        """The file a path setting names: a URL or absolute path as is, else relative to the data
        root; None when the setting is empty (the feature is off)."""
        if not setting:
            return None
        if "://" in setting or UPath(setting).is_absolute():
            return to_upath(setting)
        return self.data_root / setting

    def artifact(self, asset_name: str) -> UPath:
        """The parquet file of an unpartitioned asset."""
        return self.processed_dir / f"{ARTIFACTS[asset_name]}.parquet"

    def artifact_dir(self, asset_name: str) -> UPath:
        """The folder of a partitioned asset (one ``<partition>.parquet`` each)."""
        return self.processed_dir / ARTIFACTS[asset_name]

    def read_artifact(self, asset_name: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        """An unpartitioned asset's table, or None when it has not been materialized."""
        path = self.artifact(asset_name)
        return read_parquet(path, columns) if path.exists() else None

    def read_partitions(self, asset_name: str) -> pl.DataFrame | None:
        """Every stored partition of an asset concatenated, or None when there is none."""
        folder = self.artifact_dir(asset_name)
        if not folder.exists():
            return None
        frames = [read_parquet(file) for file in sorted(folder.glob("*.parquet"))]
        return pl.concat(frames, how="vertical_relaxed") if frames else None
