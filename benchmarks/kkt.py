"""Time to a proven gap for the bi-level optimum (KKT / Big-M, SCIP) under the paper's price rule.

    python benchmarks/kkt.py [--time-limit 300] [--repeats 3] [--flatcap-time-limit 300] [--test-days 0]
                             [--sizes 10 20] [--threads 2] [--out results/kkt_bench]

The reference day of `ieee33-mop` is solved `--repeats` times (median), then the reference day of
the flat-cap variant `ieee33-mop-flatcap` (the naive reference: the constant price box of earlier
versions) within its own time limit. The 49 test days' times are read from the shipped optimum
table (`stackelberg-mop optima`, the same solver, one SCIP thread per day with two days at a time),
or solved again here with `--test-days N`. For each solve: the incumbent (scored by `evaluate`),
the proven bound, the relative gap, the gap as a share of J_tariff − J*, the time at which the gap
first fell to 1e-2, 1e-3 and 1e-4 (with one thread SCIP's tree as it grows; with more only the ends
of the outer iterations, so upper estimates; a solve that ends within the gap counts its end), and
the verification. `--sizes` adds the reference day of cases with more prosumers (the default
prosumers replicated on other buses). Rows are appended to a CSV as they come.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

import stackelberg_mop as sm
from stackelberg_mop.bilevel import kkt
from stackelberg_mop.cases import Batteries, Prosumers
from stackelberg_mop.runner.optima import time_to_gap


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


def time_to(result, tol) -> float:
    t = time_to_gap(result, tol)
    return float("nan") if t is None else t


def run_day(case, day, time_limit, label, writer, fh, threads=None):
    tariff = sm.evaluate(case, day, sm.project_prices(case, day, day.buy_price)).dno_objective
    threads = kkt.default_threads() if threads is None else threads
    r = kkt.solve(case, day, time_limit=time_limit, gap=1e-4, threads=threads)
    improvement = tariff - r.objective
    row = {"case": case.name, "day": label, "prosumers": len(case.prosumers), "threads": threads, "status": r.status,
           "J_star": r.objective, "bound": r.best_bound, "gap": r.gap, "J_tariff": tariff,
           "gap_share_of_improvement": r.absolute_gap / improvement if improvement > 0 else float("nan"),
           "t_1e-2": time_to(r, 1e-2), "t_1e-3": time_to(r, 1e-3),
           "t_1e-4": time_to(r, 1e-4), "solve_time": r.solve_time, "iterations": r.iterations,
           "verified": r.verification.passed, "objective_error": r.verification.objective_error,
           "schedule_error": r.verification.schedule_error, "bigm_ratio": r.verification.bigm_ratio}
    writer.writerow(row)
    fh.flush()
    print(" | ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def table_times(case, split: str = "test") -> list[dict]:
    """The shipped optimum table's rows of `split` (made by `stackelberg-mop optima` with the same
    solver): each day's solve time and its time to 1e-3 and 1e-4."""
    from stackelberg_mop.data.optimum_table import OptimumTable

    table = OptimumTable(case)
    names = {d.name for d in sm.days(case, split)} if split != "reference" else {"reference"}
    return [r for n, r in table.rows.items() if n in names]


def _median_max(values):
    vals = np.array([np.nan if v is None else v for v in values], float)
    done = vals[np.isfinite(vals)]
    return (float(np.median(done)), float(done.max()), int(done.size)) if done.size else (np.nan, np.nan, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds for the reference day")
    parser.add_argument("--repeats", type=int, default=3, help="solves of the reference day (median)")
    parser.add_argument("--flatcap-time-limit", type=float, default=300.0,
                        help="seconds for the flat-cap variant's reference day (0: skip)")
    parser.add_argument("--other-time-limit", type=float, default=None,
                        help="seconds for the re-solved test days and the larger cases (default: --time-limit)")
    parser.add_argument("--test-days", type=int, default=0,
                        help="test days to solve again here (default 0: read the shipped table's times)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[],
                        help="also the reference day with this many prosumers (e.g. 10 20)")
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
        ref = [run_day(case, sm.reference_day(case), args.time_limit, "reference", writer, fh, args.threads)
               for _ in range(args.repeats)]
        flat = None
        if args.flatcap_time_limit > 0:
            flatcap = sm.load_case("ieee33-mop-flatcap")
            flat = run_day(flatcap, sm.reference_day(flatcap), args.flatcap_time_limit, "reference", writer, fh,
                           args.threads)
        other = args.other_time_limit or args.time_limit
        test_days = sm.days(case, "test")
        solved = []
        if args.test_days:
            for day in test_days[:: max(1, len(test_days) // args.test_days)][: args.test_days]:
                solved.append(run_day(case, day, other, day.name, writer, fh, args.threads))
        for n in args.sizes:
            if n != len(case.prosumers):
                big = replicated_case(case, n)
                run_day(big, sm.reference_day(big), other, "reference", writer, fh, args.threads)
    print("\ntime to a proven gap, s (median / max over days; naive reference: the flat-cap variant)")
    print(f"{'':<34}{'days':>5}{'to 1e-3 med':>12}{'max':>8}{'to 1e-4 med':>12}{'max':>8}")

    def line(label, t3, t4, n):
        (m3, x3, _), (m4, x4, k4) = _median_max(t3), _median_max(t4)
        print(f"{label:<34}{n:>5}{m3:>12.0f}{x3:>8.0f}{m4:>12.0f}{x4:>8.0f}   ({k4} of {n} reached 1e-4)")

    line(f"reference day, {args.repeats} runs", [r["t_1e-3"] for r in ref], [r["t_1e-4"] for r in ref], len(ref))
    if solved:
        line("test days, solved here", [r["t_1e-3"] for r in solved], [r["t_1e-4"] for r in solved], len(solved))
    rows = table_times(case, "test")
    if rows:
        line("test days, shipped table", [r.get("time_to_gap", {}).get("0.001") for r in rows],
             [r.get("time_to_gap", {}).get("0.0001") for r in rows], len(rows))
    if flat is not None:
        print(f"flat-cap reference day: gap {flat['gap']:.2e} after {flat['solve_time']:.0f} s "
              f"(t 1e-3: {flat['t_1e-3']:.0f} s; its 1e-3 certificate took ~95 min, benchmarks/README #39)")


if __name__ == "__main__":
    main()
