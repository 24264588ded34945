"""The `stackelberg-mop` command.

    stackelberg-mop case [NAME]                 print a case's parameters
    stackelberg-mop case --new FILE [--network case69.json] [--prosumers 20] [--seed 0] [--force]
                                                generate a case on a feeder, write it, print it
    stackelberg-mop respond [--case NAME] [--day reference|YYYY-MM-DD] [--prices tariff|flat:X]
                                                the prosumers' verified best response on one day
    stackelberg-mop scenarios [--case NAME] [--day ...] [--prices ...] [--out DIR]
                                                the paper's three scenarios: table (CSV) and voltage plot (PNG)
    stackelberg-mop demo [--agent DIR]          the game on the reference day: tariff, fixed point, agent, optimum
                                                side by side (table + prices picture), then the scenarios
    stackelberg-mop solve --policy SPEC [--case] [--day] [--out DIR]
                                                one pricing policy on one day: table and plot of the day
    stackelberg-mop train --algo ppo|sac|td3|ppo_hourly|sac_hourly|bc [training flags ...]
                                                train an agent (flags: python -m stackelberg_mop.rl.ALGO --help)
    stackelberg-mop evaluate --policy SPEC [--split test] [--limit N] [--out DIR]
                                                a saved agent or a baseline on a split of days
    stackelberg-mop benchmark [--policies ...] [--split test] [--limit N] [--backend local|serial|ray]
                              [--address HOST:PORT] [--workers N] [--quick]
                                                every policy on held-out days: rows (CSV), report, plots
Policy specs: tariff, flat[:PRICE], fixed_point, admm, kkt, agent:RUN_DIR.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from datetime import date
from pathlib import Path

import numpy as np

from .argparsing import Parser as _Parser
from .argparsing import backend_flags as _backend_flags
from .argparsing import count as _count
from .cases import Case, load_case
from .data import OptimumError, reference_day, simbench_day
from .market import best_response, kkt_residuals
from .runner.parallel import ClusterError


def _positive(text: str) -> float:
    """An argparse type: a finite number > 0 (seconds, gaps)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _day(case: Case, text: str):
    if text == "reference":
        return reference_day(case)
    try:
        when = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--day: expected 'reference' or a 2016 date YYYY-MM-DD, got {text!r}") from None
    if when.year != 2016:
        raise ValueError(f"--day: SimBench's profiles cover 2016, got {text!r}")
    return simbench_day(case, (when - date(2016, 1, 1)).days)


def _prices(case: Case, text: str, day=None) -> np.ndarray:
    if text == "tariff":
        return case.tariff.buy_price.copy()
    if text == "optimum":  # the shipped bi-level optimum of the day
        from .data import optimum

        return optimum(case, day if day is not None else reference_day(case)).prices.copy()
    if text.startswith("flat:"):
        from .policies.baselines import flat_price

        return np.full(24, flat_price(text[5:], "--prices"))
    raise ValueError(f"--prices: expected 'tariff', 'optimum' or 'flat:PRICE' with PRICE in (0, 100000] ¥/MWh, "
                     f"got {text!r}")


def cmd_case(args) -> None:
    if args.new is None:
        if given := [f for f, v in (("--network", args.network), ("--prosumers", args.prosumers),
                                    ("--seed", args.seed)) if v is not None]:
            raise ValueError(f"{given[0]}: generates a case, with --new FILE")
    else:
        from .cases.generate import check_output, generate_case, write_case

        if args.name is not None:
            raise ValueError(f"--new writes a new case; drop the case name {args.name!r}")
        out = check_output(args.new, args.force)  # before the ~1 s of power flows
        layout = generate_case(args.network or "case69.json", args.prosumers or 20, args.seed or 0,
                               battery_share=args.battery_share, pv_share=args.pv_share,
                               mop_terminals=args.mop_terminals, mop_share=args.mop_share,
                               target_v_min=args.target_v_min, load_scale=args.load_scale, base=args.base,
                               name=out.stem, root=out.parent)
        print(f"wrote {write_case(layout, out, overwrite=args.force)}")
        args.name = str(out)
    case = load_case(args.name or "ieee33-mop")
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
    print(case.price_rules.describe())


