"""The game on one day, side by side: what `make demo` shows.

Four ways for the DNO to post the day's 24 prices, each answered by the prosumers' exact best
response, the network dispatched with the MOP and checked by the AC power flow (`evaluate`), and
judged by the one yardstick (`yardstick`): the HV tariff passed through (normalised regret 1), the
LMP fixed point (Song et al.'s (2024) clearing), a shipped learned agent, and the certified bi-level optimum
(regret 0, from the shipped table: proven by KKT/Big-M in SCIP, re-scored by `evaluate`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cases import Case
from ..data import Day

#: the agent the demo shows (the shipped clone of the optimum; any ``agent:`` folder works)
DEFAULT_AGENT = "benchmarks/agents/bc-regret"


def play(case: Case, day: Day, agent: str | None = DEFAULT_AGENT) -> list[dict]:
    """One row per policy: name, prices (24,) ¥/MWh, its `Outcome`, the yardstick's judgement
    (`Yardstick.judge`), decision time (s) and details (the optimum's certificate). The agent is
    left out when its folder is not there (an installed package without the repository)."""
    from ..scoring import evaluate
    from ..scoring.yardstick import Yardstick
    from .benchmark import make_policy

    specs = [("tariff (HV price passed through)", "tariff"), ("LMP fixed point", "fixed_point")]
    if agent and (Path(agent) / "config.json").is_file():
        specs.append((f"learned agent {Path(agent).name}", f"agent:{agent}"))
    specs.append(("bi-level optimum (certified)", "optimum"))
    yardstick = Yardstick(case)
    rows = []
    for label, spec in specs:
        policy = make_policy(spec)
        prices, mop = policy(case, day)
        outcome = evaluate(case, day, prices, mop=mop, response=getattr(policy, "response", None))
        solved = outcome.status.startswith("optimal")
        rows.append({"policy": label, "prices": np.asarray(prices, dtype=float), "outcome": outcome,
                     "judged": yardstick.judge(day, outcome.dno_objective if solved else np.nan),
                     "decision_time": policy.decision_time, "details": policy.details or {}})
    return rows


def format_rows(rows: list[dict]) -> str:
    head = f"{'policy':<36}{'DNO objective ¥':>16}{'norm. regret':>13}{'V min–max p.u.':>16}{'decides in':>12}"
    lines = [head]
    for r in rows:
        out, judged = r["outcome"], r["judged"]
        volts = f"{np.min(out.voltages_ac):.3f}–{np.max(out.voltages_ac):.3f}"
        t = r["decision_time"]
        when = f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.1f} s"
        lines.append(f"{r['policy']:<36}{out.dno_objective:>16,.1f}{round(judged['normalised_regret'], 3) + 0.0:>13.3f}{volts:>16}"
                     f"{when:>12}")
    best = rows[-1]
    gap = best["details"].get("gap")
    if gap is not None:
        lines.append(f"optimum: J* = {best['judged']['optimum_objective']:,.1f} ¥ proven to a relative gap of "
                     f"{gap:.1e} (bound {best['judged']['optimum_bound']:,.1f} ¥); its time is the solve's, "
                     "recorded in the shipped table")
    lines.append("normalised regret = (J − J*)/(J_tariff − J*): 0 = the bi-level optimum, 1 = the tariff")
    return "\n".join(lines)


def plot_prices(case: Case, day: Day, rows: list[dict], path: str | Path) -> Path:
    """The posted prices of every policy within the day's bounds (shaded), one line each."""
    from matplotlib.figure import Figure

    from ..envs.render import legend_outside
    from ..market import price_bounds

    bounds = price_bounds(case, day)
    fig = Figure(figsize=(10, 4), dpi=90, layout="constrained")
    ax = fig.subplots()
    hours = np.arange(24)
    ax.fill_between(hours, bounds.lower, bounds.upper, step="mid", color="0.9", label="price rules (per hour)")
    # the tariff dashed on top (a clearing that posts it, as the fixed point often does, stays visible)
    styles = {0: {"color": "0.3", "ls": "--", "zorder": 4}, len(rows) - 1: {"color": "k", "lw": 2.5, "zorder": 3}}
    for k, r in enumerate(rows):
        regret = round(r["judged"]["normalised_regret"], 2) + 0.0  # no "-0.00" for the optimum
        ax.step(hours, r["prices"], where="mid", label=f"{r['policy']} (regret {regret:.2f})",
                **styles.get(k, {"lw": 1.6}))
    ax.set(xlabel="hour", ylabel="clearing price ¥/MWh", xlim=(-0.5, 23.5),
           title=f"{case.name}, day {day.name}: the DNO's prices and the prosumers' exact answer")
    legend_outside(ax)
    path = Path(path)
    fig.savefig(path)
    return path
