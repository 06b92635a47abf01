"""Which class-share estimator to trust: a quantification benchmark on the demo's probes.

Usage: python benchmarks/bench_prevalence.py [--cache DIR] [--samples 200] [--boot 100] [--interval-samples 60]

Data (``benchmarks/prevalence_data.py``, cached under ``--cache``): the demo reference set (seed 0,
1,500 balanced faces) and analysed folder (seed 1, 600 faces, shifted mix) as ``facestats demo`` writes
them, plus 6,000 balanced faces of seed 2, embedded with the demo CLIP.

Per attribute (gender, age, ethnicity):

* the shipped probe: ``train_attribute_classifier`` on the reference set (stratified 20 % held out);
* calibration data from two sources: ``heldout`` — the probe's posteriors on its 300 held-out faces;
  ``oof`` — 5-fold out-of-fold posteriors over all 1,500 reference faces (fold probes with the shipped
  probe's C, each trained on 1,200 faces like the shipped one: ``calibration_data``);
* test samples drawn (with replacement, per class) from the analysed + seed-2 faces, which no model saw,
  predicted by the shipped probe, under the artificial prevalence protocol: ``noshift`` (the reference
  mix), ``dirichlet`` (shares ~ Dirichlet(1,…,1), ``--samples`` draws) and ``shift70`` (one class 70 %,
  the rest equal; every class in turn), each at slice sizes 50 / 100 / 300 / 600;
* every estimator of ``facestats_core.statistics.quantifiers`` × source, and EM-BCTS stopped after
  ``EM_STEP_GRID`` steps (``em_steps``): MAE over classes (pp, each sample against its own drawn shares),
  its mean and 90th percentile;
* the pool (analysed + seed-2 faces) is split into two disjoint halves: the default estimator (lowest
  Dirichlet MAE averaged over attributes and sizes) and the context-reweighting switch are chosen on the
  ``select`` half; every reported figure, the summary included, is measured on the ``test`` half;
* for the default, 95 % posterior intervals of the population's shares (``posterior_intervals``: one Gibbs
  chain per bootstrap replicate of the calibration data, ``bootstrap_fits``, as ``face_statistics``
  computes them): coverage of the shares each sample was drawn with (the population's) and mean width
  over classes; with ``--old-intervals`` also the previous bootstrap intervals (``share_intervals``:
  faces and calibration resampled, spanning the early-stopped and converged replicates), Dirichlet only;
* the ``joint`` protocol (``joint_shift``): every attribute's shares drawn at once, as in a real folder
  (and the demo's), where an attribute's look can change with another's mix: the default with and
  without its calibration faces reweighted to the sample's estimated mix of the other attributes
  (``context_weights``); reweighting is on by default when it wins on the select half.

Then the analysed demo folder itself (600 faces, all mixes shifted at once): counting, EM-BCTS to
convergence, the default, and the default reweighted.

The small-slice threshold is the smallest size from which the default's MAE is below counting's in the
Dirichlet protocol for every attribute. Last line:
``summary: method=… mae_noshift_pp=… cc_mae_noshift_pp=… mae_dirichlet_pp=… cc_mae_dirichlet_pp=…
mae_shift70_pp=… coverage=… width_pp=…`` (averages over the three attributes and the four sizes, test
half; coverage and width of the Dirichlet samples).

The first run embeds 8,100 demo faces (about 20 minutes on two loaded cores; cached afterwards); a
cached run takes a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prevalence_data import demo_sets  # noqa: E402

from facestats_core.labels.vocab import ATTRIBUTES  # noqa: E402
from facestats_core.models.classifiers import _holdout_split, train_attribute_classifier  # noqa: E402
from facestats_core.models.prevalence_calibration import CalibrationData, calibration_data  # noqa: E402
from facestats_core.statistics import face_statistics as face_statistics_module  # noqa: E402
from facestats_core.statistics.context_weights import context_weights  # noqa: E402
from facestats_core.statistics.quantifiers import METHODS, fit_quantifier, quantify  # noqa: E402
from facestats_core.statistics.share_intervals import bootstrap_fits, share_intervals  # noqa: E402
from facestats_core.statistics.share_posterior import posterior_intervals  # noqa: E402

SIZES = (50, 100, 300, 600)
PROTOCOLS = ("noshift", "dirichlet", "shift70")
EM_STEP_GRID = (3, 5, 7, 10, 20)
"""Early-stopped EM-BCTS variants measured next to EM to convergence (``em_steps`` of ``fit_quantifier``)."""
HALVES = ("select", "test")


def label(method: str, steps: int | None) -> str:
    """A candidate's name: the method, with ``@<steps>`` when EM stops early."""
    return method if steps is None else f"{method}@{steps}"


