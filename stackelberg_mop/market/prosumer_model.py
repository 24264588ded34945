"""Prosumer n's problem as a cvxpy block (built once, re-solved with new data: DPP).

The exact best response (`follower.best_response`) is the fast path for plain prices. Market designs
that add terms to a prosumer's problem (peer-to-peer trades, ADMM's proximal penalty) need the model
itself; this block is the standard form of `kkt.follower_qp` with the day-dependent data (net load,
shift bounds) as Parameters, so a block is built once per case and reused for every day and iteration.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ..cases import HOURS, Case
from ..data import Day
from .standard_form import follower_qp


class ProsumerBlock:
    """Variables, constraints and own cost of prosumer n, for any day of `case` (bid_limits=False: a
    Song et al. (2024) prosumer's meter without its bid limits, for the sharing market).

    x: the standard-form variables (shift, and charge, discharge, energy if it owns a battery; shift,
    elastic load, curtailment and meter for Song et al.'s (2024) kind).
    exchange: P_n = G x + h (MW, (24,), > 0 buys), before any peer-to-peer trade; shift = G x.
    own_cost: ½ xᵀQx + cᵀx, ¥ (discomfort, degradation and the ε term, minus the elastic load's
    utility; no energy payment).
    """

    def __init__(self, case: Case, n: int, day: Day, bid_limits: bool = True):
        qp = follower_qp(case, day, n, bid_limits)
        self.case, self.n, self.bid_limits = case, n, bid_limits
        self.x = cp.Variable(qp.size, name=f"x_{n}")
        self.h = cp.Parameter(HOURS, name=f"net_load_{n}")
        self.lower = cp.Parameter(qp.size, name=f"lower_{n}")
        self.upper = cp.Parameter(qp.size, name=f"upper_{n}")
        self.rhs = cp.Parameter(qp.d.size, name=f"rhs_{n}")  # day-dependent for the meter rows
        self.shift = qp.G @ self.x  # exchange minus net load: prices multiply this (DPP: no parameter × parameter)
        self.exchange = self.shift + self.h
        self.own_cost = 0.5 * cp.sum(cp.multiply(qp.Q, cp.square(self.x))) + qp.c @ self.x
        self.constraints = [qp.E @ self.x == self.rhs, self.x >= self.lower, self.x <= self.upper]
        self.set_day(day)

    def set_day(self, day: Day) -> None:
        qp = follower_qp(self.case, day, self.n, self.bid_limits)
        self.h.value, self.lower.value, self.upper.value, self.rhs.value = qp.h, qp.lower, qp.upper, qp.d

    def own_cost_value(self) -> float:
        return float(self.own_cost.value)


def own_costs(case: Case, response) -> np.ndarray:
    """(N,) ¥: each prosumer's cost without the energy payment, from a `BestResponse`-like object."""
    pros, bat = case.prosumers, case.batteries
    cost = pros.kappa * (response.transfer**2).sum(-1)
    cost += (pros.utility_quadratic * (response.elastic**2).sum(-1) - pros.utility_linear * response.elastic.sum(-1))
    for m, owner in enumerate(bat.owner):
        ch, dis = response.charge[owner], response.discharge[owner]
        cost[owner] += (bat.degradation_cost[m] * (ch + dis).sum()
                        + bat.regularisation[m] * (ch**2 + dis**2).sum())
    return cost
