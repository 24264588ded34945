"""Network speed: the 24-hour dispatch, the AC check and the fast power flow, each beside its naive reference.

    python benchmarks/dispatch.py [--repeats 10]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_seconds

import stackelberg_mop as sm
from stackelberg_mop.powerflow import DispatchModel
from stackelberg_mop.powerflow.ac import pandapower_power_flow, sweep_power_flow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    case = sm.load_case()
    day = sm.reference_day(case)
    exchange = sm.best_response(case, day, case.tariff.buy_price).exchange_power
    model = DispatchModel(case)
    res = model.solve(day, exchange)

    rows = [
        ("24-h SOCP dispatch", "cvxpy model rebuilt per call",
         median_seconds(lambda: DispatchModel(case, direct=False).solve(day, exchange), max(3, args.repeats // 3)),
         "built once, hour by hour (Clarabel)", median_seconds(lambda: model.solve(day, exchange), args.repeats)),
        ("AC check, 24 hours", "24 pandapower runs",
         median_seconds(lambda: pandapower_power_flow(case, day, exchange, res.mop_p, res.mop_q), 3),
         "vectorised sweep", median_seconds(lambda: sweep_power_flow(case, day, exchange, res.mop_p, res.mop_q),
                                            args.repeats * 5)),
        ("evaluate(mop='opf')", "-", np.nan, "best response + dispatch + sweep",
         median_seconds(lambda: sm.evaluate(case, day, case.tariff.buy_price), args.repeats)),
        ("evaluate(mop=set-points)", "-", np.nan, "best response + sweep",
         median_seconds(lambda: sm.evaluate(case, day, case.tariff.buy_price, mop=np.stack([res.mop_p, res.mop_q])),
                        args.repeats * 5)),
    ]
    vm, _ = pandapower_power_flow(case, day, exchange, res.mop_p, res.mop_q)
    sweep = sweep_power_flow(case, day, exchange, res.mop_p, res.mop_q)
    print(f"{case.name}, reference day, median wall time (ms)")
    print(f"{'task':<26}{'naive reference':<30}{'ms':>9}   {'ours':<34}{'ms':>8}{'speed-up':>10}")
    for task, naive_label, naive, ours_label, ours in rows:
        speed = f"{naive / ours:9.0f}x" if np.isfinite(naive) else ""
        print(f"{task:<26}{naive_label:<30}{naive * 1e3:>9.1f}   {ours_label:<34}{ours * 1e3:>8.1f}{speed:>10}")
    print(f"sweep vs pandapower: max |ΔV| = {np.abs(sweep.vm - vm).max():.1e} p.u.; "
          f"SOCP vs AC: max |V_AC − √v| = {np.abs(vm - res.voltage).max():.1e} p.u.; "
          f"max relaxation gap {res.relaxation_gap.max():.1e}")


if __name__ == "__main__":
    main()
