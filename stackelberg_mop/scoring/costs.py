"""Pricing a network state: the cost parts of each hour, the DNO objective's weighting of them, the
price rules' breach and the checks of MOP set-points and AC voltages. The only place these are priced."""

from __future__ import annotations

import numpy as np

from .. import _validate
from ..cases import HOURS, Case
from ..data import Day
from ..market import price_bounds

#: voltages within this of a limit (p.u.) do not count as violations (solver round-off)
VIOLATION_TOL = 1e-6


#: set-points may exceed the MOP's DC balance and ratings by this much (MW, MVA)
MOP_TOL = 1e-6


def price_violation(case: Case, day: Day, prices: np.ndarray) -> float:
    """Largest breach of the price rules of `day`, ¥/MWh: bounds per hour, and the daily-mean cap."""
    return price_bounds(case, day).violation(prices)


def check_mop_setpoints(case: Case, setpoints) -> tuple[np.ndarray, np.ndarray]:
    """(P, Q) MW/Mvar, each (K, 24), from an array (2, K, 24); ValueError if it breaks the MOP's limits.

    The DC side must balance: Σ_k (P_k + A_k |S_k|) = 0 each hour, and |S_k| <= s_max_k.
    """
    k = len(case.mop)
    if len(case.generators):
        raise ValueError(f"mop: set-points are not supported for a case with generators ({len(case.generators)} "
                         "DGs, whose output only the dispatch model decides); use mop='opf' or 'off'")
    arr = _validate.array("mop", setpoints, "set-points MW/Mvar")
    if arr.shape != (2, k, HOURS):
        raise ValueError(f"mop: set-points must have shape (2, K, 24) = (2, {k}, 24) for [P; Q], got {arr.shape}")
    p, q = arr
    apparent = np.hypot(p, q)
    over = apparent - case.mop.s_max[:, None]
    if over.max(initial=0.0) > MOP_TOL:
        kk, t = np.unravel_index(np.argmax(over), over.shape)
        raise ValueError(f"mop: terminal {kk} (bus {case.mop.bus[kk]}) exceeds its {case.mop.s_max[kk]} MVA "
                         f"rating at hour {t} ({apparent[kk, t]:.4f} MVA)")
    dc = (p + case.mop.loss_coefficient[:, None] * apparent).sum(axis=0)
    if np.abs(dc).max(initial=0.0) > MOP_TOL:
        t = int(np.argmax(np.abs(dc)))
        raise ValueError(f"mop: the DC balance Σ(P + A|S|) is {dc[t]:.6f} MW at hour {t}, must be 0")
    return p, q


#: the rows of `hourly_network_costs`
COST_ROWS = ("grid", "line_loss", "mop_loss", "voltage_deviation", "dg")


def hourly_network_costs(case: Case, day: Day, grid_power, line_loss, mop_loss, v, dg_p=None,
                         hours=slice(None)) -> np.ndarray:
    """(5, 24): grid, line loss, MOP loss, voltage deviation and DG generation cost (¥) of each hour of
    a network state (rows named by `COST_ROWS`).

    The only place these are priced: for an optimised dispatch and for set-points alike, from the
    physical quantities (the model's auxiliary variables are tight only where their weight is > 0).
    grid_power (24,) MW, line_loss (24,) MW, mop_loss (K, 24) MW, v (B, 24) squared voltage, p.u.,
    dg_p (G, 24) MW (None: no DGs); or only some hours of each (H columns), naming them by `hours`
    (a slice of the day's hours).
    """
    obj, buy, sell = case.objective, day.buy_price[hours], day.sell_price[hours]
    grid = sell * grid_power + (buy - sell) * np.maximum(grid_power, 0)
    gen = case.generators
    if dg_p is None and len(gen):
        raise ValueError(f"dg_p: the case has {len(gen)} generators; their output (G, H) MW is needed")
    dg = np.zeros_like(grid) if not len(gen) else gen.cost(dg_p).sum(axis=0)
    return np.stack([grid, obj.loss_cost * np.asarray(line_loss), obj.loss_cost * np.sum(mop_loss, axis=0),
                     obj.voltage_cost * np.abs(v - 1).sum(axis=0), dg])


def weigh_hours(case: Case, hourly: np.ndarray, revenue: np.ndarray) -> np.ndarray:
    """Each hour's share of the DNO objective, ¥: ω_1·(grid + DG − revenue + line loss + MOP loss) +
    ω_2·voltage deviation, from `hourly_network_costs` (5, H) and the revenue Σ_n λ_n,t P_n,t (H,)."""
    return case.objective.weigh(economic_costs(hourly) - revenue, hourly[3])


def economic_costs(hourly: np.ndarray) -> np.ndarray:
    """The operating cost before revenue, ¥ per hour: grid + line loss + MOP loss + DG rows of
    `hourly_network_costs` (all but the voltage deviation)."""
    return hourly[0] + hourly[1] + hourly[2] + hourly[4]


def network_costs(case: Case, day: Day, grid_power, line_loss, mop_loss, v, dg_p=None) -> dict[str, float]:
    """The day's costs in ¥ by `COST_ROWS` name (grid, line_loss, mop_loss, voltage_deviation, dg):
    `hourly_network_costs` summed; and "economic", their operating part (`economic_costs`)."""
    hourly = hourly_network_costs(case, day, grid_power, line_loss, mop_loss, v, dg_p)
    costs = {name: float(x) for name, x in zip(COST_ROWS, hourly.sum(axis=1))}
    return {**costs, "economic": float(economic_costs(hourly).sum())}


def setpoint_loss(case: Case, mop_p, mop_q) -> np.ndarray:
    """MW of converter losses A_k |S_k| of given MOP set-points."""
    return case.mop.loss_coefficient[:, None] * np.hypot(mop_p, mop_q)


def outside_limits(case: Case, vm: np.ndarray) -> np.ndarray:
    """Which bus(-hour)s of AC voltages vm (B, ...) p.u. lie outside [v_min, v_max] (beyond
    VIOLATION_TOL), the substation left out."""
    others = np.arange(case.buses.size) != case.bus_position(case.slack_bus)
    return (vm[others] < case.v_min - VIOLATION_TOL) | (vm[others] > case.v_max + VIOLATION_TOL)
