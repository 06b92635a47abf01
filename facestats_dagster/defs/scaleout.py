"""Scale-out: `image_shards`, the image-level assets as a job partitioned by hash shard.

`raw_images` → `face_detections` → `face_chips` → `embedding_shards`, one partition per
shard. A backfill of this job (`dagster job backfill -j image_shards --all`, or the UI's
*Launch backfill*) submits one run per shard to the instance's run coordinator, which starts
them side by side (queued with concurrency limits under the `QueuedRunCoordinator`) on its run
launcher (a process per run by default, a pod per run with `dagster-k8s`' `K8sRunLauncher`).
Each run's steps go where the job's executor sends them, chosen by `FACESTATS_SHARD_EXECUTOR`:

* `multiprocess` (default): a process per step, on the run's machine;
* `celery`: `dagster_celery.celery_executor`, each step a task on a Celery worker;
* `k8s`: `dagster_k8s.k8s_job_executor`, each step a Kubernetes job (pod).

The executor's config (broker, pod resources, …) is the job's run config, read from the YAML file
`FACESTATS_SHARD_RUN_CONFIG` names, so every run of a backfill carries it.

The assets' IO manager writes every partition, as in any other run; `embeddings_clip` and
everything downstream read them as usual. docs/deploy.md gives the run config of each executor.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from facestats_dagster.defs.automation import IMAGE_ASSET_KEYS
from facestats_dagster.settings import load_settings

SHARD_JOB_NAME = "image_shards"
SHARD_EXECUTORS = ("multiprocess", "celery", "k8s")
SHARD_ASSETS = tuple(key.to_user_string() for key in IMAGE_ASSET_KEYS)
"""The assets each shard's run materializes (the image-level group), in run order."""


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
            from dagster_celery import celery_executor  # noqa: PLC0415 - optional dependency (the `celery` extra)
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


def shard_run_config(path: str | None = None) -> dict[str, Any] | None:
    """The run config of every `image_shards` run, from the YAML file `FACESTATS_SHARD_RUN_CONFIG` names
    (the executor's config, e.g. the Celery broker; a backfill's runs carry the job's config); None when unset."""
    path = load_settings()["run.shard_run_config"] if path is None else path
    if not path:
        return None
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"FACESTATS_SHARD_RUN_CONFIG={path}: cannot read a YAML run config: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"FACESTATS_SHARD_RUN_CONFIG={path}: a run config is a mapping (e.g. `execution:`)")
    return config


image_shards_job = dg.define_asset_job(
    SHARD_JOB_NAME,
    selection=dg.AssetSelection.assets(*IMAGE_ASSET_KEYS),
    executor_def=shard_executor(),
    config=shard_run_config(),
    tags={"facestats/fan_out": "shards"},
    description=(
        "raw_images, face_detections, face_chips and embedding_shards, partitioned by hash shard: "
        "backfill it (one run per shard) to spread the shards over run workers; the steps run on "
        "FACESTATS_SHARD_EXECUTOR (multiprocess, celery or k8s). Afterwards materialize "
        "embeddings_clip and downstream."
    ),
)
"""One run per shard partition (a backfill), each on the configured executor."""
