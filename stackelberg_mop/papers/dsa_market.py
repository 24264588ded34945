"""Wang et al.'s (2024) market of distribution substation areas (DSAs): individual and cooperative operation.

DSA n (a `Prosumers` row with its `Batteries` row and the case's `DSAMarket` data) at bus b(n), hour t,
pays the network's time-of-use tariff for what it buys and is paid the sell price for what it sells
(Wang et al. (2024) Eq. 1, docs/plans/seed001-dsa.md §2):

    C_n = Σ_t [ π^b_t P^buy_n,t − π^s_t P^sell_n,t ] + own_n + c^DR_n Σ_t |P^tr_n,t| + (γ/2) Σ_m,t p_nm,t²
    N_n,t = L_n,t + P^tr + P^ch − P^dis − (R_n,t − c_n,t)        (net withdrawal at its bus)
    P^buy_n,t − P^sell_n,t = N_n,t − Σ_m p_nm,t,   0 <= P^buy <= import_max,  0 <= P^sell <= export_max

with own_n the prosumer's own cost (κ (P^tr)², battery degradation δ and ε; `ProsumerBlock`), c the
curtailment (0 <= c <= R where curtailable) and p_nm the trade n buys from m (p_nm = −p_mn, |p_nm| <= cap,
on the `Sharing` platform's pairs, fee γ/2 per side). **Individual** operation has p ≡ 0;
**cooperative** operation lets the DSAs trade (Wang et al. (2024) Eq. 3). Both minimise Σ_n C_n subject to the
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

from .. import _validate
from ..cache import cached
from ..cases import HOURS, Case, check_case
from ..data import Day
from ..market._solve import solve_reported
from ..market.prosumer_model import ProsumerBlock, own_costs
from ..powerflow import check_market_options

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


class _Tariff:
    """The day's data every DSA's problem reads, as Parameters (DPP): tariff, renewables, the DR switch."""

    def __init__(self, n: int):
        self.buy_price = cp.Parameter(HOURS, name="dsa_buy_price")
        self.sell_price = cp.Parameter(HOURS, name="dsa_sell_price")
        self.renewables = cp.Parameter((n, HOURS), nonneg=True, name="dsa_renewables")
        self.dr = cp.Parameter(nonneg=True, name="dsa_dr")  # 1: shift allowed, 0: fixed at 0

    def load(self, day: Day, dr: bool, buy_price) -> None:
        self.buy_price.value, self.sell_price.value = np.asarray(buy_price, float), day.sell_price
        self.renewables.value = day.renewables
        self.dr.value = 1.0 if dr else 0.0


class DSAPart:
    """DSA n's own variables, constraints (Wang et al. (2024) Eq. 1) and cost C_n (¥) given its trades `bought`
    (a (24,) expression: Σ_m p_nm, MW), written once for the centralised model and for Algorithm 1."""

    def __init__(self, case: Case, day: Day, n: int, tariff: _Tariff, trades: dict):
        dsa, share = case.dsa, case.sharing
        self.block = b = ProsumerBlock(case, n, day)
        self.buy = cp.Variable(HOURS, nonneg=True, name=f"dsa_buy_{n}")
        self.sell = cp.Variable(HOURS, nonneg=True, name=f"dsa_sell_{n}")
        self.curtailed = cp.Variable(HOURS, nonneg=True, name=f"dsa_curtailed_{n}")
        comfort = cp.Variable(HOURS, nonneg=True, name=f"dsa_comfort_{n}")
        self.shift = b.x[:HOURS]  # the standard form's P^tr (`market.standard_form.follower_qp`)
        self.net = b.exchange + self.curtailed
        self.flex = b.shift + self.curtailed  # net − the day's net load h: parameter-free (DPP)
        bought = sum(trades.values(), start=cp.Constant(np.zeros(HOURS)))
        self.constraints = b.constraints + [
            comfort >= self.shift, comfort >= -self.shift, cp.abs(self.shift) <= 1e3 * tariff.dr,
            self.buy - self.sell == self.net - bought, self.buy <= dsa.import_max[n], self.sell <= dsa.export_max[n],
            self.curtailed <= (tariff.renewables[n] if dsa.curtailable[n] else 0)]
        self.constraints += [cp.abs(p) <= share.cap[n, m] for m, p in trades.items()]
        fee = 0.5 * share.trade_cost * sum((cp.sum_squares(p) for p in trades.values()), start=cp.Constant(0.0))
        self.cost = (tariff.buy_price @ self.buy - tariff.sell_price @ self.sell + b.own_cost
                     + dsa.comfort_cost[n] * cp.sum(comfort) + fee)

    def schedule(self) -> dict:
        """The solved schedule: buy, sell, net, shift, charge, discharge, curtailed (24,) each."""
        x = self.block.x.value
        part = lambda k: x[k * HOURS:(k + 1) * HOURS] if x.size > k * HOURS else np.zeros(HOURS)
        return {"buy": self.buy.value, "sell": self.sell.value, "net": self.net.value, "shift": part(0),
                "charge": part(1), "discharge": part(2), "curtailed": self.curtailed.value}


def trading_pairs(case: Case, mode: str) -> list[tuple[int, int]]:
    """The pairs (n < m) that may trade: the `Sharing` platform's, none in individual mode."""
    n = len(case.prosumers)
    return [] if mode == "individual" else [(i, j) for i in range(n) for j in range(i + 1, n) if case.sharing.cap[i, j] > 0]