def cmd_respond(args) -> None:
    case = load_case(args.case)
    day = _day(case, args.day)
    prices = _prices(case, args.prices, day)
    r = best_response(case, day, prices)
    res = kkt_residuals(case, day, r)
    print(f"{case.name}, day {day.name}, prices {args.prices} (mean {prices.mean():.1f} ¥/MWh)")
    print(f"{'prosumer':>8}{'bus':>5}{'bought MWh':>12}{'sold MWh':>10}{'shifted MWh':>13}"
          f"{'cycled MWh':>12}{'cost ¥':>11}")
    for n in range(len(case.prosumers)):
        ex = r.exchange_power[n]
        print(f"{n:>8}{case.prosumers.bus[n]:>5}{ex.clip(min=0).sum():>12.3f}{-ex.clip(max=0).sum():>10.3f}"
              f"{r.transfer[n].clip(min=0).sum():>13.3f}{r.discharge[n].sum():>12.3f}{r.cost[n]:>11.2f}")
    # the residuals are in ¥/MWh (stationarity) and MW: their round-off grows with the prices posted
    tol = 1e-6 * max(1.0, float(np.abs(prices).max()) / 1e3)
    print(f"total prosumer cost {r.cost.sum():.2f} ¥; largest KKT residual {max(res.values()):.1e} "
          f"({max(res, key=res.get)}; tolerance {tol:.0e}); simultaneous charge/discharge: "
          f"{bool(r.simultaneous.any())}")
    if not r.ok:
        raise SystemExit(f"verification failed: {r.failure}")
    if max(res.values()) > tol:
        raise SystemExit("verification failed: the best response is not exact")


def cmd_scenarios(args) -> None:
    from .papers.scenarios import format_table, plot_voltage_envelopes, run_scenarios, scenario_table

    case = load_case(args.case)
    day = _day(case, args.day)
    if len(case.mop) == 0:
        raise ValueError(f"--case: {case.name!r} has no MOP terminals; the scenarios compare the feeder with and "
                         "without its MOP")
    prices = _prices(case, args.prices, day)
    out = _out_folder(args.out)
    outcomes = run_scenarios(case, day, prices)
    table = scenario_table(case, outcomes)
    table.to_csv(out / "scenarios.csv")
    png = plot_voltage_envelopes(case, outcomes, out / "voltage_envelopes.png")
    print(f"\nscenarios on day {day.name}, prices {args.prices} (costs ¥/day, voltages p.u.)")
    print(format_table(table.drop(columns="status")))
    print(f"wrote {out / 'scenarios.csv'} and {png}")
    failed = table.index[table.status != "optimal"].tolist()
    if failed:
        raise SystemExit(f"scenarios {failed} did not solve: {table.status[failed].tolist()}")


def cmd_demo(args) -> None:
    """The game on one day (tariff, fixed point, a learned agent, the certified optimum, side by side,
    and their prices as a picture), then the paper's three scenarios at the optimum's prices."""
    from .runner.demo import DEFAULT_AGENT, format_rows, play, plot_prices

    case = load_case(args.case)
    day = _day(case, args.day)
    if args.agent != DEFAULT_AGENT and not (Path(args.agent) / "config.json").is_file():
        raise ValueError(f"--agent: {args.agent!r} is not a training run folder (no config.json)")
    args.prices = args.prices if args.prices != "tariff" else "optimum"
    _prices(case, args.prices, day)  # the scenarios' prices, checked before anything runs
    out = _out_folder(args.out)
    rows = play(case, day, args.agent)
    print(f"The game on {case.name}, day {day.name}: the DNO posts 24 prices, the prosumers answer with their exact "
          "best response, the DNO dispatches the feeder and its MOP (SOCP), the AC power flow checks the voltages")
    print(format_rows(rows))
    print(f"wrote {plot_prices(case, day, rows, out / 'demo_prices.png')}")
    cmd_scenarios(args)


