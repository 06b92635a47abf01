"""Partitions: hash shards of the image-level assets and the composite filter specs.

`FACESTATS_SHARDS` (default 4) fixes the number of shards when the definitions load; an image's
shard is `int(sha256[:8], 16) % shards`. Composite specs are dynamic partitions whose keys are
canonical filter specs (`facestats_core.composites.filter_spec`), added by
`composite_specs_sensor` or `facestats composites add|sync`.
"""

from __future__ import annotations

import dagster as dg

from facestats_core.io.hashing import shard_keys
from facestats_dagster.settings import load_settings

N_SHARDS = load_settings().shards
SHARD_KEYS = shard_keys(N_SHARDS)
shard_partitions = dg.StaticPartitionsDefinition(SHARD_KEYS)
ALL_SHARDS_RANGE = f"{SHARD_KEYS[0]}...{SHARD_KEYS[-1]}"

IMAGE_GROUP = "images"
"""The group of the shard-partitioned image assets (raw_images, face_detections,
face_chips, embedding_shards): what the sensor, the schedule, the scale-out job and
`facestats update` run over every shard, selected as `group:images`."""

COMPOSITE_SPECS = "composite_specs"
composite_specs = dg.DynamicPartitionsDefinition(name=COMPOSITE_SPECS)
