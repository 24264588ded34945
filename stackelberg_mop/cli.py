"""The `stackelberg-mop` command.

    stackelberg-mop case [NAME]                 print a case's parameters
    stackelberg-mop respond [--case NAME] [--day reference|YYYY-MM-DD] [--prices tariff|flat:X]
                                                the prosumers' verified best response on one day
    stackelberg-mop scenarios [--case NAME] [--day ...] [--prices ...] [--out DIR]
                                                the paper's three scenarios: table (CSV) and voltage plot (PNG)
    stackelberg-mop demo                        respond + scenarios on the default case's reference day
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np

from . import best_response, kkt_residuals, load_case, reference_day, simbench_day
from .cases import Case, CaseError


def _day(case: Case, text: str):
    if text == "reference":
        return reference_day(case)
    try:
        when = date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--day: expected 'reference' or a 2016 date YYYY-MM-DD, got {text!r}") from None
    if when.year != 2016:
        raise SystemExit(f"--day: SimBench's profiles cover 2016, got {text!r}")
    return simbench_day(case, (when - date(2016, 1, 1)).days)


def _prices(case: Case, text: str) -> np.ndarray:
    if text == "tariff":
        return case.tariff.buy_price.copy()
    if text.startswith("flat:"):
        try:
            return np.full(24, float(text[5:]))
        except ValueError:
            pass
    raise SystemExit(f"--prices: expected 'tariff' or 'flat:PRICE' (¥/MWh), got {text!r}")


def cmd_case(args) -> None:
    case = load_case(args.name)
    p, q = case.nominal_load
    print(f"case {case.name}: {case.buses.size} buses, nominal load {p.sum():.3f} MW / {q.sum():.3f} Mvar, "
          f"S_base {case.s_base} MVA, voltage limits [{case.v_min}, {case.v_max}] p.u.")
    print(f"{'prosumer':>8}{'bus':>5}{'PV MW':>7}{'κ ¥/MW²h':>10}{'shift':>7}{'battery MW/MWh':>16}")
    for n in range(len(case.prosumers)):
        m = case.battery_of[n]
        battery = f"{case.batteries.p_charge_max[m]:.2f}/{case.batteries.capacity[m]:.2f}" if m >= 0 else "-"
        pr = case.prosumers
        print(f"{n:>8}{pr.bus[n]:>5}{pr.pv_capacity[n]:>7.2f}{pr.kappa[n]:>10.0f}{pr.shift_fraction[n]:>7.0%}"
              f"{battery:>16}")
    print(f"MOP terminals at buses {case.mop.bus.tolist()}, {case.mop.s_max.tolist()} MVA, "
          f"loss coefficient {case.mop.loss_coefficient.tolist()}")
    print(f"HV buy price ¥/MWh: {case.tariff.buy_price.astype(int).tolist()}")
    print(f"clearing price in [{case.price_rules.price_min:g}, {case.price_rules.price_max:g}] ¥/MWh, "
          f"daily mean <= {case.price_rules.mean_cap:.2f}")


def cmd_respond(args) -> None:
    case = load_case(args.case)
    day = _day(case, args.day)
    prices = _prices(case, args.prices)
    r = best_response(case, day, prices)
    res = kkt_residuals(case, day, r)
    print(f"{case.name}, day {day.name}, prices {args.prices} (mean {prices.mean():.1f} ¥/MWh)")
    print(f"{'prosumer':>8}{'bus':>5}{'bought MWh':>12}{'sold MWh':>10}{'shifted MWh':>13}"
          f"{'cycled MWh':>12}{'cost ¥':>11}")
    for n in range(len(case.prosumers)):
        ex = r.exchange_power[n]
        print(f"{n:>8}{case.prosumers.bus[n]:>5}{ex.clip(min=0).sum():>12.3f}{-ex.clip(max=0).sum():>10.3f}"
              f"{r.transfer[n].clip(min=0).sum():>13.3f}{r.discharge[n].sum():>12.3f}{r.cost[n]:>11.2f}")
    print(f"total prosumer cost {r.cost.sum():.2f} ¥; largest KKT residual {max(res.values()):.1e} "
          f"({max(res, key=res.get)}); simultaneous charge/discharge: {bool(r.simultaneous.any())}")
    if not r.ok or max(res.values()) > 1e-6:
        raise SystemExit("verification failed: the best response is not exact")


def cmd_scenarios(args) -> None:
    from .scenarios import format_table, plot_voltage_envelopes, run_scenarios, scenario_table

    case = load_case(args.case)
    day = _day(case, args.day)
    outcomes = run_scenarios(case, day, _prices(case, args.prices))
    table = scenario_table(case, outcomes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "scenarios.csv")
    png = plot_voltage_envelopes(case, outcomes, out / "voltage_envelopes.png")
    print(f"\nscenarios on day {day.name}, prices {args.prices} (costs ¥/day, voltages p.u.)")
    print(format_table(table.drop(columns="status")))
    print(f"wrote {out / 'scenarios.csv'} and {png}")
    failed = table.index[table.status != "optimal"].tolist()
    if failed:
        raise SystemExit(f"scenarios {failed} did not solve: {table.status[failed].tolist()}")


def cmd_demo(args) -> None:
    cmd_respond(args)
    cmd_scenarios(args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="stackelberg-mop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("case", help="print a case's parameters")
    p.add_argument("name", nargs="?", default="ieee33-mop", help="shipped case name or path to a case .json")
    p.set_defaults(func=cmd_case)
    for name, func, text in (("respond", cmd_respond, "the prosumers' verified best response on one day"),
                             ("scenarios", cmd_scenarios, "the paper's three scenarios: table and voltage plot"),
                             ("demo", cmd_demo, "respond + scenarios on one day (default: the reference day)")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--case", default="ieee33-mop", help="shipped case name or path to a case .json")
        p.add_argument("--day", default="reference", help="'reference' or a date of 2016, YYYY-MM-DD")
        p.add_argument("--prices", default="tariff", help="'tariff' (the HV buy price) or 'flat:PRICE' in ¥/MWh")
        if name != "respond":
            p.add_argument("--out", default="results", help="folder for the table (CSV) and plot (PNG)")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except CaseError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
