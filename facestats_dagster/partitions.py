"""Hash shards of the image-level assets.

``FACESTATS_SHARDS`` (default 4) fixes the number of shards when the
definitions load; an image's shard is ``int(sha256[:8], 16) % shards``.
"""

from __future__ import annotations

import os

import dagster as dg

from facestats_core.io.hashing import shard_keys

N_SHARDS = int(os.environ.get("FACESTATS_SHARDS") or 4)
SHARD_KEYS = shard_keys(N_SHARDS)
shard_partitions = dg.StaticPartitionsDefinition(SHARD_KEYS)
ALL_SHARDS_RANGE = f"{SHARD_KEYS[0]}...{SHARD_KEYS[-1]}"
