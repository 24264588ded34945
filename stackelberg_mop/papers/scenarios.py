"""The first paper's three scenarios (MODEL.md §"Scenarios"), scored by `evaluate`.

1. "economy only": ω_2 = 0, no voltage limits, MOP idle, losses not priced (c_loss = 0);
2. "no MOP": the full objective, MOP idle, voltage limits soft (the network cannot meet them);
3. "full strategy": the full objective, MOP dispatched, hard voltage limits.

Each scenario's `dno_cost` and `dno_objective` are in its own accounting (scenario 1 does not price
losses); the table's `loss_cost` prices every scenario's physical losses at the case's c_loss and
`voltage_deviation_cost` is c_V Σ|v − 1| for all, so the columns compare across scenarios.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import cached
from ..cases import Case
from ..data import Day
from ..scoring import Outcome, evaluate

SCENARIOS = {
    "economy only": {"mop": "off", "voltage_limits": "none", "economy_only": True},
    "no MOP": {"mop": "off", "voltage_limits": "soft", "economy_only": False},
    "full strategy": {"mop": "opf", "voltage_limits": "hard", "economy_only": False},
}


def scenario_case(case: Case, name: str) -> Case:
    """The case as scenario `name` sees it (cached on `case`, so its dispatch models are reused)."""
    if name not in SCENARIOS:
        raise ValueError(f"scenario: must be one of {list(SCENARIOS)}, got {name!r}")
    if not SCENARIOS[name]["economy_only"]:
        return case
    cache = cached(case, "scenario_cases", dict)
    if name not in cache:
        cache[name] = case.replace(objective=dataclasses.replace(case.objective, omega_voltage=0.0, loss_cost=0.0))
    return cache[name]


def run_scenario(case: Case, day: Day, prices, name: str) -> Outcome:
    """Score `prices` on `day` under scenario `name`."""
    scored = scenario_case(case, name)  # validates the name
    spec = SCENARIOS[name]
    return evaluate(scored, day, prices, mop=spec["mop"], voltage_limits=spec["voltage_limits"])


def run_scenarios(case: Case, day: Day, prices=None) -> dict[str, Outcome]:
    """All three scenarios for the same prices (default: the HV buy tariff passed through)."""
    prices = day.buy_price if prices is None else prices
    return {name: run_scenario(case, day, prices, name) for name in SCENARIOS}


def scenario_table(case: Case, outcomes: dict[str, Outcome]) -> pd.DataFrame:
    """One row per scenario: costs in ¥/day, over-limit rate as a share, voltage range in p.u."""
    rows = []
    for name, o in outcomes.items():
        rows.append({"scenario": name, "status": o.status,
                     "loss_cost": case.objective.loss_cost * float(o.line_loss.sum() + o.mop_loss.sum()),
                     "voltage_deviation_cost": o.voltage_deviation_cost,
                     "dno_cost": o.dno_cost, "dno_objective": o.dno_objective,
                     "prosumer_cost": float(o.prosumer_costs.sum()), "violation_rate": o.violation_rate,
                     "v_min": float(np.nanmin(o.voltages_ac)), "v_max": float(np.nanmax(o.voltages_ac)),
                     "max_relaxation_gap": float(np.nanmax(o.relaxation_gap)),
                     "max_ac_mismatch": float(np.nanmax(o.ac_mismatch))})
    return pd.DataFrame(rows).set_index("scenario")


def format_table(table: pd.DataFrame) -> str:
    """The scenario table as text: ¥ to 0.1, shares and voltages to 1e-4, residuals in scientific notation."""
    fmt = {col: (lambda x: f"{x:,.1f}") for col in table.columns if col.endswith("cost") or col == "dno_objective"}
    fmt.update({col: (lambda x: f"{x:.4f}") for col in ("violation_rate", "v_min", "v_max")})
    fmt.update({col: (lambda x: f"{x:.1e}") for col in ("max_relaxation_gap", "max_ac_mismatch")})
    return table.to_string(formatters={c: f for c, f in fmt.items() if c in table.columns})


def plot_voltage_envelopes(case: Case, outcomes: dict[str, Outcome], path: str | Path) -> Path:
    """Save a PNG of each scenario's hourly min/max AC voltage against the limits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..envs.render import legend_outside, voltage_limits

    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    hours = np.arange(24)
    styles = (("tab:orange", ":"), ("tab:red", "--"), ("tab:blue", "-"))
    for (name, o), (colour, ls) in zip(outcomes.items(), styles):
        lo, hi = np.nanmin(o.voltages_ac, axis=0), np.nanmax(o.voltages_ac, axis=0)
        ax.fill_between(hours, lo, hi, alpha=0.15, color=colour, step="mid")
        ax.step(hours, lo, where="mid", color=colour, ls=ls, lw=2, label=f"{name} (min/max)")
        ax.step(hours, hi, where="mid", color=colour, ls=ls, lw=2)
    voltage_limits(ax, case)
    ax.set(xlabel="hour", ylabel="bus voltage (p.u., AC power flow)", xticks=range(0, 24, 2),
           title=f"{case.name}: voltage envelope per scenario")
    legend_outside(ax, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
