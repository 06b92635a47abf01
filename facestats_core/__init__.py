"""Pure Python core of FaceStats, organised by pipeline stage (no Dagster here).

Stages in pipeline order: images -> faces -> embedding -> labels -> models -> analysis -> composites -> statistics -> report;
``io`` holds the storage helpers every stage uses. ``docs/architecture.md`` maps each to its Dagster module.
"""
