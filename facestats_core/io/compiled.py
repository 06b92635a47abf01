"""numba's ``njit`` with its on-disk cache where one can be written, and without it where none can.

``cache=True`` makes numba look for a writable cache folder when the function is *decorated* (beside the
module, else the user's cache folder); on a read-only install run by a user without a writable home it
finds none and raises ``RuntimeError`` at import. :func:`compiled` then compiles without the cache: the
same machine code, built once per process (about a second) instead of once per machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit


def compiled(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``njit(cache=True, **options)``, or ``njit(cache=False, **options)`` where numba has no cache folder."""

    def decorate(function: Callable[..., Any]) -> Any:
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            return njit(cache=False, **options)(function)

    return decorate