def _out_folder(text: str) -> Path:
    """--out as a folder, made if needed; ValueError for '' (it would mean the current folder) or a file."""
    if not str(text).strip():
        raise ValueError("--out: a folder name is needed, got ''")
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _policy(spec: str, flag: str = "--policy"):
    from .runner.benchmark import make_policy

    try:
        return make_policy(spec)
    except (ValueError, OSError) as err:
        raise ValueError(f"{flag}: {err}") from None


def cmd_solve(args) -> None:
    from .envs.render import day_figure
    from .scoring import evaluate

    case = load_case(args.case)
    day = _day(case, args.day)
    policy = _policy(args.policy)
    prices, mop = policy(case, day)
    out = evaluate(case, day, prices, mop=mop)
    print(f"{args.policy} on {case.name}, day {day.name}: decided in {policy.decision_time:.3f} s "
          f"{policy.details or ''}")
    lam = np.atleast_2d(prices).mean(axis=0)
    print("hour      " + "".join(f"{t:>6}" for t in range(24)))
    print("price ¥/MWh" + "".join(f"{x:>6.0f}" for x in lam)[1:])
    print("HV buy    " + "".join(f"{x:>6.0f}" for x in day.buy_price))
    for key, value in out.summary().items():
        print(f"  {key:<24} {value:.4g}" if isinstance(value, float) else f"  {key:<24} {value}")
    folder = _out_folder(args.out)
    png = folder / f"solve_{args.policy.replace(':', '_').replace('/', '_')}_{day.name}.png"
    day_figure(case, day, out, prices, f"{args.policy}, {case.name}, {day.name}").savefig(png)
    print(f"wrote {png}")
    if not out.status.startswith("optimal"):
        raise SystemExit(f"the day did not solve: {out.status}")


def cmd_train(args, extra: list[str]) -> None:
    import importlib

    module = importlib.import_module(f".rl.{args.algo}", __package__)
    module.main(extra)


def cmd_evaluate(args) -> None:
    from .runner.benchmark import run
    from .runner.report import format_report, report

    _policy(args.policy)
    if not str(args.out).strip():
        raise ValueError("--out: a folder name is needed, got ''")
    # the tariff and the shipped optimum are scored beside it (a table look-up each): the yardstick
    rows = run([args.policy], case=args.case, split=args.split, limit=args.limit,
               out=Path(args.out) / "rows.csv", backend=args.backend, workers=args.workers, address=args.address)
    print(format_report([t for t in report(rows) if t["policy"] == args.policy]))


def cmd_benchmark(args) -> None:
    from .runner.benchmark import run
    from .runner.report import format_report, per_day_markdown, plot_benchmark, report

    policies, runs = list(args.policies), []
    limit = args.limit
    for spec in policies:  # every spec and the case checked before anything is trained or written
        _policy(spec, "--policies")
    load_case(args.case)
    out = _out_folder(args.out)
    if args.quick:  # a few days and a short training run: the whole pipeline in CI time
        from .rl import ppo

        limit = limit or 3
        run_dir = ppo.main(["--total-timesteps", "512", "--n-steps", "128", "--eval-every", "256",
                            "--eval-days", "4", "--out", str(out / "train"), "--name", "ppo-quick",
                            "--progress-bar", "false"])
        runs.append(run_dir)
        policies.append(f"agent:{run_dir}")
    runs += [p.split(":", 1)[1] for p in policies if p.startswith("agent:") and p.split(":", 1)[1] not in map(str, runs)]
    for spec in policies:
        _policy(spec, "--policies")
    rows = run(policies, case=args.case, split=args.split, limit=limit, out=out / "rows.csv",
               backend=args.backend, workers=args.workers, address=args.address)
    table = report(rows)
    text = format_report(table)
    (out / "report.txt").write_text(text + "\n")
    (out / "per_day.md").write_text(per_day_markdown(rows) + "\n")
    print(text)
    print(f"wrote {out / 'report.txt'}, {out / 'per_day.md'}")
    for path in plot_benchmark(rows, out, runs=runs):
        print(f"wrote {path}")


