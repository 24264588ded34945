"""SCIP settings for the KKT master under the paper's price rule: time to a proven gap, day by day.

    python benchmarks/kkt_params.py [--time-limit 150] [--workers 2] [--seeds 0]
                                    [--days reference 2016-01-22 ... | hard] [--variants package ...]
                                    [--out results/kkt_params]

Each variant is a set of SCIP parameters passed to `kkt.solve(..., scip_params=...)` (one thread,
gap 1e-4); the package's `kkt.SCIP_PARAMS` ("package", without SCIP's restarts since #49) is
compared with SCIP's restarts ("restarts", the package's setting before #49), with SCIP's
heuristics switched off, and, for the bound on the hard days, with what the package's settings
cut back given back one at a time (separation in the tree, SCIP's strong branching, SCIP's
"optimality" emphasis). Every (day, variant, seed) is one
whole solve, heuristics and local search included, so the times are what a user waits for. The
seed shifts SCIP's random seeds (`randomization/randomseedshift`): a branch-and-bound tree's time
varies from seed to seed, and a setting is better only if it wins across days and seeds. Rows are
appended to a CSV as each solve ends (a rerun skips the rows there); at the end a table gives each
variant's median time to 1e-3 and 1e-4 (a solve that does not get there counts as the time limit).
"""

from __future__ import annotations

import argparse
import csv
import functools
import multiprocessing as mp
from pathlib import Path

import numpy as np

#: the test days measured by default: two winter days, three from spring to autumn
DEFAULT_DAYS = ("reference", "2016-01-22", "2016-03-21", "2016-05-15", "2016-09-07", "2016-12-24")
#: `--days hard`: the test days furthest from 1e-4 after 300 s (benchmarks/README #58)
HARD_DAYS = ("2016-07-09", "2016-09-04", "2016-05-17", "2016-03-19")


def _scip_setting(apply) -> dict:
    """The parameters that one of SCIP's own settings (applied by `apply(model)`) changes, as a dict."""
    from pyscipopt import Model

    m = Model()
    m.hideOutput()
    before = m.getParams()
    apply(m)
    return {k: v for k, v in m.getParams().items() if before.get(k) != v}


@functools.cache
def variants() -> dict[str, dict]:
    from pyscipopt import SCIP_PARAMEMPHASIS, SCIP_PARAMSETTING

    from stackelberg_mop.bilevel import kkt

    base = dict(kkt.SCIP_PARAMS)
    restarts = {**base, "presolving/maxrestarts": -1}  # SCIP's default: restart after root fixings
    quiet = {**base, **_scip_setting(lambda m: m.setHeuristics(SCIP_PARAMSETTING.OFF))}
    # for the bound on the hard days: what the package's settings cut back, given back one at a time
    optimality = _scip_setting(lambda m: m.setEmphasis(SCIP_PARAMEMPHASIS.OPTIMALITY))
    return {"package": base, "restarts": restarts, "heuristics-off": quiet,
            "heuristics-off-sepa20": {**quiet, "separating/maxroundsroot": 20},
            "tree-separation": {**base, "separating/maxrounds": -1},  # SCIP's default: separate in the tree
            "strong-branching": {**base, "branching/relpscost/maxreliable": 5.0,  # SCIP's defaults
                                 "branching/relpscost/sbiterquot": 0.5},
            "emphasis-optimality": {**optimality, "presolving/maxrestarts": 0}}


FIELDS = ["day", "variant", "seed", "status", "objective", "bound", "gap", "J_table", "t_1e-3", "t_1e-4",
          "solve_time", "verified"]


def solve_one(task) -> dict:
    day_name, variant, seed, time_limit = task
    import stackelberg_mop as sm
    from stackelberg_mop.bilevel import kkt
    from stackelberg_mop.runner.optima import time_to_gap

    case = sm.load_case()
    day = sm.reference_day(case) if day_name == "reference" else \
        next(d for d in sm.days(case, "test") if d.name == day_name)
    params = {**variants()[variant], "randomization/randomseedshift": int(seed)}
    r = kkt.solve(case, day, time_limit=time_limit, gap=1e-4, threads=1, scip_params=params)
    known = sm.optimum(case, day).objective
    return {"day": day_name, "variant": variant, "seed": seed, "status": r.status.split(":")[0],
            "objective": r.objective, "bound": r.best_bound, "gap": r.gap, "J_table": known,
            "t_1e-3": time_to_gap(r, 1e-3), "t_1e-4": time_to_gap(r, 1e-4), "solve_time": r.solve_time,
            "verified": r.verification.passed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=150.0, help="seconds per solve")
    parser.add_argument("--workers", type=int, default=2, help="solves at a time (one SCIP thread each)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0], help="SCIP random seed shifts")
    parser.add_argument("--days", nargs="*", default=list(DEFAULT_DAYS),
                        help="test-day names, 'reference', or 'hard' for HARD_DAYS")
    parser.add_argument("--variants", nargs="*", default=None, help=f"default: all of {list(variants())}")
    parser.add_argument("--out", default="results/kkt_params")
    args = parser.parse_args()
    names = args.variants or list(variants())
    if args.days == ["hard"]:
        args.days = list(HARD_DAYS)
    unknown = set(names) - set(variants())
    if unknown:
        raise SystemExit(f"--variants: unknown {sorted(unknown)}; choose from {list(variants())}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "kkt_params.csv"
    done = set()
    if path.exists() and path.stat().st_size:
        with open(path) as fh:
            done = {(r["day"], r["variant"], int(r["seed"])) for r in csv.DictReader(fh)}
    tasks = [(d, v, s, args.time_limit) for s in args.seeds for d in args.days for v in names
             if (d, v, s) not in done]
    print(f"{len(tasks)} solves to run ({len(done)} in {path} already)", flush=True)
    with open(path, "a", newline="") as fh, mp.get_context("spawn").Pool(args.workers) as pool:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if fh.tell() == 0:
            writer.writeheader()
        for row in pool.imap_unordered(solve_one, tasks):
            writer.writerow(row)
            fh.flush()
            print(" | ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    limit = lambda v: args.time_limit if v in ("", "None") else float(v)
    print(f"\nmedian time to a proven gap, s, over {len(args.days)} days x {len(args.seeds)} seeds "
          f"(not reached = {args.time_limit:.0f})")
    print(f"{'variant':<24}{'to 1e-3':>9}{'to 1e-4':>9}{'reached 1e-4':>14}{'gap at end':>12}")
    for v in names:
        mine = [r for r in rows if r["variant"] == v and r["day"] in args.days]
        if mine:
            t3 = np.median([limit(r["t_1e-3"]) for r in mine])
            t4 = np.median([limit(r["t_1e-4"]) for r in mine])
            hit = sum(r["t_1e-4"] not in ("", "None") for r in mine)
            gap = np.median([float(r["gap"]) for r in mine])
            print(f"{v:<24}{t3:>9.1f}{t4:>9.1f}{hit:>9} of {len(mine)}{gap:>12.1e}")


if __name__ == "__main__":
    main()
