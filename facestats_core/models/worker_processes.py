"""Independent jobs in worker processes: ``run_jobs([(fn, args), ...], workers)`` is ``[fn(*args), ...]``.

With ``workers > 1`` the jobs run in joblib's loky worker processes (at most one per job), which are shut
down as soon as the results are in, so their memory goes back at once rather than after an idle timeout
and no worker outlives the step that used it. The jobs must be picklable module-level functions and
must not depend on the order they run in (each seeds its own randomness): then the results are the
same whatever ``workers`` is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Job = tuple[Callable[..., Any], tuple[Any, ...]]


def run_jobs(jobs: Sequence[Job], workers: int) -> list[Any]:
    """Each job's result, in the order of ``jobs``; ``workers`` processes (1: in this process)."""
    n_jobs = min(len(jobs), max(1, int(workers)))
    if n_jobs <= 1:
        return [fn(*args) for fn, args in jobs]
    from joblib.externals.loky import get_reusable_executor  # noqa: PLC0415 - imported when used

    executor = get_reusable_executor(max_workers=n_jobs, timeout=1)
    try:
        futures = [executor.submit(fn, *args) for fn, args in jobs]
        return [future.result() for future in futures]
    finally:
        executor.shutdown(wait=True)
