"""One progress logger for the long loops of the image-level assets (and `run_events.report_progress`
for a progress display in the same process)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dagster as dg

from facestats_dagster.run_events import report_progress

PROGRESS_EVERY_SECONDS = 10.0
"""Long loops log `done/total` and images/s at most this often (and once at the end)."""


def _step_of(context: Any) -> str | None:
    """The asset the loop runs for (the display's line), or None when the context has no single asset."""
    try:
        return context.asset_key.to_user_string()
    except (AttributeError, dg.DagsterInvariantViolationError):
        return None


def progress_logger(
    context: dg.AssetExecutionContext, label: str, every_seconds: float = PROGRESS_EVERY_SECONDS
) -> Callable[..., None]:
    """A `progress(done, total, *ignored)` callback that logs `label: done/total images, N images/s`
    every `every_seconds` and at the end (the rate counts reused images too). Extra positional
    arguments (e.g. the embedder's elapsed seconds) are accepted and ignored."""
    started = last = time.perf_counter()
    step = _step_of(context)

    def log(done: int, total: int, *_: Any) -> None:
        nonlocal last
        report_progress(step, label, done, total)
        now = time.perf_counter()
        if done == total or now - last >= every_seconds:
            last = now
            rate = done / (now - started) if now > started else 0.0
            context.log.info(f"{label}: {done}/{total} images, {rate:.1f} images/s")

    return log