def cmd_optima(args) -> None:
    from .runner.optima import compute, merge, shipped_table, table_summary

    if not 0 < args.gap < 1:
        raise ValueError(f"--gap: must lie in (0, 1), got {args.gap}")
    if args.merge:
        case = load_case(args.case)
        out = args.out or shipped_table(args.case, case)
        rows = merge(out, *args.merge, case=case)
        print(f"merged {len(args.merge)} table(s) into {out}")
    else:
        rows = compute(args.case, args.split, out=args.out, time_limit=args.time_limit, gap=args.gap,
                       backend=args.backend, workers=args.workers, limit=args.limit, retry=args.retry,
                       address=args.address)
    s = table_summary(rows)
    if s["days"]:
        print(f"table: {s['days']} days, {s['optimal']} optimal; gap median {s['median_gap']:.1e}, max "
              f"{s['max_gap']:.1e}; solve time median {s['median_time']:.0f} s, max {s['max_time']:.0f} s")


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(prog="stackelberg-mop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("case", help="print a case's parameters, or generate a new case file (--new)",
                       description="Print a case's parameters; with --new FILE, first write a case generated on a "
                                   "feeder (stackelberg_mop.cases.generate_case) to FILE.")
    p.add_argument("name", nargs="?", default=None, help="shipped case name or path to a case .json (default ieee33-mop)")
    g = p.add_argument_group("generate a case (--new)")
    g.add_argument("--new", metavar="FILE", default=None, help="write a generated case to FILE (.json) and print it")
    g.add_argument("--network", default=None,
                   help="a shipped network (case69.json, default; case118zh.json), a pandapower JSON file or a "
                        "pandapower.networks name (case33bw)")
    g.add_argument("--prosumers", type=_count, default=None, help="number of prosumers (default 20)")
    g.add_argument("--seed", type=int, default=None, help="random seed of the draws (default 0)")
    g.add_argument("--battery-share", type=float, default=0.4, help="share of prosumers with a battery (default 0.4)")
    g.add_argument("--pv-share", type=float, default=0.6, help="total PV capacity / nominal load (default 0.6)")
    g.add_argument("--mop-terminals", type=int, default=4, help="MOP terminals at the feeder's ends (default 4)")
    g.add_argument("--mop-share", type=float, default=0.25, help="each terminal's rating / nominal load (default 0.25)")
    g.add_argument("--target-v-min", type=float, default=0.91,
                   help="the feeder's loads are scaled so its lowest voltage at nominal load is this (p.u.)")
    g.add_argument("--load-scale", type=float, default=None, help="a fixed factor on the feeder's loads instead")
    g.add_argument("--base", default="ieee33-mop", help="the case whose tariff, rules and profiles it extends")
    g.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_case)
    for name, func, text in (("respond", cmd_respond, "the prosumers' verified best response on one day"),
                             ("scenarios", cmd_scenarios, "the paper's three scenarios: table and voltage plot"),
                             ("demo", cmd_demo, "the game on one day (tariff, fixed point, agent, optimum) and the scenarios")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--case", default="ieee33-mop", help="shipped case name or path to a case .json")
        p.add_argument("--day", default="reference", help="'reference' or a date of 2016, YYYY-MM-DD")
        p.add_argument("--prices", default="tariff",
                       help="'tariff' (the HV buy price), 'optimum' (the day's shipped bi-level optimum) or "
                            "'flat:PRICE' in ¥/MWh" + (" (demo: the scenarios' prices; default the optimum's)"
                                                      if name == "demo" else ""))
        if name != "respond":
            p.add_argument("--out", default="results", help="folder for the table (CSV) and plot (PNG)")
        if name == "demo":
            from .runner.demo import DEFAULT_AGENT

            p.add_argument("--agent", default=DEFAULT_AGENT, help="a trained agent's folder shown beside the others")
        p.set_defaults(func=func)
    p = sub.add_parser("solve", help="one pricing policy on one day: table and plot",
                       description="Decide prices on one day with a policy, score them with evaluate, plot the day.")
    p.add_argument("--policy", default="tariff", help="tariff, flat[:PRICE], fixed_point, admm, kkt, optimum, agent:RUN_DIR")
    p.add_argument("--case", default="ieee33-mop", help="shipped case name or path to a case .json")
    p.add_argument("--day", default="reference", help="'reference' or a date of 2016, YYYY-MM-DD")
    p.add_argument("--out", default="results", help="folder for the plot (PNG)")
    p.set_defaults(func=cmd_solve)
    p = sub.add_parser("train", help="train an agent (stable-baselines3)", add_help=False,
                       description="Train an agent; every other flag goes to the algorithm's script "
                                   "(python -m stackelberg_mop.rl.ALGO --help lists them).")
    p.add_argument("--algo", choices=("ppo", "sac", "td3", "ppo_hourly", "sac_hourly", "bc"), default="ppo")
    p.set_defaults(func=cmd_train)
    for name, func, text in (("evaluate", cmd_evaluate, "a saved agent or a baseline on a split of days"),
                             ("benchmark", cmd_benchmark, "every policy on held-out days: rows, report, plots")):
        p = sub.add_parser(name, help=text, description=text)
        if name == "evaluate":
            p.add_argument("--policy", required=True, help="tariff, flat[:PRICE], fixed_point, admm, kkt, optimum, agent:RUN_DIR")
        else:
            p.add_argument("--policies", nargs="+", default=["optimum", "tariff", "flat", "fixed_point", "admm"],
                           help="policy specs (tariff, flat[:PRICE], fixed_point, admm, kkt, optimum, agent:RUN_DIR)")
            p.add_argument("--quick", action="store_true", help="3 days and a short PPO run (minutes)")
        p.add_argument("--case", default="ieee33-mop", help="shipped case name or path to a case .json")
        p.add_argument("--split", default="test", choices=("test", "val", "train", "reference"))
        p.add_argument("--limit", type=_count, default=None, help="evenly spaced days of the split (default: all)")
        _backend_flags(p)
        p.add_argument("--out", default=f"results/{name}", help="folder for rows.csv, the report and plots")
        p.set_defaults(func=func)
    text = "prove the bi-level optimum of every day of a split, one table row per day as it finishes (resumes)"
    p = sub.add_parser("optima", help=text, description=text)
    p.add_argument("--case", default="ieee33-mop", help="shipped case name, or path to a case .json (then --out)")
    p.add_argument("--split", default="test", choices=("test", "val", "train", "reference"))
    p.add_argument("--out", default=None, help="the table (JSON lines; default: the case's shipped table)")
    p.add_argument("--time-limit", type=_positive, default=600.0, help="seconds per day (default 600)")
    p.add_argument("--gap", type=_positive, default=1e-4, help="relative gap to prove (default 1e-4)")
    p.add_argument("--limit", type=_count, default=None, help="evenly spaced days of the split (default: all)")
    p.add_argument("--retry", action="store_true", help="solve again the days whose status is not optimal")
    p.add_argument("--merge", nargs="+", metavar="TABLE", default=None,
                   help="solve nothing: fold these tables (other runs) into --out, each day's best certificate")
    _backend_flags(p)
    p.set_defaults(func=cmd_optima)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        parser.error(f"{argv[0]}: not a command; the first argument is one of {sorted(sub.choices)}")
    warnings.simplefilter("default", DeprecationWarning)  # a renamed case is said, not hidden
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    try:
        if args.command == "train":
            args.func(args, extra)
        else:
            args.func(args)
    except (ValueError, OptimumError, OSError, ClusterError) as err:  # bad input or a path that cannot be: one line, no traceback
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")


if __name__ == "__main__":
    main()
