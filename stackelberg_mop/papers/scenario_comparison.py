"""The first paper's scenario comparison with the bi-level optimum as prices.

Each scenario of `scenarios.SCENARIOS` gets its own optimal prices: `kkt.solve` on the scenario's
case (`scenario_case`) with the scenario's MOP mode and voltage limits; the prices are then scored by
`run_scenario` (i.e. `evaluate`). Plots, in kind like the paper's Figures 6-12: clearing price against
the HV tariff, the prosumers' exchange power, the batteries' stored energy, the voltage envelopes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..bilevel.kkt import KKTResult, solve
from ..cases import Case
from ..data import Day
from .scenarios import SCENARIOS, plot_voltage_envelopes, run_scenario, scenario_case, scenario_table


def optimal_scenarios(case: Case, day: Day, time_limit: float = 300.0, gap: float = 1e-3, **options
                      ) -> tuple[dict[str, KKTResult], dict]:
    """The bi-level optimum of every scenario, and each scenario's `Outcome` at its optimal prices."""
    results, outcomes = {}, {}
    for name, spec in SCENARIOS.items():
        scored = scenario_case(case, name)
        results[name] = solve(scored, day, time_limit=time_limit, gap=gap, mop=spec["mop"],
                              voltage_limits=spec["voltage_limits"], **options)
        outcomes[name] = run_scenario(case, day, results[name].prices, name)
    return results, outcomes


def comparison_table(case: Case, results: dict[str, KKTResult], outcomes: dict) -> pd.DataFrame:
    """`scenarios.scenario_table` plus the optimum's certificate: bound, gap, status, solve time."""
    table = scenario_table(case, outcomes)
    table["best_bound"] = [results[n].best_bound for n in table.index]
    table["gap"] = [results[n].gap for n in table.index]
    table["kkt_status"] = [results[n].status for n in table.index]
    table["solve_time_s"] = [results[n].solve_time for n in table.index]
    table["mean_price"] = [float(results[n].prices.mean()) for n in table.index]
    return table


def plot_comparison(case: Case, day: Day, results: dict[str, KKTResult], outcomes: dict, folder: str | Path
                    ) -> list[Path]:
    """Write the four figures as PNGs into `folder`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hours = np.arange(24)
    styles = {"economy only": ("tab:orange", ":"), "no MOP": ("tab:red", "--"), "full strategy": ("tab:blue", "-")}
    paths = []

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.step(hours, day.buy_price, where="mid", color="k", lw=1.5, label="HV buy tariff")
    ax.step(hours, day.sell_price, where="mid", color="grey", lw=1, ls="-.", label="HV sell price")
    for name, r in results.items():
        colour, ls = styles.get(name, (None, "-"))
        ax.step(hours, r.prices, where="mid", color=colour, ls=ls, lw=2, label=f"optimal price: {name}")
    ax.set(xlabel="hour", ylabel="¥/MWh", xticks=range(0, 24, 2), title="Clearing price (bi-level optimum) vs tariff")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(folder / "clearing_price.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(outcomes), figsize=(5 * len(outcomes), 4), sharey=True)
    for ax, (name, o) in zip(np.atleast_1d(axes), outcomes.items()):
        for n in range(len(case.prosumers)):
            ax.step(hours, o.exchange_power[n], where="mid", label=f"prosumer at bus {case.prosumers.bus[n]}")
        ax.axhline(0, color="k", lw=0.6)
        ax.set(title=name, xlabel="hour", xticks=range(0, 24, 4))
    np.atleast_1d(axes)[0].set_ylabel("exchange power (MW, > 0 buys)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(folder / "exchange_power.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, o in outcomes.items():
        colour, ls = styles.get(name, (None, "-"))
        for m, owner in enumerate(case.batteries.owner):
            energy = np.concatenate([[case.batteries.e_init[m]], o.response.stored_energy[owner]])
            ax.plot(np.arange(25), energy, color=colour, ls=ls, marker=".",
                    label=f"{name}: battery at bus {case.prosumers.bus[owner]}")
    ax.set(xlabel="hour (end of)", ylabel="stored energy (MWh)", title="Battery energy at the optimal prices")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(folder / "battery_energy.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    paths.append(plot_voltage_envelopes(case, outcomes, folder / "voltage_envelopes.png"))
    return paths


def run_comparison(case: Case, day: Day, folder: str | Path = "results/kkt_scenarios", time_limit: float = 300.0,
                   gap: float = 1e-3, **options) -> pd.DataFrame:
    """Solve, score, tabulate (CSV) and plot (PNGs) the three scenarios with optimal prices."""
    results, outcomes = optimal_scenarios(case, day, time_limit=time_limit, gap=gap, **options)
    table = comparison_table(case, results, outcomes)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "scenarios_optimal.csv")
    prices = pd.DataFrame({name: r.prices for name, r in results.items()})
    prices.insert(0, "tariff", day.buy_price)
    prices.to_csv(folder / "optimal_prices.csv", index_label="hour")
    plot_comparison(case, day, results, outcomes, folder)
    return table
