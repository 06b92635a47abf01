"""The compiled loops still import and run where numba can write no cache (a read-only install run by a
user without a writable home): simulated with numba's own setting of the cache locators."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = """
import numpy as np
from numba import njit
try:
    njit(cache=True)(lambda x: x + 1)
except RuntimeError as exc:
    assert "cannot cache" in str(exc), exc
else:
    raise AssertionError("numba found a cache location: the setting did not take")
from facestats_core.composites.warp import bilinear_sample
from facestats_core.statistics.class_draws import count_classes
values, inside = bilinear_sample(np.full((4, 4, 3), 9, np.uint8), np.array([1.5], np.float32), np.array([0.5], np.float32))
assert values.tolist() == [[9.0, 9.0, 9.0]] and inside.tolist() == [True]
counts = count_classes(np.ones((1, 3, 2), np.float32), np.zeros((1, 3, 1), np.float32))
assert counts.tolist() == [[3, 0]], counts  # u = 0: below every cumulative weight, class 0
print("ok")
"""


def test_compiled_loops_run_without_a_cache_location() -> None:
    # IPython's locator is the only one numba may use here, and it serves only IPython cells: no location
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
