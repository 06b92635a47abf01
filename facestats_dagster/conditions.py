"""Declarative automation conditions, put on the asset decorators.

While a Dagster daemon runs (`dagster dev`, a deployment), `default_automation_condition_sensor`
(`defs/automation.py`) evaluates them: unpartitioned downstream assets follow their upstreams,
`composite` partitions are rebuilt when the master table updates, and asset checks are requested
with their asset (they are in its `check_specs` and run in its step: Dagster requests a
non-subsettable asset's checks with it, so they need no condition of their own). The image shard assets carry no condition:
`new_images_sensor` and the daily schedule request them. `docs/operations.md` explains the whole set-up.
"""

from __future__ import annotations

import dagster as dg

A = dg.AutomationCondition

FOLLOW_UPSTREAM = A.eager()
"""Run after any upstream updated, once none is missing or in progress."""


def follow_upstream_except(*optional: str) -> dg.AutomationCondition:
    """`FOLLOW_UPSTREAM`, but the named upstreams may be missing (they are optional inputs, e.g.
    `attractiveness_scores` when no ratings are configured)."""
    return FOLLOW_UPSTREAM.replace(
        "any_deps_missing", A.any_deps_missing().ignore(dg.AssetSelection.assets(*optional))
    )


REFRESH_COMPOSITES = (
    A.in_latest_time_window()
    & A.any_deps_updated().since_last_handled()
    & ~A.any_deps_missing()
    & ~A.any_deps_in_progress()
    & ~A.in_progress()
).with_label("rebuild_when_master_updates")
"""`composite` partitions: rebuilt when `master_metadata` updates; new specs are requested by
`composite_specs_sensor` (so no `newly_missing` trigger here)."""
