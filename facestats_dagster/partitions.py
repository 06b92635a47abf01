"""Partitions: hash shards of the image-level assets and the composite filter specs.

`run.shards` (`FACESTATS_SHARDS`, default 4) fixes the number of shards when the definitions load; an image's
shard is `int(sha256[:8], 16) % shards`. Composite specs are dynamic partitions whose keys are
canonical filter specs (`facestats_core.composites.filter_spec`), added by
`composite_specs_sensor` or `facestats composites add|sync`.
"""

from __future__ import annotations

import dagster as dg

from facestats_core.io.hashing import shard_keys
from facestats_dagster.names import COMPOSITE_SPECS, IMAGE_GROUP
from facestats_dagster.settings import load_settings

__all__ = ["ALL_SHARDS_RANGE", "COMPOSITE_SPECS", "IMAGE_GROUP", "N_SHARDS", "SHARD_KEYS", "composite_specs",
           "shard_partitions"]

N_SHARDS = load_settings()["run.shards"]
SHARD_KEYS = shard_keys(N_SHARDS)
shard_partitions = dg.StaticPartitionsDefinition(SHARD_KEYS)
ALL_SHARDS_RANGE = f"{SHARD_KEYS[0]}...{SHARD_KEYS[-1]}"

composite_specs = dg.DynamicPartitionsDefinition(name=COMPOSITE_SPECS)
