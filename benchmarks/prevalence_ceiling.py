"""How far the probes' posteriors let a share estimator go: the Dirichlet error of the default against
estimators that know more than it may, on the select half of ``bench_prevalence.py``'s pool.

Usage: python benchmarks/prevalence_ceiling.py [--cache DIR] [--samples 200]

Same probes, calibration data, pool halves and Dirichlet samples as ``bench_prevalence.py`` (its
``draw_samples``/``target_shares``, same seeds, select half). Per attribute, MAE (pp) mean over the sizes
50 / 100 / 300 / 600, and its ratio to counting's:

* ``counting``; ``default`` (EM-BCTS, ``EM_STEPS`` steps, out-of-fold calibration);
* ``posterior mean``: the posterior mean of the sample's shares under the uniform prior on the
  population's (``gibbs_shares``, one chain per sample, 100 steps, the last 50 used) — the
  squared-error-optimal estimate when the protocol's shares are drawn from that very prior and the
  calibrated posteriors are the faces' true likelihoods, so no estimator on these likelihoods does much
  better on average;
* ``in-domain calibration``: the default with its BCTS calibration fitted on 1,500 faces of the *other*
  pool half (the shipped probe's posteriors on faces like the samples', but not the samples') instead
  of the reference set's out-of-fold posteriors: what calibration data of the same size from the
  folder's own distribution would give; mean over 8 random subsets, and their range (how much the
  error depends on which 1,500 calibration faces one has);
* ``probe C``: the age probe retrained with another regularisation ``C`` (counting changes with it).

With ``--intervals``: the 95 % posterior intervals of ``face_statistics`` (``posterior_intervals``'s
sampler) on 60 Dirichlet samples per size, once with the out-of-fold calibration (as shipped) and once
with an *oracle* calibration fitted (and bootstrapped) on the select half's own pool, the faces the
samples are drawn from: coverage and mean width of the equal-tailed interval (shipped) and of the
shortest interval holding 95 % of the draws (HPD). The oracle's HPD is about the narrowest interval
that keeps the coverage, because under a correct likelihood and the prior the samples are drawn from,
the posterior's level sets are the shortest sets with that average coverage.

Also the mean width of the same posterior interval for a *perfect* classifier (every face's class known:
the Dirichlet(1 + counts) posterior; 300 Dirichlet samples per size): the width no probe can go below.

Last line: ``ceiling: attribute=ratio …`` for the posterior mean and the in-domain calibration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_prevalence import SIZES, codes, draw_samples, target_shares  # noqa: E402
from prevalence_data import demo_sets  # noqa: E402

from facestats_core.labels.vocab import ATTRIBUTES  # noqa: E402
from facestats_core.models.classifiers import train_attribute_classifier  # noqa: E402
from facestats_core.models.prevalence_calibration import calibration_data  # noqa: E402
from facestats_core.statistics.face_statistics import EM_STEPS, METHOD  # noqa: E402
from facestats_core.statistics.quantifiers import fit_quantifier, quantify  # noqa: E402
from facestats_core.statistics.share_intervals import bootstrap_fits  # noqa: E402
from facestats_core.statistics.share_posterior import face_likelihoods, gibbs_shares  # noqa: E402


def posterior_mean(fitted, P: np.ndarray, start: np.ndarray, seed: int) -> np.ndarray:
    """``(s, k)``: per sample of ``P`` ``(s, n, k)`` the posterior mean of the *sample's* shares (the
    protocol's truth): over 50 Gibbs draws of ``p`` after 50 steps, the mean of each face's class
    probabilities ``∝ p ∘ L`` (Rao-Blackwellised)."""
    L = np.stack([face_likelihoods(fitted, p)[0] for p in P])
    draws = gibbs_shares(L, start, np.random.default_rng(seed), steps=100, keep=50).reshape(50, len(P), -1)
    total = np.zeros(draws.shape[1:])
    for p in draws:
        r = L * p[:, None, :]
        total += (r / r.sum(axis=-1, keepdims=True)).mean(axis=1)
    return total / len(draws)


def errors(P_cal, y_cal, P_h, y_h, attr_index, samples, *, others=(), seed=0):
    """Per estimator the MAE (pp) mean over sizes on the Dirichlet samples of one pool half."""
    k = P_cal.shape[1]
    default = fit_quantifier(METHOD, P_cal, y_cal, em_steps=EM_STEPS)
    converged = fit_quantifier(METHOD, P_cal, y_cal)
    out: dict[str, list[float]] = {}
    mix = np.full(k, 1.0 / k)
    for size in SIZES:
        rng = np.random.default_rng([seed, 1, size, attr_index, 0])  # bench_prevalence's select-half stream
        shares = target_shares("dirichlet", k, mix, samples, rng)
        idx, truth = draw_samples(shares, size, y_h, k, rng)
        P = P_h[idx]
        est = {"counting": quantify(fit_quantifier("cc", P_cal, y_cal), P), "default": quantify(default, P)}
        est["posterior mean"] = posterior_mean(converged, P, est["default"], seed=size)
        for j, other in enumerate(others):
            est[f"in-domain {j}"] = quantify(fit_quantifier(METHOD, *other, em_steps=EM_STEPS), P)
        for name, value in est.items():
            out.setdefault(name, []).append(float(100 * np.abs(value - truth).mean()))
    return {name: float(np.mean(v)) for name, v in out.items()}


def interval_check(P_cal, y_cal, P_h, y_h, attr_index, samples: int = 60) -> dict[str, tuple[float, float]]:
    """Coverage of the drawn shares and mean width (pp), mean over sizes: equal-tailed and HPD 95 %."""
    k = P_cal.shape[1]
    fits = bootstrap_fits(METHOD, P_cal, y_cal, n_boot=200, seed=[0, 1])
    point = fit_quantifier(METHOD, P_cal, y_cal, em_steps=EM_STEPS)
    res: dict[str, list[tuple[float, float]]] = {"equal-tailed": [], "HPD": []}
    for size in SIZES:
        rng = np.random.default_rng([0, 1, size, attr_index, 0])
        shares = target_shares("dirichlet", k, np.full(k, 1.0 / k), 200, rng)
        idx, _ = draw_samples(shares, size, y_h, k, rng)
        cells = {name: ([], []) for name in res}
        for s in range(samples):
            P = P_h[idx[s]]
            draws = gibbs_shares(face_likelihoods(fits, P), quantify(point, P),
                                 np.random.default_rng([size, s]))
            srt = np.sort(draws, axis=0)
            m = int(np.ceil(0.95 * len(srt)))
            j = (srt[m - 1:] - srt[: len(srt) - m + 1]).argmin(axis=0)
            bounds = {"equal-tailed": tuple(np.quantile(draws, [0.025, 0.975], axis=0)),
                      "HPD": (srt[j, np.arange(k)], srt[j + m - 1, np.arange(k)])}
            for name, (lo, hi) in bounds.items():
                cells[name][0].append(((shares[s] >= lo) & (shares[s] <= hi)).mean())
                cells[name][1].append(100 * (hi - lo).mean())
        for name, (cov, wid) in cells.items():
            res[name].append((float(np.mean(cov)), float(np.mean(wid))))
    return {name: (float(np.mean([c for c, _ in v])), float(np.mean([w for _, w in v])))
            for name, v in res.items()}


def perfect_classifier_width(k: int, samples: int = 300) -> float:
    """Mean width (pp, over classes, samples and sizes) of the 95 % posterior interval of the population's
    shares when every face's class is known: Dirichlet(1 + counts), shares drawn from Dirichlet(1, …, 1)."""
    rng = np.random.default_rng(0)
    widths = []
    for size in SIZES:
        for _ in range(samples):
            draws = rng.dirichlet(1 + rng.multinomial(size, rng.dirichlet(np.ones(k))), size=4000)
            low, high = np.quantile(draws, [0.025, 0.975], axis=0)
            widths.append(100 * (high - low).mean())
    return float(np.mean(widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="benchmarks/.cache/prevalence")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--intervals", action="store_true", help="also the interval check (slow: minutes)")
    args = parser.parse_args()
    sets = demo_sets(Path(args.cache))
    ref = sets["reference"]
    X_pool = np.concatenate([sets["analysed"].X, sets["evaluation"].X])
    ceiling = []
    for a, (attr, classes) in enumerate(ATTRIBUTES.items()):
        y_pool = np.concatenate([codes(sets["analysed"].labels[attr], classes),
                                 codes(sets["evaluation"].labels[attr], classes)])
        half = np.random.default_rng([0, 99]).permutation(len(y_pool)) % 2
        c_grid = (None,) if attr != "age" else (None, 0.03, 0.1)
        for C in c_grid:
            probe = train_attribute_classifier(ref.X, ref.labels[attr], classes, seed=0,
                                               **({} if C is None else {"c_grid": (C,)}))
            oof = calibration_data(ref.X, ref.labels[attr], classes, C=probe.C, seed=0)
            P_all = probe.predict_proba(X_pool).astype(np.float64)
            P_sel, y_sel = P_all[half == 0], y_pool[half == 0]
            P_oth, y_oth = P_all[half == 1], y_pool[half == 1]
            picks = [np.random.default_rng(r).permutation(len(y_oth))[: len(oof.labels)] for r in range(8)]
            res = errors(oof.posteriors.astype(np.float64), oof.labels, P_sel, y_sel, a, args.samples,
                         others=[(P_oth[p], y_oth[p]) for p in picks] if C is None else ())
            cc = res["counting"]
            domain = [res.pop(f"in-domain {j}") / cc for j in range(len(picks) if C is None else 0)]
            tag = f"{attr} (probe C={probe.C})"
            print(f"{tag:>26}: " + "   ".join(f"{n} {v:.2f} ({v / cc:.2f}x)" for n, v in res.items())
                  + (f"   in-domain calibration {np.mean(domain):.2f}x (8 subsets: {min(domain):.2f}-"
                     f"{max(domain):.2f}x)" if domain else ""), flush=True)
            if C is None and args.intervals:
                width = perfect_classifier_width(len(classes))
                print(f"{attr:>26}  intervals, perfect classifier: width {width:.1f} pp", flush=True)
                shipped = (oof.posteriors.astype(np.float64), oof.labels)
                for name, cal in (("out-of-fold calibration", shipped),
                                  ("oracle calibration", (P_sel, y_sel))):
                    check = interval_check(*cal, P_sel, y_sel, a)
                    print(f"{attr:>26}  intervals, {name}: " + "   ".join(
                        f"{n} coverage {c:.3f} width {w:.1f} pp" for n, (c, w) in check.items()), flush=True)
            if C is None:
                ceiling.append(f"{attr}={res['posterior mean'] / cc:.2f}/{np.mean(domain):.2f}")
    print("ceiling: posterior mean / in-domain calibration, ratio to counting: " + " ".join(ceiling))


if __name__ == "__main__":
    main()
