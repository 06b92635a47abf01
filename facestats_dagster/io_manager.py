"""IO managers: parquet tables under the data root, trained models in the model store.

`FaceStatsIOManager` writes each table asset's polars frame to the path `facestats_core.io.layout.ARTIFACTS`
names (`data/processed/embeddings/embeddings_clip.parquet` …), on local folders or any fsspec URL,
atomically. A partitioned asset may return `{partition_key: frame}` for every partition of its
run (single-run backfills over a shard range); partitioned inputs are always loaded as such a
dict. Writing a partition removes its checkpoint folder (`Layout.checkpoint_dir`: e.g. the
embedding parts of a shard): the written artifact holds their work. An input declared with
`AssetIn(metadata={"optional": True})` loads as `None` when the upstream was never materialized
(e.g. `attractiveness_scores` without ratings).

`ModelStoreIOManager` saves and loads the model assets through the one sha256-checked model
store (`facestats_core.models.store`): downstream assets and checks take the trained model as an
input instead of rebuilding its file names. A missing model loads as `None` for optional inputs
and fails with the store's message otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl
from upath import UPath

from facestats_core.attractiveness.model_file import load_regressor, save_regressor
from facestats_core.embedding.checkpoint import clear_parts
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import ARTIFACTS, Layout, read_parquet
from facestats_core.models.classifier_file import load_classifiers, save_classifiers
from facestats_core.models.store import ModelIntegrityError, absent_reason, clear_absent, mark_absent
from facestats_dagster.resources import PathsResource


def _optional(context: dg.InputContext) -> bool:
    return bool((context.definition_metadata or {}).get("optional"))


def _not_materialized(context: dg.InputContext, paths: list[UPath]) -> dg.Failure:
    name = context.asset_key.to_user_string()
    return dg.Failure(
        f"{name} has not been materialized: {len(paths)} file(s) missing (first: {paths[0]}); "
        f"materialize {name} first",
        metadata={"missing": dg.MetadataValue.json([str(p) for p in paths[:10]])},
    )


class ParquetUPathIOManager(dg.UPathIOManager):
    extension: str = ".parquet"

    def __init__(self, layout: Layout) -> None:
        super().__init__(base_path=layout.processed_dir)
        self.layout = layout

    def get_asset_relative_path(self, context: dg.InputContext | dg.OutputContext) -> UPath:
        name = context.asset_key.to_user_string()
        return UPath(ARTIFACTS[name]) if name in ARTIFACTS else UPath(*context.asset_key.path)

    def dump_to_path(self, context: dg.OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        atomic_write_parquet(path, obj)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame:
        return read_parquet(path)

    def load_input(self, context: dg.InputContext) -> Any:
        if not context.has_asset_partitions:
            path = self._get_path(context)
            if not path.exists():
                if _optional(context):
                    context.log.warning(f"{context.asset_key.to_user_string()} has not been materialized ({path}): None")
                    return None
                raise _not_materialized(context, [path])
        return super().load_input(context)

    def load_partitions(self, context: dg.InputContext) -> dict[str, pl.DataFrame]:
        paths = self._get_paths_for_partitions(context)
        missing = [paths[key] for key in context.asset_partition_keys if not paths[key].exists()]
        if missing:
            raise _not_materialized(context, missing)
        return {key: self.load_from_path(context, paths[key]) for key in context.asset_partition_keys}

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not isinstance(obj, dict):
            super().handle_output(context, obj)
            clear_parts(self.layout.checkpoint_dir(context.asset_key.to_user_string()), prune=2)
            rows = obj.height if isinstance(obj, pl.DataFrame) else None
            if rows is not None:
                context.add_output_metadata({"dagster/row_count": rows})
            return
        paths = self._get_paths_for_partitions(context)
        missing = sorted(set(paths) - set(obj))
        if missing:
            raise dg.Failure(f"{context.asset_key.to_user_string()} returned no frame for partitions {missing}")
        name = context.asset_key.to_user_string()
        for key, path in paths.items():
            atomic_write_parquet(path, obj[key])
            clear_parts(self.layout.checkpoint_dir(name, key), prune=2)  # the partition's parts are now redundant
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(str(next(iter(paths.values())).parent)),
                "dagster/row_count": sum(frame.height for frame in obj.values()),
            }
        )


class FaceStatsIOManager(dg.ConfigurableIOManagerFactory):
    """Writes each asset's polars frame under `<data_root>/processed`."""

    paths: PathsResource

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetUPathIOManager:
        return ParquetUPathIOManager(self.paths.layout())


@dataclass(frozen=True)
class ModelCodec:
    """How one model asset is written to and read from the model store."""

    save: Callable[[Any, UPath, str], Any]
    """`(trained value, model root, asset name) -> stored record` (paths and sha256)."""
    load: Callable[[UPath, str], Any]
    """`(model root, asset name) -> loaded model`; raises `FileNotFoundError`/`ModelIntegrityError`."""


def _model_codecs() -> dict[str, ModelCodec]:
    return {
        "attribute_classifiers": ModelCodec(save=save_classifiers, load=load_classifiers),
        "attractiveness_regressor": ModelCodec(save=save_regressor, load=load_regressor),
    }


class ModelStoreIO(dg.IOManager):
    """Saves model assets under the model root; loads them back sha256-checked."""

    def __init__(self, model_root: UPath) -> None:
        self.model_root = model_root

    def _codec(self, context: dg.InputContext | dg.OutputContext) -> tuple[str, ModelCodec]:
        name = context.asset_key.to_user_string()
        codecs = _model_codecs()
        if name not in codecs:
            raise dg.Failure(f"{name} is not a model asset; model assets are {sorted(codecs)}")
        return name, codecs[name]

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Save the model; `None` (deliberately no model, e.g. no ratings) is recorded as an absent
        marker, which downstream assets load as `None`."""

        name, codec = self._codec(context)
        if obj is None:
            mark_absent(self.model_root, name, "not trained: nothing to train on")
            context.add_output_metadata({"model": "none"})
            return
        clear_absent(self.model_root, name)
        stored = codec.save(obj, self.model_root, name)
        context.add_output_metadata(
            {"model_path": dg.MetadataValue.path(str(stored.weights)), "sha256": stored.sha256}
        )

    def load_input(self, context: dg.InputContext) -> Any:
        name, codec = self._codec(context)
        if absent_reason(self.model_root, name) is not None:
            return None
        try:
            return codec.load(self.model_root, name)
        except FileNotFoundError as exc:
            if _optional(context):
                context.log.warning(f"no {name} in {self.model_root} ({exc}): None")
                return None
            raise dg.Failure(f"{exc}; materialize {name} first") from exc
        except ModelIntegrityError as exc:
            raise dg.Failure(str(exc)) from exc


class ModelStoreIOManager(dg.ConfigurableIOManagerFactory):
    """The model store under `<model_root>` as an IO manager (`io_manager_key="model_store"`)."""

    paths: PathsResource

    def create_io_manager(self, context: dg.InitResourceContext) -> ModelStoreIO:
        return ModelStoreIO(self.paths.layout().model_root)
