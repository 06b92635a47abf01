"""Parquet IO manager on UPath: local folders or any fsspec URL, atomic local writes.

Paths come from ``facestats_core.io.layout.ARTIFACTS`` so the files land where
the design says (``data/processed/embeddings/embeddings_clip.parquet`` …).
A partitioned asset may return ``{partition_key: frame}`` for every partition
of its run (single-run backfills over a shard range); partitioned inputs are
always loaded as such a dict.
"""

from typing import Any

import dagster as dg
import polars as pl
from upath import UPath

from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import ARTIFACTS, read_parquet
from facestats_dagster.resources import PathsResource


class ParquetUPathIOManager(dg.UPathIOManager):
    extension: str = ".parquet"

    def get_asset_relative_path(self, context: dg.InputContext | dg.OutputContext) -> UPath:
        name = context.asset_key.to_user_string()
        return UPath(ARTIFACTS[name]) if name in ARTIFACTS else UPath(*context.asset_key.path)

    def dump_to_path(self, context: dg.OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        atomic_write_parquet(path, obj)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame:
        return read_parquet(path)

    def load_partitions(self, context: dg.InputContext) -> dict[str, pl.DataFrame]:
        paths = self._get_paths_for_partitions(context)
        return {key: self.load_from_path(context, paths[key]) for key in context.asset_partition_keys}

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not isinstance(obj, dict):
            super().handle_output(context, obj)
            rows = obj.height if isinstance(obj, pl.DataFrame) else None
            if rows is not None:
                context.add_output_metadata({"dagster/row_count": rows})
            return
        paths = self._get_paths_for_partitions(context)
        missing = sorted(set(paths) - set(obj))
        if missing:
            raise dg.Failure(f"{context.asset_key.to_user_string()} returned no frame for partitions {missing}")
        for key, path in paths.items():
            atomic_write_parquet(path, obj[key])
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(str(next(iter(paths.values())).parent)),
                "dagster/row_count": sum(frame.height for frame in obj.values()),
            }
        )


class FaceStatsIOManager(dg.ConfigurableIOManagerFactory):
    """Writes each asset's polars frame under ``<data_root>/processed``."""

    paths: PathsResource

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetUPathIOManager:
        return ParquetUPathIOManager(base_path=self.paths.layout().processed_dir)
