"""The market designs side by side, each scored by `evaluate`; and the fixed point's cobweb (Fig. 9).

    python benchmarks/baselines.py                 # reference day + 2 test days, default case
    python benchmarks/baselines.py --line-limit    # the line-capacity case (branch 1-2, 2.0 MVA)
    python benchmarks/baselines.py --scenarios     # expected scores under 10 HV price scenarios
    python benchmarks/baselines.py --kappa         # iterations to converge against the κ/ε scale

Columns: DNO objective F (¥), prosumers' total cost (¥), welfare (−total cost, ¥), voltage
violation rate, iterations and wall time (s). "KKT" is the bi-level optimum when
`stackelberg_mop.baselines.kkt` exists, otherwise n/a.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import stackelberg_mop as sm
from stackelberg_mop.baselines import admm, fixed_point
from stackelberg_mop.cases.variants import line_limited_case
from stackelberg_mop.data.hv_prices import hv_price_scenarios
from stackelberg_mop.evaluate import evaluate_expected

try:
    from stackelberg_mop.baselines import kkt  # another branch
except ImportError:
    kkt = None


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
        if kkt is None:
            print(f"{day.name:>11} {'KKT (bi-level optimum)':<24} {'n/a':>11}")
        else:  # pragma: no cover - depends on the other branch's API
            t = time.perf_counter()
            res = kkt.solve(case, day)
            score("KKT (bi-level optimum)", res.prices, "-", time.perf_counter() - t)


def kappa_sweep(case, day, factors, out: Path, damping=0.5, max_iter=30):
    """Iterations to converge against the scale of the prosumers' quadratic costs (κ and ε)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for f in factors:
        r = fixed_point.solve(fixed_point.kappa_scaled(case, f), day, damping=damping, max_iter=max_iter,
                              evaluate_result=False)
        rows.append((f, r.iterations if r.converged else np.nan, r.price_residual))
        print(f"scale {f:>8g}: {'converged in ' + str(r.iterations) if r.converged else 'no convergence in ' + str(max_iter)}"
              f" (last residual {r.price_residual[-1]:.3g} ¥/MWh, {r.power_residual[-1]:.3g} MW)")
    out.mkdir(parents=True, exist_ok=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.semilogx([r[0] for r in rows], [max_iter + 1 if np.isnan(r[1]) else r[1] for r in rows], "o-")
    a1.axhline(max_iter, ls="--", c="grey")
    a1.set_xlabel("scale of κ and ε (× default)")
    a1.set_ylabel(f"iterations to converge (> {max_iter}: none)")
    for f, _, res in rows:
        a2.semilogy(res, label=f"×{f:g}")
    a2.set_xlabel("iteration")
    a2.set_ylabel("‖T(λ) − λ‖∞, ¥/MWh")
    a2.legend(fontsize=7)
    fig.suptitle("LMP fixed point: cobweb condition (seeds/003 Fig. 9)")
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
    args = ap.parse_args()
    case = sm.load_case()
    if args.line_limit:
        case = line_limited_case(case)
    ref = sm.reference_day(case)
    if args.kappa:
        kappa_sweep(case, ref, [1, 3, 10, 30, 100, 300, 1000, 3000], Path(args.out))
        return
    compare(case, [ref] + sm.days(case, "test")[: args.test_days], scenarios=args.scenarios)


if __name__ == "__main__":
    main()
