"""Wall-clock of three hot paths whose speed unit tests used to assert (timings belong here, not in tests).

Usage: python -m benchmarks.bench_statistics

* draft JPEG decode: a 6000x4000 JPEG decoded for a 256 px target (`load_rgb(draft_size=256)`);
  the claim: well under 2 s.
* corrected shares: 30 slices of a 9-class attribute, 1000 bootstrap replicates each
  (`corrected_prevalences`); the claim: under 2 s.
* `face_statistics` on a 600-face synthetic master with three composite member lists, 1000
  replicates; the claim: under 5 s.

Prints one line per case: seconds and the claimed bound. Run it on an idle machine.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
from PIL import Image


def _seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def draft_decode() -> None:
    from facestats_core.images.decode import load_rgb

    buffer = io.BytesIO()
    Image.new("RGB", (6000, 4000), (200, 120, 90)).save(buffer, format="JPEG", quality=80)
    data = buffer.getvalue()
    print(f"draft decode 6000x4000 -> 256 px: {_seconds(lambda: load_rgb(data, draft_size=256)):.3f} s (claim < 2 s)")


def corrected_shares() -> None:
    from facestats_core.statistics.prevalence import corrected_prevalences

    rng = np.random.default_rng(0)
    k = 9
    C = rng.multinomial(40, np.full(k, 1 / k), size=k) + np.eye(k, dtype=int) * 60
    counts = rng.multinomial(600, rng.dirichlet(np.full(k, 0.5)), size=30)
    seconds = _seconds(lambda: corrected_prevalences(C, counts, tuple("abcdefghi"), n_boot=1000))
    print(f"corrected shares, 30 slices x 1000 replicates: {seconds:.3f} s (claim < 2 s)")


def face_statistics_600() -> None:
    from facestats_core.statistics.face_statistics import face_statistics
    from tests.core.statistics.synthetic_master import synthetic_master

    master, confusion, truth = synthetic_master(600, seed=0)
    ids = master["face_id"].to_list()
    composites = {f"n={50 * (i + 1)}": ids[: 50 * (i + 1)] for i in range(3)}
    seconds = _seconds(lambda: face_statistics(master, confusion, truth, composites, n_boot=1000))
    print(f"face_statistics, 600 faces, 1000 replicates: {seconds:.3f} s (claim < 5 s)")


def main() -> None:
    draft_decode()
    corrected_shares()
    face_statistics_600()


if __name__ == "__main__":
    main()
