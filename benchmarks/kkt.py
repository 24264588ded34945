"""Time to a proven gap for the bi-level optimum (KKT / Big-M, SCIP), and how it grows with prosumers.

    python benchmarks/kkt.py [--time-limit 300] [--other-time-limit 150] [--test-days 3] [--sizes 5 10 20]
                             [--threads 2] [--out results/kkt_bench]

For each day: the incumbent (scored by `evaluate`), the proven bound, the relative gap, the gap as a
share of J_tariff − J* (the improvement over passing the HV tariff through), the time at which the
gap first fell to 1e-2, 1e-3 and 1e-4, and the verification. With one thread these times come from
SCIP's tree as it grows; with more (SCIP's concurrent solve; `kkt` records the bound in the tree
on one thread only) only from the ends of the outer iterations, so they are upper estimates. Then the reference
day again on cases with 5, 10 and 20 prosumers (the default prosumers replicated on other buses).
Results are appended to a CSV as they come, so an interrupted run loses nothing.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

import stackelberg_mop as sm
from stackelberg_mop.baselines import kkt
from stackelberg_mop.cases.case import Batteries, Prosumers


def replicated_case(case, n: int):
    """The default case with n prosumers: prosumer i copies prosumer i mod 5 onto another load bus."""
    base = case.prosumers
    k = len(base)
    taken = list(base.bus)
    free = [int(b) for b in case.buses if b != case.slack_bus and b not in taken and b not in case.mop.bus]
    free = [b for b in free if case.nominal_load[0][case.bus_position(b)] > 0]
    buses = taken + free[: n - k]
    if len(buses) < n:
        raise ValueError(f"only {len(buses)} load buses for {n} prosumers")
    src = np.arange(n) % k
    pros = Prosumers(bus=buses, pv_capacity=base.pv_capacity[src], kappa=base.kappa[src],
                     shift_fraction=base.shift_fraction[src])
    bat = case.batteries
    owners = [i for i in range(n) if case.battery_of[src[i]] >= 0]
    m = [case.battery_of[src[i]] for i in owners]
    batteries = Batteries(owner=owners, **{f: getattr(bat, f)[m] for f in (
        "p_charge_max", "p_discharge_max", "capacity", "soc_min", "soc_max", "soc_init", "eta_charge",
        "eta_discharge", "degradation_cost", "regularisation")})
    return case.replace(name=f"{case.name}-{n}", prosumers=pros, batteries=batteries)


def time_to(history, tol):
    for t, ub, lb in history:
        if ub - lb <= tol * abs(ub):
            return t
    return float("nan")


def run_day(case, day, time_limit, label, writer, fh, threads=None):
    tariff = sm.evaluate(case, day, sm.project_prices(case, day.buy_price)).dno_objective
    threads = kkt.default_threads() if threads is None else threads
    r = kkt.solve(case, day, time_limit=time_limit, gap=1e-4, threads=threads)
    improvement = tariff - r.objective
    row = {"case": case.name, "day": label, "prosumers": len(case.prosumers), "threads": threads, "status": r.status,
           "J_star": r.objective, "bound": r.best_bound, "gap": r.gap, "J_tariff": tariff,
           "gap_share_of_improvement": r.absolute_gap / improvement if improvement > 0 else float("nan"),
           "t_1e-2": time_to(r.history, 1e-2), "t_1e-3": time_to(r.history, 1e-3),
           "t_1e-4": time_to(r.history, 1e-4), "solve_time": r.solve_time, "iterations": r.iterations,
           "verified": r.verification.passed, "objective_error": r.verification.objective_error,
           "schedule_error": r.verification.schedule_error, "bigm_ratio": r.verification.bigm_ratio}
    writer.writerow(row)
    fh.flush()
    print(" | ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds for the reference day")
    parser.add_argument("--other-time-limit", type=float, default=None,
                        help="seconds for the test days and the larger cases (default: --time-limit)")
    parser.add_argument("--test-days", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[5, 10, 20])
    parser.add_argument("--threads", type=int, default=None,
                        help="SCIP threads (default: kkt.default_threads(), the cores up to 2)")
    parser.add_argument("--out", default="results/kkt_bench")
    args = parser.parse_args()
    case = sm.load_case()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fields = ["case", "day", "prosumers", "threads", "status", "J_star", "bound", "gap", "J_tariff",
              "gap_share_of_improvement", "t_1e-2", "t_1e-3", "t_1e-4", "solve_time", "iterations", "verified",
              "objective_error", "schedule_error", "bigm_ratio"]
    path = out / "kkt_bench.csv"
    if path.exists() and path.stat().st_size and path.read_text().splitlines()[0] != ",".join(fields):
        raise SystemExit(f"{path} has other columns (an older version of this script): move it away or pass --out")
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        if fh.tell() == 0:
            writer.writeheader()
        run_day(case, sm.reference_day(case), args.time_limit, "reference", writer, fh, args.threads)
        other = args.other_time_limit or args.time_limit
        test_days = sm.days(case, "test")
        for day in test_days[:: max(1, len(test_days) // max(1, args.test_days))][: args.test_days]:
            run_day(case, day, other, day.name, writer, fh, args.threads)
        for n in args.sizes:
            if n == len(case.prosumers):
                continue
            big = replicated_case(case, n)
            run_day(big, sm.reference_day(big), other, "reference", writer, fh, args.threads)


if __name__ == "__main__":
    main()
