"""The first paper's scenario table on the reference day, with the HV tariff passed through as prices.

    python benchmarks/scenarios.py [--out results/scenarios]

Prints the table, writes it as CSV and the voltage envelopes as PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import stackelberg_mop as sm
from stackelberg_mop.papers.scenarios import (
    format_table,
    plot_voltage_envelopes,
    run_scenarios,
    scenario_table,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/scenarios", help="folder for the CSV and PNG")
    args = parser.parse_args()
    case = sm.load_case()
    day = sm.reference_day(case)
    outcomes = run_scenarios(case, day)
    table = scenario_table(case, outcomes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "scenarios.csv")
    png = plot_voltage_envelopes(case, outcomes, out / "voltage_envelopes.png")
    print(format_table(table))
    print(f"wrote {out / 'scenarios.csv'} and {png}")


if __name__ == "__main__":
    main()