def parse(name: str) -> tuple[str, int | None]:
    method, _, steps = name.partition("@")
    return method, int(steps) if steps else None


def codes(labels: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[str(v)] for v in labels], dtype=np.int64)


def target_shares(protocol: str, k: int, reference_mix: np.ndarray, samples: int,
                  rng: np.random.Generator) -> np.ndarray:
    """``(s, k)`` class shares the test samples are drawn with."""
    if protocol == "noshift":
        return np.repeat(reference_mix[None], max(samples // 4, 50), axis=0)
    if protocol == "dirichlet":
        return rng.dirichlet(np.ones(k), size=samples)
    reps = max(1, -(-max(samples // 4, 50) // k))
    out = np.full((k * reps, k), 0.3 / (k - 1))
    for c in range(k):
        out[c * reps:(c + 1) * reps, c] = 0.7
    return out


def draw_samples(shares: np.ndarray, n: int, pool_labels: np.ndarray, k: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(s, n)`` into the pool and each sample's true shares ``(s, k)`` (multinomial class counts,
    faces drawn with replacement within their class)."""
    members = [np.flatnonzero(pool_labels == c) for c in range(k)]
    idx = np.empty((len(shares), n), dtype=np.int64)
    truth = np.empty((len(shares), k))
    for s, p in enumerate(shares):
        counts = rng.multinomial(n, p)
        truth[s] = counts / n
        idx[s] = np.concatenate([rng.choice(members[c], size=counts[c]) for c in range(k) if counts[c]])
    return idx, truth


def joint_shift(halves: dict, data: dict[str, CalibrationData], steps: int | None,
                args: argparse.Namespace) -> dict[tuple, float]:
    """The ``joint`` protocol: every attribute's shares drawn from Dirichlet(1, …, 1) at once
    (independently), faces drawn per (gender, age, ethnicity) cell of the pool half (with replacement),
    ``--samples`` // 4 per size (at least 50). Prints per attribute the MAE of counting, the
    default, and the default with its calibration faces reweighted to the sample's estimated mix of the
    other attributes (``context_weights``); returns
    ``{(half, "plain" | "reweighted"): mean MAE over attributes and sizes}``."""
    attrs = list(ATTRIBUTES)
    ks = [len(ATTRIBUTES[a]) for a in attrs]
    out: dict[tuple, float] = {}
    per_size = max(args.samples // 4, 50)
    print(f"\njoint shift (every attribute's shares Dirichlet at once; {per_size} samples per size), "
          f"MAE pp, mean over sizes")
    for h in HALVES:
        Y = np.stack([halves[a][h][1] for a in attrs], axis=1)
        cell = (Y[:, 0] * ks[1] + Y[:, 1]) * ks[2] + Y[:, 2]
        cells = np.unique(cell)
        members = [np.flatnonzero(cell == c) for c in cells]
        g, rest = np.divmod(cells, ks[1] * ks[2])
        age, eth = np.divmod(rest, ks[2])
        res: dict[tuple, list[float]] = {}
        for size in SIZES:
            rng = np.random.default_rng([args.seed, 77, size, HALVES.index(h)])
            S = []
            for _ in range(per_size):
                sh = [rng.dirichlet(np.ones(k)) for k in ks]
                p = sh[0][g] * sh[1][age] * sh[2][eth]
                counts = rng.multinomial(size, p / p.sum())
                S.append(np.concatenate([rng.choice(m, size=c) for m, c in zip(members, counts) if c]))
            S = np.stack(S)
            P = {a: halves[a][h][0][S] for a in attrs}
            fitted = {a: fit_quantifier("emq_bcts", data[a].posteriors.astype(np.float64), data[a].labels,
                                        em_steps=steps) for a in attrs}
            whole = {a: quantify(fitted[a], P[a]) for a in attrs}
            for j, (a, k) in enumerate(zip(attrs, ks)):
                truth = (Y[S, j][..., None] == np.arange(k)).mean(axis=1)
                W = np.stack([context_weights(data[a], a, {o: whole[o][i] for o in attrs})
                              for i in range(len(S))])
                reweighted = quantify(fit_quantifier("emq_bcts", data[a].posteriors.astype(np.float64),
                                                     data[a].labels, weights=W, em_steps=steps), P[a])
                cc = (P[a].argmax(axis=-1)[..., None] == np.arange(k)).mean(axis=1)
                for name, est in (("counting", cc), ("plain", whole[a]), ("reweighted", reweighted)):
                    res.setdefault((name, a), []).append(float(100 * np.abs(est - truth).mean()))
        for name in ("counting", "plain", "reweighted"):
            values = [float(np.mean(res[(name, a)])) for a in attrs]
            out[(h, name)] = float(np.mean(values))
            print(f"  {h:>6} {name:>10}: " + "  ".join(f"{a} {v:5.2f}" for a, v in zip(attrs, values))
                  + f"   mean {out[(h, name)]:5.2f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="benchmarks/.cache/prevalence", help="demo sets and embeddings")
    parser.add_argument("--samples", type=int, default=200, help="Dirichlet samples per size (>= 200)")
    parser.add_argument("--boot", type=int, default=100, help="bootstrap replicates of an interval")
    parser.add_argument("--interval-samples", type=int, default=60, help="samples per protocol and size "
                        "whose intervals are computed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--old-intervals", action="store_true", help="also the previous bootstrap intervals "
                        "(Dirichlet samples)")
    args = parser.parse_args()
    started = time.perf_counter()
    sets = demo_sets(Path(args.cache))
    print(f"data: reference {sets['reference'].X.shape[0]}, pool {sets['analysed'].X.shape[0]} analysed + "
          f"{sets['evaluation'].X.shape[0]} seed-2 faces, {sets['reference'].X.shape[1]}-d "
          f"({time.perf_counter() - started:.1f} s)")
    candidates = [(m, s) for m in METHODS for s in ("heldout", "oof")]
    candidates += [(label("emq_bcts", steps), "oof") for steps in EM_STEP_GRID]
    # mae[(attr, protocol, size, name, source)] = per-sample MAE in pp on the test half of the pool;
    # chosen[...] the same on the select half, where the default is chosen
    mae: dict[tuple, np.ndarray] = {}
    chosen: dict[tuple, np.ndarray] = {}
    fitted_all: dict[tuple, object] = {}
    calib: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    calib_context: dict[str, CalibrationData] = {}
    pools: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    halves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    draws: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for attr, classes in ATTRIBUTES.items():
        k = len(classes)
        ref = sets["reference"]
        y_ref = codes(ref.labels[attr], classes)
        t0 = time.perf_counter()
        probe = train_attribute_classifier(ref.X, ref.labels[attr], classes, seed=args.seed)
        labelled = np.ones(len(y_ref), dtype=bool)
        _, va, _ = _holdout_split(ref.labels[attr].astype(object), labelled, None, args.seed)
        calib[(attr, "heldout")] = (probe.predict_proba(ref.X[va]).astype(np.float64), y_ref[va])
        oof = calibration_data(ref.X, ref.labels[attr], classes, C=probe.C, seed=args.seed,
                               context=ref.labels)
        calib[(attr, "oof")] = (oof.posteriors.astype(np.float64), oof.labels)
        calib_context[attr] = oof
        X_pool = np.concatenate([sets["analysed"].X, sets["evaluation"].X])
        y_pool = np.concatenate([codes(sets["analysed"].labels[attr], classes),
                                 codes(sets["evaluation"].labels[attr], classes)])
        P_all = probe.predict_proba(X_pool).astype(np.float64)
        # two disjoint halves of the pool: the default is chosen on "select", every figure measured on "test"
        half = np.random.default_rng([args.seed, 99]).permutation(len(y_pool)) % 2
        P_sel, y_sel = P_all[half == 0], y_pool[half == 0]
        P_pool, y_pool = P_all[half == 1], y_pool[half == 1]
        pools[attr] = (P_pool, y_pool)
        halves[attr] = {"select": (P_sel, y_sel), "test": (P_pool, y_pool)}
        print(f"{attr}: probe C={probe.C} held-out acc {probe.metrics['accuracy']:.3f} (n {len(va)}), "
              f"out-of-fold acc {float((oof.posteriors.argmax(1) == oof.labels).mean()):.3f} (n {len(oof.labels)}), "
              f"test-half pool acc {float((P_pool.argmax(1) == y_pool).mean()):.3f} (n {len(y_pool)}; "
              f"select half n {len(y_sel)}) "
              f"({time.perf_counter() - t0:.1f} s)")
        for name, source in candidates:
            method, steps = parse(name)
            fitted_all[(attr, name, source)] = fit_quantifier(method, *calib[(attr, source)], em_steps=steps)
        mix = np.bincount(y_ref, minlength=k) / len(y_ref)
        for pi, protocol in enumerate(PROTOCOLS):
            for size in SIZES:
                for h, (P_h, y_h, store) in enumerate(((P_sel, y_sel, chosen), (P_pool, y_pool, mae))):
                    rng = np.random.default_rng([args.seed, pi, size, list(ATTRIBUTES).index(attr), h])
                    shares = target_shares(protocol, k, mix, args.samples, rng)
                    idx, truth = draw_samples(shares, size, y_h, k, rng)
                    if store is mae:
                        draws[(attr, protocol, size)] = (idx, truth, shares)
                    P = P_h[idx]
                    for name, source in candidates:
                        est = quantify(fitted_all[(attr, name, source)], P)
                        store[(attr, protocol, size, name, source)] = 100 * np.abs(est - truth).mean(axis=1)
        print(f"  estimated every sample ({time.perf_counter() - t0:.1f} s)")

    def mean_mae(method: str, source: str, protocol: str, attr: str | None = None,
                 table: dict = mae) -> float:
        attrs = [attr] if attr else list(ATTRIBUTES)
        return float(np.mean([table[(a, protocol, s, method, source)].mean() for a in attrs for s in SIZES]))

    ranking = sorted(((mean_mae(m, s, "dirichlet", table=chosen), m, s) for m, s in candidates
                      if m not in ("cc", "pcc") or s == "oof"))
    print("\nranking on the select half of the pool by Dirichlet MAE (mean over attributes and sizes):")
    for value, m, s in ranking:
        print(f"  {m:>12} {s:>7}  {value:6.2f} pp   noshift {mean_mae(m, s, 'noshift', table=chosen):5.2f}   "
              f"shift70 {mean_mae(m, s, 'shift70', table=chosen):5.2f}")
    _, name, source = ranking[0]
    method, steps = parse(name)
    print(f"\ndefault: {name} with {source} calibration data; every figure below is on the test half")

    print("\nMAE (pp) on the test half, mean over sizes 50/100/300/600 | p90 over all samples; per attribute")
    header = f"{'method':>9} {'source':>7} | " + " | ".join(f"{p:>23}" for p in PROTOCOLS)
    print(header)
    for attr in ATTRIBUTES:
        print(f"-- {attr}")
        for m, src in candidates:
            if m in ("cc", "pcc") and src == "heldout":
                continue  # neither uses calibration data
            cells = []
            for protocol in PROTOCOLS:
                allv = np.concatenate([mae[(attr, protocol, s, m, src)] for s in SIZES])
                cells.append(f"{mean_mae(m, src, protocol, attr):6.2f} | p90 {np.quantile(allv, 0.9):6.2f}")
            print(f"{m:>12} {src:>7} | " + " | ".join(f"{c:>23}" for c in cells))
    print("\nmean over attributes (test half):")
    for m, s in candidates:
        if m not in ("cc", "pcc") or s == "oof":
            print(f"  {m:>12} {s:>7}  Dirichlet {mean_mae(m, s, 'dirichlet'):5.2f}   noshift "
                  f"{mean_mae(m, s, 'noshift'):5.2f}   shift70 {mean_mae(m, s, 'shift70'):5.2f}   "
                  "Dirichlet per attribute "
                  + " ".join(f"{mean_mae(m, s, 'dirichlet', a):5.2f}" for a in ATTRIBUTES))

    print("\nby size (Dirichlet | no shift), default vs counting, MAE pp")
    threshold = None
    for size in SIZES:
        line = []
        helps = True
        for attr in ATTRIBUTES:
            d = mae[(attr, "dirichlet", size, name, source)].mean()
            c = mae[(attr, "dirichlet", size, "cc", "oof")].mean()
            dn = mae[(attr, "noshift", size, name, source)].mean()
            cn = mae[(attr, "noshift", size, "cc", "oof")].mean()
            helps &= d < c
            line.append(f"{attr} {d:5.2f} vs {c:5.2f} | {dn:5.2f} vs {cn:5.2f}")
        if helps and threshold is None:
            threshold = size
        print(f"  n={size:>4}: " + ";  ".join(line))
    print(f"small-slice threshold: the correction beats counting from n = {threshold} on (Dirichlet, every attribute)")

    print(f"\n95 % posterior intervals of {name}/{source}: one Gibbs chain per bootstrap replicate of the "
          f"calibration data ({args.boot}), {args.interval_samples} samples per protocol and size; "
          "coverage / mean width")
    coverage: dict[tuple, float] = {}
    width: dict[tuple, float] = {}
    old: dict[str, list[str]] = {}
    for attr, classes in ATTRIBUTES.items():
        P_pool, _ = pools[attr]
        P_cal, y_cal = calib[(attr, source)]
        t0 = time.perf_counter()
        fits = bootstrap_fits(method, P_cal, y_cal, n_boot=args.boot, seed=[args.seed, 1], em_steps=steps)
        for protocol in PROTOCOLS:
            cells = []
            for size in SIZES:
                idx, _, shares = draws[(attr, protocol, size)]
                idx, shares = idx[: args.interval_samples], shares[: args.interval_samples]
                point = quantify(fitted_all[(attr, name, source)], P_pool[idx])
                low, high = posterior_intervals(fits, P_pool[idx], point, seed=[args.seed, size])
                # the interval is for the population the faces are drawn from: the drawn shares
                inside = (shares >= low - 1e-9) & (shares <= high + 1e-9)
                coverage[(attr, protocol, size)] = float(inside.mean())
                width[(attr, protocol, size)] = float(100 * (high - low).mean())
                small = shares < 0.03
                cells.append(f"n={size}: {inside.mean():.3f} / {100 * (high - low).mean():5.1f} pp"
                             f" (shares < 3 %: {inside[small].mean() if small.any() else float('nan'):.2f})")
                if args.old_intervals and protocol == "dirichlet":
                    low, high = share_intervals(fits, P_pool[idx], seed=[args.seed, size], starts=point)
                    inside = (shares >= low - 1e-9) & (shares <= high + 1e-9)
                    old.setdefault(attr, []).append(f"n={size}: {inside.mean():.3f} / "
                                                    f"{100 * (high - low).mean():5.1f} pp")
            print(f"  {attr:>9} {protocol:>9}  " + "  ".join(cells))
        if attr in old:
            print(f"  {attr:>9} dirichlet, previous bootstrap interval  " + "  ".join(old[attr]))
        print(f"  ({attr}: {time.perf_counter() - t0:.1f} s)")

    def avg(table: dict, protocol: str, attr: str | None = None) -> float:
        attrs = [attr] if attr else list(ATTRIBUTES)
        return float(np.mean([table[(a, protocol, s)] for a in attrs for s in SIZES]))

    joint = joint_shift(halves, {a: calib_context[a] for a in ATTRIBUTES}, steps, args)
    reweight = joint[("select", "reweighted")] < joint[("select", "plain")]
    print(f"context reweighting {'on' if reweight else 'off'} (chosen on the select half: mean joint-shift "
          f"MAE {joint[('select', 'reweighted')]:.2f} pp reweighted vs {joint[('select', 'plain')]:.2f} pp "
          "plain)")

    print("\nthe analysed demo folder itself (600 faces; its gender, age and ethnicity mixes all shifted at once):")
    analysed = sets["analysed"]
    ref = sets["reference"]
    whole: dict[str, np.ndarray] = {}
    posteriors: dict[str, np.ndarray] = {}
    datas = {}
    for attr, classes in ATTRIBUTES.items():
        probe = train_attribute_classifier(ref.X, ref.labels[attr], classes, seed=args.seed)
        datas[attr] = calibration_data(ref.X, ref.labels[attr], classes, C=probe.C, seed=args.seed,
                                       context=ref.labels)
        posteriors[attr] = probe.predict_proba(analysed.X).astype(np.float64)
        whole[attr] = quantify(fit_quantifier(method, datas[attr].posteriors.astype(np.float64),
                                              datas[attr].labels, em_steps=steps), posteriors[attr])
    for attr, classes in ATTRIBUTES.items():
        y = codes(analysed.labels[attr], classes)
        truth = np.bincount(y, minlength=len(classes)) / len(y)
        data = datas[attr]
        weights = context_weights(data, attr, whole)
        cc = quantify(fit_quantifier("cc", data.posteriors, data.labels), posteriors[attr])
        reweighted = quantify(fit_quantifier(method, data.posteriors.astype(np.float64), data.labels,
                                             weights=weights, em_steps=steps), posteriors[attr])
        converged = quantify(fit_quantifier(method, data.posteriors.astype(np.float64), data.labels),
                             posteriors[attr])
        print(f"  {attr:>9}: counting {100 * np.abs(cc - truth).mean():5.2f} pp, {method} to convergence "
              f"{100 * np.abs(converged - truth).mean():5.2f} pp, {name} "
              f"{100 * np.abs(whole[attr] - truth).mean():5.2f} pp, reweighted to the other attributes' "
              f"estimated mix {100 * np.abs(reweighted - truth).mean():5.2f} pp")

    fs = face_statistics_module
    shipped = (fs.METHOD, fs.EM_STEPS, fs.REWEIGHT_CONTEXT)
    verdict = "the benchmark's choice" if shipped == (method, steps, reweight) else "NOT the benchmark's choice"
    print(f"\nface_statistics ships METHOD={shipped[0]} EM_STEPS={shipped[1]} REWEIGHT_CONTEXT={shipped[2]}: "
          f"{verdict} ({method}, {steps}, {reweight}; calibration source {source})")
    print("\nDone-when checks:")
    for attr in ATTRIBUTES:
        d, c = mean_mae(name, source, "dirichlet", attr), mean_mae("cc", "oof", "dirichlet", attr)
        print(f"  {attr:>9}: Dirichlet MAE {d:.2f} pp = {d / c:.2f} x counting's {c:.2f} pp; coverage "
              f"{avg(coverage, 'dirichlet', attr):.3f}, width {avg(width, 'dirichlet', attr):.1f} pp")
    print(f"  no shift: {mean_mae(name, source, 'noshift'):.2f} pp vs counting {mean_mae('cc', 'oof', 'noshift'):.2f} pp")
    print(f"total {time.perf_counter() - started:.0f} s")
    print(
        f"summary: method={name}_{source} mae_noshift_pp={mean_mae(name, source, 'noshift'):.2f} "
        f"cc_mae_noshift_pp={mean_mae('cc', 'oof', 'noshift'):.2f} "
        f"mae_dirichlet_pp={mean_mae(name, source, 'dirichlet'):.2f} "
        f"cc_mae_dirichlet_pp={mean_mae('cc', 'oof', 'dirichlet'):.2f} "
        f"mae_shift70_pp={mean_mae(name, source, 'shift70'):.2f} "
        f"coverage={avg(coverage, 'dirichlet'):.3f} width_pp={avg(width, 'dirichlet'):.1f}"
    )


if __name__ == "__main__":
    main()
