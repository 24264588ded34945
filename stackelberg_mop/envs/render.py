"""A figure of one scored day: prices against the tariff, prosumer exchange, MOP set-points, voltages."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..cases import HOURS, Case
from ..data import Day
from ..scoring import Outcome


def legend_outside(ax, **kwargs) -> None:
    """The axes' legend to the right of the plot, off the data (the figure's constrained layout
    makes room for it)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **{"fontsize": 7} | kwargs)


def voltage_limits(ax, case: Case) -> None:
    """The case's voltage limits as labelled horizontal lines."""
    for limit, word in ((case.v_min, "min"), (case.v_max, "max")):
        ax.axhline(limit, color="C3", ls=":", lw=1, label=f"v_{word} {limit:g} p.u.")


def day_figure(case: Case, day: Day, outcome: Outcome | None, prices: np.ndarray | None = None,
               title: str = "") -> Figure:
    """Four panels (matplotlib Figure, no pyplot state): clearing price vs HV tariff (¥/MWh); each
    prosumer's exchange power (MW); MOP set-points P and Q (MW/Mvar); the AC voltage envelope with
    limits (p.u.). `outcome` None (before a step) draws the day's data only."""
    fig = Figure(figsize=(13, 7), dpi=80, layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    hours = np.arange(HOURS)
    ax = axes[0, 0]
    ax.step(hours, day.buy_price, where="mid", color="0.4", label="HV buy")
    ax.step(hours, day.sell_price, where="mid", color="0.7", label="HV sell")
    if prices is not None:
        lam = np.atleast_2d(prices)
        ax.step(hours, lam.mean(axis=0), where="mid", color="C3", lw=2, label="clearing price")
    ax.set(ylabel="¥/MWh", title="prices")
    legend_outside(ax)
    ax = axes[0, 1]
    exchange = outcome.exchange_power if outcome is not None else day.net_load
    for n, bus in enumerate(case.prosumers.bus):
        ax.plot(hours, exchange[n], label=f"bus {bus}")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set(ylabel="MW (> 0 buys)", title="prosumer exchange" + ("" if outcome is not None else " (no flexibility)"))
    legend_outside(ax)
    ax = axes[1, 0]
    if outcome is not None and np.isfinite(outcome.mop_p).all():
        for k, bus in enumerate(case.mop.bus):
            ax.plot(hours, outcome.mop_p[k], color=f"C{k}", label=f"P bus {bus}")
            ax.plot(hours, outcome.mop_q[k], color=f"C{k}", ls="--")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set(xlabel="hour", ylabel="MW / Mvar", title="MOP injections (P solid, Q dashed)")
    if outcome is not None:
        legend_outside(ax)
    ax = axes[1, 1]
    if outcome is not None and np.isfinite(outcome.voltages_ac).all():
        vm = outcome.voltages_ac
        ax.fill_between(hours, vm.min(axis=0), vm.max(axis=0), color="C0", alpha=0.3, label="AC min–max")
    voltage_limits(ax, case)
    ax.set(xlabel="hour", ylabel="p.u.", title="voltage envelope")
    legend_outside(ax)
    fig.suptitle(title or f"{case.name}, {day.name}")
    return fig


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """(H, W, 3) uint8 pixels of a Figure, drawn by the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
