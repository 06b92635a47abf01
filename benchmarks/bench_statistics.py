"""Wall-clock of three hot paths, each against its claimed bound (timings belong here, not in tests).

Usage: python -m benchmarks.bench_statistics

* draft JPEG decode: a 6000x4000 JPEG decoded for a 256 px target (`load_rgb(draft_size=256)`);
  the claim: well under 2 s.
* corrected shares: 30 slices of 600 faces of a 9-class attribute, the default estimator with its
  default calibration replicates (calibration refitted per replicate) and its posterior interval (one
  Gibbs chain per replicate), and the previous bootstrap interval for comparison (faces resampled,
  early-stopped and converged replicates); the claim: under 20 s.
* `face_statistics` on a 600-face synthetic master with three composite member lists; the claim: under 30 s.

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
    from facestats_core.statistics.face_statistics import EM_STEPS, METHOD, SHARE_BOOT
    from facestats_core.statistics.quantifiers import fit_quantifier, quantify
    from facestats_core.statistics.share_intervals import bootstrap_fits, share_intervals
    from facestats_core.statistics.share_posterior import posterior_intervals
    from tests.core.statistics.synthetic_master import synthetic_posteriors

    rng = np.random.default_rng(0)
    k = 9
    labels = np.repeat(np.arange(k), 40)
    calibration = synthetic_posteriors(labels, k, 2.0, rng)
    targets = [synthetic_posteriors(rng.choice(k, size=600, p=rng.dirichlet(np.full(k, 0.5))), k, 2.0, rng)
               for _ in range(30)]

    def work(posterior: bool) -> None:
        fits = bootstrap_fits(METHOD, calibration, labels, n_boot=SHARE_BOOT, em_steps=EM_STEPS)
        if posterior:
            point = fit_quantifier(METHOD, calibration, labels, em_steps=EM_STEPS)
            posterior_intervals(fits, targets, np.stack([quantify(point, t) for t in targets]))
        else:
            share_intervals(fits, targets)

    for posterior in (True, False):  # the default; the previous bootstrap interval, for comparison
        label = "posterior interval (default)" if posterior else "previous bootstrap interval"
        print(f"corrected shares ({METHOD}, {EM_STEPS} EM steps, {label}), 30 slices x 600 faces x {SHARE_BOOT} "
              f"replicates: {_seconds(lambda: work(posterior)):.3f} s (claim < 20 s)")


def face_statistics_600() -> None:
    from facestats_core.statistics.face_statistics import face_statistics
    from tests.core.statistics.synthetic_master import synthetic_master

    master, calibration, truth = synthetic_master(600, seed=0)
    ids = master["face_id"].to_list()
    composites = {f"n={50 * (i + 1)}": ids[: 50 * (i + 1)] for i in range(3)}
    seconds = _seconds(lambda: face_statistics(master, calibration, truth, composites, n_boot=1000))
    print(f"face_statistics, 600 faces, 1000 mean-score replicates, default share replicates: {seconds:.3f} s "
          f"(claim < 30 s)")


def main() -> None:
    draft_decode()
    corrected_shares()
    face_statistics_600()


if __name__ == "__main__":
    main()
