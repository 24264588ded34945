"""The market designs side by side, each scored by `evaluate`; and the fixed point's cobweb (Fig. 9).

    python benchmarks/baselines.py                 # reference day + 2 test days, default case
    python benchmarks/baselines.py --line-limit    # the line-capacity case (branch 1-2, 2.0 MVA)
    python benchmarks/baselines.py --scenarios     # expected scores under 10 HV price scenarios
    python benchmarks/baselines.py --kappa         # iterations to converge against the κ/ε scale

Columns: DNO objective F (¥), prosumers' total cost (¥), welfare (−total cost, ¥), voltage
violation rate, iterations and wall time (s). "KKT" is the bi-level optimum (`kkt.solve`, 300 s;
its certificate: `benchmarks/kkt.py`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import stackelberg_mop as sm
from stackelberg_mop.algorithms import admm, fixed_point
from stackelberg_mop.bilevel import kkt
from stackelberg_mop.cases.variants import line_limited_case
from stackelberg_mop.data.hv_prices import hv_price_scenarios
from stackelberg_mop.scoring import evaluate_expected


def _row(name, day, o, iterations, seconds, expected=None):
    if expected is not None:
        vals = (expected.dno_objective, expected.prosumer_cost, expected.welfare, expected.violation_rate)
    else:
        vals = (o.dno_objective, float(o.prosumer_costs.sum()), o.welfare, o.violation_rate)
    print(f"{day:>11} {name:<24} {vals[0]:>11.1f} {vals[1]:>11.1f} {vals[2]:>11.1f} {vals[3]:>7.1%} "
          f"{iterations!s:>6} {seconds:>7.1f}")


def compare(case, days, scenarios=False):
    print(f"{'day':>11} {'design':<24} {'DNO obj ¥':>11} {'prosumer ¥':>11} {'welfare ¥':>11} {'viol.':>7} "
          f"{'iter':>6} {'time s':>7}")
    for day in days:
        sc = hv_price_scenarios(day) if scenarios else None

        def score(name, prices, iterations, seconds, day=day, sc=sc):
            exp = evaluate_expected(case, day, prices, sc) if sc is not None else None
            _row(name, day.name, sm.evaluate(case, day, prices), iterations, seconds, exp)

        score("HV tariff", day.buy_price, "-", 0.0)
        for ppp in (False, True):
            t = time.perf_counter()
            r = fixed_point.solve(case, day, max_iter=30, price_per_prosumer=ppp, scenarios=sc, evaluate_result=False)
            label = f"fixed point{' per-bus' if ppp else ''}{'' if r.converged else ' (no conv.)'}"
            score(label, r.prices, r.iterations, time.perf_counter() - t)
        t = time.perf_counter()
        a = admm.solve(case, day, scenarios=sc, evaluate_result=False)
        score(f"ADMM welfare ({a.status})", a.prices, a.iterations, time.perf_counter() - t)
        t = time.perf_counter()
        res = kkt.solve(case, day)
        score(f"KKT (gap {res.gap:.2%})", res.prices, "-", time.perf_counter() - t)


#: the two iterations of the κ sweep: Song et al.'s (2024) plain damped iteration and the default proximal one
SWEEP_METHODS = {"plain, α = 0.5 (Song et al. 2024)": {"damping": 0.5, "max_iter": 30},
                 "proximal (default)": {"damping": "proximal", "max_iter": 200}}


def kappa_sweep(case, day, factors, out: Path):
    """Iterations to converge against the scale of the prosumers' quadratic costs (κ and ε), for the
    plain iteration (the cobweb condition: it stops converging below some scale) and the proximal one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for (label, options), marker in zip(SWEEP_METHODS.items(), "os"):
        cap = options["max_iter"]
        rows = []
        for f in factors:
            t = time.perf_counter()
            r = fixed_point.solve(fixed_point.kappa_scaled(case, f), day, evaluate_result=False, **options)
            rows.append((f, r.iterations if r.converged else np.nan, r.price_residual))
            print(f"{label:<28} scale {f:>7g}: "
                  f"{'converged in ' + str(r.iterations) if r.converged else 'no convergence in ' + str(cap)}"
                  f" (last residuals {r.price_residual[-1]:.3g} ¥/MWh, {r.power_residual[-1]:.3g} MW;"
                  f" {time.perf_counter() - t:.1f} s)", flush=True)
        done = [x for x in rows if not np.isnan(x[1])]
        line, = axes[0].semilogx([x[0] for x in done], [x[1] for x in done], marker + "-", label=label)
        failed = [x[0] for x in rows if np.isnan(x[1])]
        if failed:
            axes[0].semilogx(failed, [cap] * len(failed), "x", ms=10, mew=2, c=line.get_color(),
                             label=f"{label}: no convergence within {cap}")
        ax = axes[1 if options["damping"] != "proximal" else 2]
        for f, _, res in rows:
            ax.semilogy(res, label=f"×{f:g}")
        ax.set_title(label)
        ax.set_xlabel("iteration")
        ax.set_ylabel("price residual, ¥/MWh")
        ax.legend(fontsize=6, ncol=2)
    axes[0].set_xlabel("scale of κ and ε (× default; 1 = the default case)")
    axes[0].set_ylabel("iterations to converge")
    axes[0].axvline(1.0, ls=":", c="grey")
    axes[0].legend(fontsize=7)
    fig.suptitle("LMP fixed point: convergence against the prosumers' response slope (Song et al. (2024) Fig. 9)")
    fig.tight_layout()
    fig.savefig(out / "fixed_point_kappa.png", dpi=120)
    print(f"wrote {out / 'fixed_point_kappa.png'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--line-limit", action="store_true")
    ap.add_argument("--scenarios", action="store_true")
    ap.add_argument("--kappa", action="store_true")
    ap.add_argument("--test-days", type=int, default=2)
    ap.add_argument("--out", default="results")
    ap.add_argument("--case", default="ieee33-mop",
                    help="e.g. ieee33-mop-flatcap: under the default rule the LMPs are capped at the tariff, "
                         "so the --kappa sweep shows the cobweb condition only on the flat-cap variant")
    args = ap.parse_args()
    case = sm.load_case(args.case)
    if args.line_limit:
        case = line_limited_case(case)
    ref = sm.reference_day(case)
    if args.kappa:
        kappa_sweep(case, ref, [0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000], Path(args.out))
        return
    compare(case, [ref] + sm.days(case, "test")[: args.test_days], scenarios=args.scenarios)


if __name__ == "__main__":
    main()
