"""seeds/001's market of distribution substation areas (DSAs): individual and cooperative operation.

DSA n (a `Prosumers` row with its `Batteries` row and the case's `DSAMarket` data) at bus b(n), hour t,
pays the network's time-of-use tariff for what it buys and is paid the sell price for what it sells
(seeds/001 Eq. 1, docs/plans/seed001-dsa.md §2):

    C_n = Σ_t [ π^b_t P^buy_n,t − π^s_t P^sell_n,t ] + own_n + c^DR_n Σ_t |P^tr_n,t| + (γ/2) Σ_m,t p_nm,t²
    N_n,t = L_n,t + P^tr + P^ch − P^dis − (R_n,t − c_n,t)        (net withdrawal at its bus)
    P^buy_n,t − P^sell_n,t = N_n,t − Σ_m p_nm,t,   0 <= P^buy <= import_max,  0 <= P^sell <= export_max

with own_n the prosumer's own cost (κ (P^tr)², battery degradation δ and ε; `ProsumerBlock`), c the
curtailment (0 <= c <= R where curtailable) and p_nm the trade n buys from m (p_nm = −p_mn, |p_nm| <= cap,
on the `Sharing` platform's pairs, fee γ/2 per side). **Individual** operation has p ≡ 0;
**cooperative** operation lets the DSAs trade (seeds/001 Eq. 3). Both minimise Σ_n C_n subject to the
network (the one network definition, `powerflow.DispatchModel(exchange="variable")` with LinDistFlow as
the paper writes it, its constraints only: the DSAs' meters pay, not the substation):
power flows, voltage limits and line ratings (`cases.variants.line_limited_case`). Without a binding
network row individual operation separates into the DSAs' own problems. The physical feasible set is
the same in both modes (power nets on the feeder traded or not), so individual operation is feasible for
the cooperative one and the savings S = Σ C^ind − Σ C^coop >= 0. ``dr=False`` fixes the shift at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from .. import checks
from ..cache import cached
from ..cases import HOURS, Case
from ..data import Day
from ._solve import solve_reported
from .prosumer_model import ProsumerBlock

MODES = ("individual", "cooperative")


@dataclass(frozen=True, eq=False)
class DSAOperation:
    """One day's operation of the DSAs. MW, MWh, ¥ per day, p.u.

    cost: (N,) each DSA's C_n. buy, sell: (N, 24) with the network; net: (N, 24) N_n (withdrawal at its
    bus); trades: (N, N, 24) p_nm (> 0: n buys from m); trade_price: (N, N, 24) ¥/MWh, the dual of
    p_nm + p_mn = 0 (the pair's price; 0 where the pair does not trade or in individual mode);
    shift, charge, discharge, curtailed: (N, 24). v: (B, 24) squared voltage; branch_p: (nb, 24) MW.
    status: "optimal" or the solver's status (the numbers are NaN then).
    """

    mode: str
    dr: bool
    status: str
    cost: np.ndarray
    buy: np.ndarray
    sell: np.ndarray
    net: np.ndarray
    trades: np.ndarray
    trade_price: np.ndarray
    shift: np.ndarray
    charge: np.ndarray
    discharge: np.ndarray
    curtailed: np.ndarray
    v: np.ndarray
    branch_p: np.ndarray
    solve_time: float

    @property
    def total_cost(self) -> float:
        return float(self.cost.sum())


class _Model:
    """The DSAs and the network as one cvxpy problem (DPP: the day's data and the tariff are Parameters),
    built once per case, mode, formulation and voltage mode."""

    def __init__(self, case: Case, day: Day, mode: str, formulation: str, voltage_limits: str):
        from ..powerflow.distflow import DispatchModel

        n, dsa, share = len(case.prosumers), case.dsa, case.sharing
        self.case, self.mode = case, mode
        self.network = DispatchModel(case, formulation, "off", voltage_limits, exchange="variable")
        self.blocks = [ProsumerBlock(case, i, day) for i in range(n)]
        self.buy_price = cp.Parameter(HOURS, name="dsa_buy_price")
        self.sell_price = cp.Parameter(HOURS, name="dsa_sell_price")
        self.renewables = cp.Parameter((n, HOURS), nonneg=True, name="dsa_renewables")
        self.dr = cp.Parameter(nonneg=True, name="dsa_dr")  # 1: shift allowed, 0: fixed at 0
        self.buy = cp.Variable((n, HOURS), nonneg=True, name="dsa_buy")
        self.sell = cp.Variable((n, HOURS), nonneg=True, name="dsa_sell")
        self.curtailed = cp.Variable((n, HOURS), nonneg=True, name="dsa_curtailed")
        self.pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if share.cap[i, j] > 0]
        self.trade = {}
        cons = list(self.network.constraints)
        if mode == "cooperative":
            for i, j in self.pairs:
                self.trade[i, j] = cp.Variable(HOURS, name=f"dsa_p_{i}{j}")
                self.trade[j, i] = cp.Variable(HOURS, name=f"dsa_p_{j}{i}")
                cons += [cp.abs(self.trade[i, j]) <= share.cap[i, j]]
        self.balance = {(i, j): self.trade[i, j] + self.trade[j, i] == 0 for i, j in self.pairs if (i, j) in self.trade}
        cons += list(self.balance.values())
        self.costs, self.nets, self.shifts = [], [], []
        for i, b in enumerate(self.blocks):
            shift = b.x[:HOURS]  # the standard form's P^tr (`market.kkt.follower_qp`)
            comfort = cp.Variable(HOURS, nonneg=True, name=f"dsa_comfort_{i}")
            net = b.exchange + self.curtailed[i]
            bought = sum((self.trade[i, j] for j in range(n) if (i, j) in self.trade), start=cp.Constant(np.zeros(HOURS)))
            cons += b.constraints + [comfort >= shift, comfort >= -shift, cp.abs(shift) <= 1e3 * self.dr,
                                     self.buy[i] - self.sell[i] == net - bought, self.buy[i] <= dsa.import_max[i],
                                     self.sell[i] <= dsa.export_max[i],
                                     self.curtailed[i] <= (self.renewables[i] if dsa.curtailable[i] else 0)]
            fee = 0.5 * share.trade_cost * sum((cp.sum_squares(self.trade[i, j]) for j in range(n) if (i, j) in self.trade),
                                               start=cp.Constant(0.0))
            self.costs.append(self.buy_price @ self.buy[i] - self.sell_price @ self.sell[i] + b.own_cost
                              + dsa.comfort_cost[i] * cp.sum(comfort) + fee)
            self.nets.append(net)
            self.shifts.append(shift)
        cons += [self.network.exchange == cp.vstack(self.nets)]
        self.problem = cp.Problem(cp.Minimize(sum(self.costs)), cons)
        assert self.problem.is_dcp(dpp=True)

    def solve(self, day: Day, dr: bool, buy_price) -> DSAOperation:
        case, n = self.case, len(self.blocks)
        self.network.set_day(day)
        for b in self.blocks:
            b.set_day(day)
        self.buy_price.value, self.sell_price.value = np.asarray(buy_price, float), day.sell_price
        self.renewables.value = day.renewables
        self.dr.value = 1.0 if dr else 0.0
        status, elapsed = solve_reported(self.problem)
        nb, nbus = self.network.feeder.n_branch, self.network.feeder.n_bus
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            nan = lambda *shape: np.full(shape, np.nan)
            return DSAOperation(self.mode, dr, str(status), nan(n), *(nan(n, HOURS) for _ in range(3)),
                                nan(n, n, HOURS), nan(n, n, HOURS), *(nan(n, HOURS) for _ in range(4)),
                                nan(nbus, HOURS), nan(nb, HOURS), elapsed)
        trades, price = np.zeros((n, n, HOURS)), np.zeros((n, n, HOURS))
        for (i, j), var in self.trade.items():
            trades[i, j] = var.value
        for (i, j), con in self.balance.items():
            price[i, j] = price[j, i] = con.dual_value
        pick = lambda k: np.array([b.x.value[k * HOURS:(k + 1) * HOURS] if b.x.size > k * HOURS else np.zeros(HOURS)
                                   for b in self.blocks])
        return DSAOperation(
            mode=self.mode, dr=dr, status="optimal" if status == cp.OPTIMAL else "optimal_inaccurate",
            cost=np.array([float(c.value) for c in self.costs]), buy=self.buy.value, sell=self.sell.value,
            net=np.array([x.value for x in self.nets]), trades=trades, trade_price=price, shift=pick(0),
            charge=pick(1), discharge=pick(2), curtailed=self.curtailed.value, v=self.network.vars["v"].value,
            branch_p=self.network.vars["p"].value * case.s_base, solve_time=elapsed)


def operate(case: Case, day: Day, mode: str = "cooperative", dr: bool = True, buy_price=None,
            formulation: str = "lindistflow", voltage_limits: str = "hard") -> DSAOperation:
    """The DSAs' operation on `day` (module docstring). mode: "individual" or "cooperative"; dr: demand
    response allowed (else the shift is fixed at 0); buy_price: (24,) ¥/MWh, a price scenario (default
    the day's tariff); formulation: the network model, "lindistflow" (the paper's; the SOC relaxation
    is not offered: nobody here pays the substation's purchase, so nothing keeps the relaxation tight,
    and Clarabel ends it inaccurate)."""
    checks.case_object(case)
    if case.dsa is None:
        raise ValueError(f"case {case.name!r} has no DSA market (section 'dsa'); e.g. load_case('seed001-dsa')")
    checks.choice("mode", mode, MODES)
    checks.flag("dr", dr)
    checks.market_options(case, day, "off", voltage_limits, formulation)
    if formulation != "lindistflow":
        raise ValueError(f"formulation: the DSA market uses 'lindistflow' (seeds/001's network model), got {formulation!r}")
    price = day.buy_price if buy_price is None else checks.array("buy_price", buy_price, "¥/MWh")
    if np.shape(price) != (HOURS,):
        raise ValueError(f"buy_price: expected 24 values in ¥/MWh, got shape {np.shape(price)}")
    models = cached(case, "dsa_models", dict)
    key = (mode, formulation, voltage_limits)
    if key not in models:
        models[key] = _Model(case, day, mode, formulation, voltage_limits)
    return models[key].solve(day, dr, price)
