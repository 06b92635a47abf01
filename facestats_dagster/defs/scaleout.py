"""Scale-out: the image-level shards as separate steps of one run, on any Dagster executor.

A partitioned asset is one step per run (a single-run backfill over `00...03`
processes every shard in that one step), so executors that distribute *steps*
(multiprocess, `dagster-celery`, `dagster-k8s`) cannot spread its shards.
`image_shards` is an op job with one op per shard (`shard_00`, `shard_01` …,
from `FACESTATS_SHARDS`). Each op runs the image-level assets for its shard —
`raw_images` → `face_detections` → `face_chips` → `embedding_shards` —
by invoking the asset functions themselves (Dagster's direct invocation with a
one-partition context), writes each partition file where the IO manager writes it,
and records an `AssetMaterialization` of that partition. The code that runs and
the files it writes are those of `dagster asset materialize --partition 00`;
`embeddings_clip` and everything downstream read them as usual.

The executor comes from `FACESTATS_SHARD_EXECUTOR`:

* `multiprocess` (default): one process per shard on this machine;
* `celery`: `dagster_celery.celery_executor`, each shard a task on a Celery worker;
* `k8s`: `dagster_k8s.k8s_job_executor`, each shard a Kubernetes job (pod).

See docs/deploy.md for the run config of each.
"""

# No `from __future__ import annotations` here: Dagster inspects the ops' `context` annotation.

import os
import socket
import time
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.embedding.checkpoint import clear_parts
from facestats_core.io.atomic import atomic_write_parquet
from facestats_dagster.defs.automation import IMAGE_ASSET_KEYS
from facestats_dagster.defs.embeddings import embedding_shards
from facestats_dagster.defs.faces import face_chips, face_detections
from facestats_dagster.defs.images import raw_images
from facestats_dagster.partitions import SHARD_KEYS
from facestats_dagster.settings import load_settings

SHARD_JOB_NAME = "image_shards"
SHARD_EXECUTORS = ("multiprocess", "celery", "k8s")
SHARD_ASSETS = tuple(key.to_user_string() for key in IMAGE_ASSET_KEYS)
"""The assets each shard op materializes (the image-level group of `facestats update`)."""
SHARD_RESOURCES = ("paths", "faces", "clip")


def library_version(dagster_version: str = dg.__version__) -> str:
    """The release of Dagster's integration libraries that matches a core release: 1.13.28 -> 0.29.28."""
    major, minor, patch = dagster_version.split(".")[:3]
    return f"0.{int(major) * 16 + int(minor)}.{patch}"


def shard_executor(name: str | None = None) -> dg.ExecutorDefinition:
    """The executor of `image_shards`, from `FACESTATS_SHARD_EXECUTOR` (default multiprocess)."""
    name = (name or load_settings()["run.shard_executor"]).strip().lower()
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "celery":
        try:
            from dagster_celery import celery_executor  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ImportError(
                "FACESTATS_SHARD_EXECUTOR=celery needs dagster-celery of the same release as dagster "
                f"(dagster {dg.__version__} -> dagster-celery=={library_version()}): {exc}"
            ) from exc
        return celery_executor
    if name == "k8s":
        try:
            from dagster_k8s import k8s_job_executor  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ImportError(
                "FACESTATS_SHARD_EXECUTOR=k8s needs dagster-k8s of the same release as dagster "
                f"(dagster {dg.__version__} -> dagster-k8s=={library_version()}): {exc}"
            ) from exc
        return k8s_job_executor
    raise ValueError(f"FACESTATS_SHARD_EXECUTOR must be one of {', '.join(SHARD_EXECUTORS)}, got {name!r}")


def run_shard(context: dg.OpExecutionContext, shard: str) -> dict[str, int]:
    """Materialize the image-level assets of one shard; returns `{asset: rows}`."""
    resources = {key: getattr(context.resources, key) for key in SHARD_RESOURCES}
    layout = resources["paths"].layout()
    worker = {"worker_pid": os.getpid(), "worker_host": socket.gethostname()}
    rows: dict[str, int] = {}

    def invoke(asset: dg.AssetsDefinition, **inputs: Any) -> dict[str, pl.DataFrame]:
        name = asset.key.to_user_string()
        asset_context = dg.build_asset_context(
            partition_key=shard, resources=resources, instance=context.instance
        )
        started = time.time()
        outputs = asset(asset_context, **inputs)
        frame = outputs[shard]
        path = layout.artifact_dir(name) / f"{shard}.parquet"  # = the IO manager's partition path
        atomic_write_parquet(path, frame)
        clear_parts(layout.checkpoint_dir(name, shard), prune=2)  # as the IO manager does after writing a partition
        metadata = {
            **asset_context.get_output_metadata("result"),
            "path": dg.MetadataValue.path(str(path)),
            "dagster/row_count": frame.height,
            **worker,
            "started": dg.MetadataValue.timestamp(started),
            "finished": dg.MetadataValue.timestamp(time.time()),
        }
        context.log_event(dg.AssetMaterialization(asset_key=asset.key, partition=shard, metadata=metadata))
        rows[name] = frame.height
        return outputs

    context.log.info(f"shard {shard}: pid {worker['worker_pid']} on {worker['worker_host']}")
    raw = invoke(raw_images)
    detections = invoke(face_detections, raw_images=raw)
    chips = invoke(face_chips, face_detections=detections)
    invoke(embedding_shards, face_chips=chips)
    return rows


def _shard_op(shard: str) -> dg.OpDefinition:
    @dg.op(
        name=f"shard_{shard}",
        required_resource_keys=set(SHARD_RESOURCES),
        out=dg.Out(dg.Nothing),
        tags={"facestats/shard": shard},
        description=f"raw_images, face_detections, face_chips and embedding_shards of shard {shard}",
    )
    def shard_op(context: dg.OpExecutionContext) -> None:
        started = time.perf_counter()
        rows = run_shard(context, shard)
        context.log.info(f"shard {shard} done in {time.perf_counter() - started:.1f} s: {rows}")

    return shard_op


def build_shard_job(
    shards: list[str] | None = None, executor: dg.ExecutorDefinition | None = None
) -> dg.JobDefinition:
    """`image_shards`: one independent op per shard, so the executor runs them side by side."""
    ops = [_shard_op(shard) for shard in (shards or SHARD_KEYS)]

    @dg.job(
        name=SHARD_JOB_NAME,
        executor_def=executor or shard_executor(),
        description=(
            "The image-level assets of every shard, one step per shard (FACESTATS_SHARD_EXECUTOR: "
            "multiprocess, celery or k8s). Afterwards materialize embeddings_clip and downstream."
        ),
        tags={"facestats/fan_out": "shards"},
    )
    def image_shards() -> None:
        for op in ops:
            op()

    return image_shards


image_shards_job = build_shard_job()
