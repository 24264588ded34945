"""The Lagrangian bound (`bilevel.lagrangian`) beside the master's bound of `kkt.solve`, one thread each.

    python benchmarks/lagrangian.py [--time-limit 600] [--evaluations 60] [--out results/lagrangian]

On the reference day of `ieee33-mop`: first `kkt.solve(time_limit=T, threads=1)` (the incumbent J*
and the master's proven bound as its tree grows), then `lagrangian.lagrangian_bound` from J*'s prices
for the same T seconds. Prints both bounds at checkpoints (the naive reference is the master's bound
at the same time), the gaps to J*, and writes both histories to `<out>/bounds.csv`. Run it on an
otherwise idle machine: the two solves run one after the other, each on one core.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import stackelberg_mop as sm
from stackelberg_mop.bilevel import kkt, lagrangian


def best_until(history, t_end):
    """The best bound recorded up to t_end seconds (−inf before the first record)."""
    values = [b for t, b in history if t <= t_end]
    return max(values) if values else float("-inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds for each of the two solves")
    parser.add_argument("--evaluations", type=int, default=60, help="at most this many Lagrangian evaluations")
    parser.add_argument("--out", default="results/lagrangian")
    parser.add_argument("--case", default="ieee33-mop-flatcap",
                        help="the case (default the flat-cap variant, where this was measured; README #37-39)")
    args = parser.parse_args()
    case = sm.load_case(args.case)
    day = sm.reference_day(case)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    r = kkt.solve(case, day, time_limit=args.time_limit, threads=1)
    master = [(t, lb) for t, _, lb in r.history]
    print(f"kkt.solve: J* {r.objective:.2f} ¥, bound {r.best_bound:.2f} ¥, gap {r.gap:.3%}, "
          f"status {r.status}, verified {r.verification.passed} ({r.solve_time:.0f} s)", flush=True)
    lb = lagrangian.lagrangian_bound(case, day, prices=r.prices, time_limit=args.time_limit,
                                     max_evaluations=args.evaluations, verbose=True)
    lag = [(t, best) for t, _, best in lb.history]
    print(f"lagrangian_bound: {lb.bound:.2f} ¥ (start {lb.start_bound:.2f}), status {lb.status}, "
          f"{lb.evaluations} evaluations, spread of the price copies {lb.spread:.0f} ¥/MWh, "
          f"{lb.cuts} network cuts ({lb.solve_time:.0f} s)")

    print(f"\n{'seconds':>8} {'master bound ¥':>15} {'gap':>7} {'Lagrangian ¥':>13} {'gap':>7}")
    checkpoints = [t for t in (60, 120, 300, 600, 900, 1200, 1800, 3600) if t < args.time_limit] + [args.time_limit]
    for t in checkpoints:
        a, b = best_until(master, t), best_until(lag, t)
        print(f"{t:8.0f} {a:15.1f} {(r.objective - a) / r.objective:7.3%} {b:13.1f} {(r.objective - b) / r.objective:7.3%}")
    with open(out / "bounds.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "seconds", "bound", "J_star"])
        for name, hist in (("master", master), ("lagrangian", lag)):
            for t, b in hist:
                w.writerow([name, f"{t:.2f}", f"{b:.4f}", f"{r.objective:.4f}"])
    print(f"\nhistories: {out / 'bounds.csv'}")


if __name__ == "__main__":
    main()
