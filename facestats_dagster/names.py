"""Names the definitions and the command line share, fixed (no setting changes them)."""

IMAGE_GROUP = "images"
"""The group of the shard-partitioned image assets (raw_images, face_detections,
face_chips, embedding_shards): what the sensor, the schedule, the scale-out job and
`facestats update` run over every shard, selected as `group:images`."""

COMPOSITE_SPECS = "composite_specs"
"""The dynamic partitions of the `composite` asset: canonical filter specs."""
