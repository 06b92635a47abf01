"""FaceStats definitions, one module per pipeline stage, loaded by `dg.load_from_defs_folder`.

In pipeline order: `images` → `faces` → `embeddings` → `attributes` / `attractiveness` →
`master` → `composites` → `statistics` → `report`; across stages: `checks` (asset checks), `automation`
(sensors, schedule, image job), `scaleout` (the shard-partitioned scale-out job), `resources` (resources and IO
managers from `facestats_dagster.settings`). `docs/architecture.md` maps each module to its core
package and tests.
"""
