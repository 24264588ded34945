"""The first paper's three scenarios with the bi-level optimum as prices (issue 5, item 5).

    python benchmarks/kkt_scenarios.py [--time-limit 300] [--gap 1e-3] [--out results/kkt_scenarios]

Each scenario (MODEL.md) gets its own optimal prices from `bilevel.kkt.solve` on its own case;
prints the table (with each optimum's bound and gap) and writes scenarios_optimal.csv,
optimal_prices.csv and four PNGs (clearing price vs tariff, exchange power, battery energy,
voltage envelopes) into --out.
"""

from __future__ import annotations

import argparse

import pandas as pd

import stackelberg_mop as sm
from stackelberg_mop.papers.scenario_comparison import run_comparison
from stackelberg_mop.papers.scenarios import format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per scenario")
    parser.add_argument("--gap", type=float, default=1e-3)
    parser.add_argument("--out", default="results/kkt_scenarios")
    args = parser.parse_args()
    case = sm.load_case()
    day = sm.reference_day(case)
    table = run_comparison(case, day, folder=args.out, time_limit=args.time_limit, gap=args.gap)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(format_table(table.drop(columns=["kkt_status"])))
        print(table[["kkt_status", "best_bound", "gap", "solve_time_s", "mean_price"]])
    print(f"wrote {args.out}/scenarios_optimal.csv, optimal_prices.csv and four PNGs")


if __name__ == "__main__":
    main()