def operation(mode: str, dr: bool, status: str, parts: list, trades, trade_price, network, case: Case,
              elapsed: float) -> DSAOperation:
    """A `DSAOperation` from solved `DSAPart`s and the network model (NaN arrays unless optimal)."""
    n, fd = len(parts), network.feeder
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):  # cvxpy's statuses are these strings
        nan = lambda *shape: np.full(shape, np.nan)
        return DSAOperation(mode, dr, str(status), nan(n), *(nan(n, HOURS) for _ in range(3)),
                            nan(n, n, HOURS), nan(n, n, HOURS), *(nan(n, HOURS) for _ in range(4)),
                            nan(fd.n_bus, HOURS), nan(fd.n_branch, HOURS), elapsed)
    sched = [p.schedule() for p in parts]
    stack = lambda k: np.array([s[k] for s in sched])
    return DSAOperation(
        mode=mode, dr=dr, status=str(status),
        cost=np.array([float(p.cost.value) for p in parts]), buy=stack("buy"), sell=stack("sell"), net=stack("net"),
        trades=trades, trade_price=trade_price, shift=stack("shift"), charge=stack("charge"),
        discharge=stack("discharge"), curtailed=stack("curtailed"), v=network.vars["v"].value,
        branch_p=network.vars["p"].value * case.s_base, solve_time=elapsed)


class _Model:
    """The DSAs and the network as one cvxpy problem (DPP: the day's data and the tariff are Parameters),
    built once per case, mode, formulation and voltage mode."""

    def __init__(self, case: Case, day: Day, mode: str, formulation: str, voltage_limits: str):
        from ..powerflow import DispatchModel

        n = len(case.prosumers)
        self.case, self.mode = case, mode
        self.network = DispatchModel(case, formulation, "off", voltage_limits, exchange="variable")
        self.tariff = _Tariff(n)
        self.trade = {}
        for i, j in trading_pairs(case, mode):
            self.trade[i, j] = cp.Variable(HOURS, name=f"dsa_p_{i}{j}")
            self.trade[j, i] = cp.Variable(HOURS, name=f"dsa_p_{j}{i}")
        self.balance = {(i, j): self.trade[i, j] + self.trade[j, i] == 0 for i, j in trading_pairs(case, mode)}
        self.parts = [DSAPart(case, day, i, self.tariff, {m: p for (k, m), p in self.trade.items() if k == i})
                      for i in range(n)]
        cons = list(self.network.constraints) + list(self.balance.values())
        cons += [c for part in self.parts for c in part.constraints]
        cons += [self.network.exchange == cp.vstack([part.net for part in self.parts])]
        self.problem = cp.Problem(cp.Minimize(sum(part.cost for part in self.parts)), cons)
        assert self.problem.is_dcp(dpp=True)

    def solve(self, day: Day, dr: bool, buy_price) -> DSAOperation:
        n = len(self.parts)
        self.network.set_day(day)
        for part in self.parts:
            part.block.set_day(day)
        self.tariff.load(day, dr, buy_price)
        status, elapsed = solve_reported(self.problem)
        trades, price = np.zeros((n, n, HOURS)), np.zeros((n, n, HOURS))
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            for (i, j), var in self.trade.items():
                trades[i, j] = var.value
            for (i, j), con in self.balance.items():
                price[i, j] = price[j, i] = con.dual_value
        return operation(self.mode, dr, status, self.parts, trades, price, self.network, self.case, elapsed)


