"""A 1e-3 certificate for the reference day: `kkt.solve`, then the Lagrangian bound, then branching on the prices.

    python benchmarks/certificate.py [--time-limit 300] [--evaluations 28] [--branch-time 7200]
                                     [--gap 1e-3] [--root-evaluations 3] [--node-evaluations 14]
                                     [--out results/certificate]

On the reference day of `--case` (default `ieee33-mop-flatcap`), each stage from the previous one's result:
1. `kkt.solve(time_limit=T)` (default threads): the incumbent and the master's proven bound, the naive
   reference (what the package proves in T seconds);
2. `kkt.solve` again within ± 300 ¥/MWh of its prices (T seconds), a search for a better incumbent
   (a narrow box is where the master finds one, benchmarks/README #31); scored by `evaluate`;
3. `lagrangian.lagrangian_bound` from the incumbent's prices, `--evaluations` evaluations (one core);
4. `branch_and_bound.branch_and_bound` from its multipliers until `--gap` is proven or `--branch-time` runs out.
Prints every stage's bound, the gap to the incumbent and the cumulative wall time, and writes them to
`<out>/stages.csv` (the branch-and-bound's history after each branching included). About 95 minutes
on an otherwise idle 2-core machine (benchmarks/README #39).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

import stackelberg_mop as sm
from stackelberg_mop.bilevel import branch_and_bound, kkt, lagrangian


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds for each of the two kkt.solve runs")
    parser.add_argument("--evaluations", type=int, default=28, help="Lagrangian evaluations before branching")
    parser.add_argument("--branch-time", type=float, default=7200.0, help="seconds for the branch-and-bound")
    parser.add_argument("--root-evaluations", type=int, default=3, help="at the branch-and-bound's root")
    parser.add_argument("--node-evaluations", type=int, default=14, help="at each of its other nodes")
    parser.add_argument("--gap", type=float, default=1e-3, help="relative gap to prove")
    parser.add_argument("--out", default="results/certificate")
    parser.add_argument("--case", default="ieee33-mop-flatcap",
                        help="the case (default the flat-cap variant, where this was measured; README #37-39)")
    args = parser.parse_args()
    case = sm.load_case(args.case)
    day = sm.reference_day(case)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []

    def record(stage, bound, objective):
        rows.append((stage, time.perf_counter() - t0, bound, objective))
        print(f"{stage:<42} bound {bound:10.2f} ¥  incumbent {objective:10.2f} ¥  gap {(objective - bound) / objective:7.3%}"
              f"  ({rows[-1][1]:.0f} s)", flush=True)

    r = kkt.solve(case, day, time_limit=args.time_limit)
    record("kkt.solve (the naive reference)", r.best_bound, r.objective)
    prices, objective, bound = r.prices, r.objective, r.best_bound
    lo, hi = kkt.price_box(case, day, None, None)
    near = kkt.solve(case, day, time_limit=args.time_limit, price_lower=np.clip(r.prices - 300, lo, hi),
                     price_upper=np.clip(r.prices + 300, lo, hi))
    if near.objective < objective:  # its bound holds only within the narrow box: keep the first one's
        prices, objective = near.prices, near.objective
    record("kkt.solve within ± 300 ¥/MWh", bound, objective)
    lb = lagrangian.lagrangian_bound(case, day, prices=prices, time_limit=np.inf, max_evaluations=args.evaluations,
                                     verbose=True)
    bound = max(bound, lb.bound)
    record(f"lagrangian_bound ({lb.evaluations} evaluations)", bound, objective)
    t_branch = time.perf_counter() - t0
    bb = branch_and_bound.branch_and_bound(case, day, prices, objective, gap=args.gap, time_limit=args.branch_time,
                                     root_evaluations=args.root_evaluations,
                                     node_evaluations=args.node_evaluations, start=(lb.beta, lb.pi),
                                     prox=(0.03, 3e4), verbose=True)
    for t, b, obj in bb.history:
        rows.append(("branch_and_bound", t_branch + t, max(bound, b), obj))
    record(f"branch_and_bound ({bb.status}, {bb.nodes} nodes)", max(bound, bb.bound), bb.objective)
    with open(out / "stages.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["stage", "seconds", "bound", "incumbent"])
        w.writerows((s, f"{t:.1f}", f"{b:.4f}", f"{o:.4f}") for s, t, b, o in rows)
    np.save(out / "prices.npy", bb.prices)
    print(f"\nstages: {out / 'stages.csv'}; the incumbent's prices: {out / 'prices.npy'}")


if __name__ == "__main__":
    main()