def score(case: Case, day: Day, op: DSAOperation, buy_price=None) -> dict:
    """Re-score an operation from its reported quantities alone, without the model that produced it:
    {"cost": (N,) ¥, each DSA's C_n recomputed (tariff payments, the prosumers' own costs by
    `prosumer_model.own_costs`, the comfort cost, the trade fee); "balance": the largest breach of
    buy − sell = net − Σ_m p_nm, MW; "vm": (B, 24) the AC voltages of the net withdrawals (backward/
    forward sweep, `powerflow.ac`); "ac_converged"}."""
    from types import SimpleNamespace

    from ..powerflow.ac import sweep_power_flow

    price = day.buy_price if buy_price is None else np.asarray(buy_price, float)
    response = SimpleNamespace(transfer=op.shift, charge=op.charge, discharge=op.discharge,
                               elastic=np.zeros_like(op.shift))
    cost = ((price * op.buy - day.sell_price * op.sell).sum(-1) + own_costs(case, response)
            + case.dsa.comfort_cost * np.abs(op.shift).sum(-1)
            + 0.5 * case.sharing.trade_cost * (op.trades**2).sum((1, 2)))
    state = sweep_power_flow(case, day, op.net)
    return {"cost": cost, "balance": float(np.abs(op.buy - op.sell - op.net + op.trades.sum(1)).max()),
            "vm": state.vm, "ac_converged": bool(state.converged.all())}


def checked_arguments(case: Case, day: Day, mode: str, dr: bool, buy_price, voltage_limits: str,
                      formulation: str = "lindistflow") -> np.ndarray:
    """The DSA market's arguments checked where they enter (`operate`, `dsa_admm.algorithm1`); returns
    the buy price (24,) ¥/MWh (the day's tariff when `buy_price` is None)."""
    check_case(case)
    if case.dsa is None:
        raise ValueError(f"case {case.name!r} has no DSA market (section 'dsa'); e.g. load_case('substation-areas')")
    _validate.choice("mode", mode, MODES)
    _validate.flag("dr", dr)
    check_market_options(case, day, "off", voltage_limits, formulation)
    if formulation != "lindistflow":
        raise ValueError(f"formulation: the DSA market uses 'lindistflow' (Wang et al.'s (2024) network model), got {formulation!r}")
    price = day.buy_price if buy_price is None else _validate.array("buy_price", buy_price, "¥/MWh")
    if np.shape(price) != (HOURS,):
        raise ValueError(f"buy_price: expected 24 values in ¥/MWh, got shape {np.shape(price)}")
    return price


def operate(case: Case, day: Day, mode: str = "cooperative", dr: bool = True, buy_price=None,
            formulation: str = "lindistflow", voltage_limits: str = "hard") -> DSAOperation:
    """The DSAs' operation on `day` (module docstring). mode: "individual" or "cooperative"; dr: demand
    response allowed (else the shift is fixed at 0); buy_price: (24,) ¥/MWh, a price scenario (default
    the day's tariff); formulation: the network model, "lindistflow" (the paper's; the SOC relaxation
    is not offered: nobody here pays the substation's purchase, so nothing keeps the relaxation tight,
    and Clarabel ends it inaccurate)."""
    price = checked_arguments(case, day, mode, dr, buy_price, voltage_limits, formulation)
    models = cached(case, "dsa_models", dict)
    key = (mode, formulation, voltage_limits)
    if key not in models:
        models[key] = _Model(case, day, mode, formulation, voltage_limits)
    return models[key].solve(day, dr, price)
