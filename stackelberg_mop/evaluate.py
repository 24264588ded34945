"""The one scorer: prices → prosumers' best response → DNO dispatch → AC check → `Outcome`.

Every producer of prices (an RL policy, the bi-level optimum, the fixed point, ADMM, a tariff) is
scored here, so the objective exists once. It lives at the package's top level because it composes
``market`` (the followers) and ``powerflow`` (the network).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate
from .cases import HOURS, Case
from .data import Day
from .data.days import check_day
from .market import BestResponse, best_response, check_prices, price_bounds
from .powerflow import DispatchResult, check_market_options, dispatch_model
from .powerflow.ac import pandapower_power_flow, sweep_power_flow

#: voltages within this of a limit (p.u.) do not count as violations (solver round-off)
VIOLATION_TOL = 1e-6
#: set-points may exceed the MOP's DC balance and ratings by this much (MW, MVA)
MOP_TOL = 1e-6
AC_MODES = ("sweep", "pandapower")


@dataclass(frozen=True, eq=False)
class Outcome:
    """The score of one price vector on one day. Money in ¥ per day, power in MW/Mvar, voltage in p.u.

    dno_objective: F = ω_1·dno_cost + ω_2·voltage_deviation_cost (the leader's objective, lower is better).
    dno_cost = grid_cost + dg_cost − revenue + line_loss_cost + mop_loss_cost (C_op of MODEL.md, with the
    generation cost of the case's DGs, `cases.Generators`; dg_cost = 0 for a case without any).
    voltage_deviation_cost: c_V Σ_t Σ_i |v_i,t − 1| with v = |V|² (before ω_2).
    prosumer_costs: (N,) each follower's minimised cost; total_cost = dno_cost + Σ prosumer_costs
    (the revenue cancels: what the society pays), welfare = −total_cost.
    exchange_power: (N, 24); grid_power: (24,); mop_p, mop_q: (K, 24) injections at the terminals;
    dg_p, dg_q: (G, 24) the DGs' output.
    line_loss: (24,) MW; mop_loss: (K, 24) MW of converter losses.
    voltages_ac: (B, 24) from the AC power flow; voltages_model: (B, 24) the dispatch model's √v.
    relaxation_gap: (24,) max ℓv − P² − Q² (p.u.²; NaN when no relaxation was solved).
    ac_mismatch: (24,) max_i |V_AC − √v| (NaN when the network was not dispatched by a model).
    violation_rate: share of bus-hours (substation excluded) outside [v_min, v_max] in the AC check.
    price_violation: how far the prices break the day's price rules (`market.price_bounds`), ¥/MWh (0 when kept).
    hourly_objective: (24,) ¥, each hour's share of dno_objective (hours are separable given the
    exchange power; they sum to dno_objective).
    status: "optimal" ("optimal_inaccurate" when the dispatch solver reached only its reduced accuracy), or what failed (``"follower_failed: <why>"``, "infeasible", "solver_error: …",
    "ac_not_converged"); on failure the costs are NaN.
    """

    status: str
    prices: np.ndarray
    dno_objective: float
    dno_cost: float
    grid_cost: float
    revenue: float
    line_loss_cost: float
    mop_loss_cost: float
    voltage_deviation_cost: float
    prosumer_costs: np.ndarray
    exchange_power: np.ndarray
    grid_power: np.ndarray
    mop_p: np.ndarray
    mop_q: np.ndarray
    line_loss: np.ndarray
    mop_loss: np.ndarray
    voltages_ac: np.ndarray
    voltages_model: np.ndarray
    relaxation_gap: np.ndarray
    ac_mismatch: np.ndarray
    violation_rate: float
    price_violation: float
    response: BestResponse
    dispatch: DispatchResult | None = None
    hourly_objective: np.ndarray | None = None
    dg_cost: float = 0.0
    dg_p: np.ndarray | None = None
    dg_q: np.ndarray | None = None

    @property
    def total_cost(self) -> float:
        return self.dno_cost + float(self.prosumer_costs.sum())

    @property
    def welfare(self) -> float:
        return -self.total_cost

    @property
    def loss_cost(self) -> float:
        return self.line_loss_cost + self.mop_loss_cost

    def summary(self) -> dict[str, float | str]:
        """The scalar results, e.g. for a table row or an environment's ``info``."""
        return {"status": self.status, "dno_objective": self.dno_objective, "dno_cost": self.dno_cost,
                "grid_cost": self.grid_cost, "dg_cost": self.dg_cost, "revenue": self.revenue, "line_loss_cost": self.line_loss_cost,
                "mop_loss_cost": self.mop_loss_cost, "voltage_deviation_cost": self.voltage_deviation_cost,
                "prosumer_cost": float(self.prosumer_costs.sum()), "welfare": self.welfare,
                "violation_rate": self.violation_rate, "max_relaxation_gap": float(np.nanmax(self.relaxation_gap))
                if np.isfinite(self.relaxation_gap).any() else float("nan"),
                "max_ac_mismatch": float(np.nanmax(self.ac_mismatch)) if np.isfinite(self.ac_mismatch).any()
                else float("nan"), "price_violation": self.price_violation}


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


def _response(case: Case, day: Day, lam: np.ndarray, response):
    """The followers' answer to `lam` (N, 24): `response` checked (a BestResponse or P2PResult for the
    same prices), or solved when None."""
    if response is None:
        return best_response(case, day, lam)
    if not hasattr(response, "exchange_power") or not hasattr(response, "prices"):
        raise ValueError(f"response: expected a BestResponse (or a P2PResult), got {type(response).__name__}")
    if not np.array_equal(response.prices, lam):
        raise ValueError("response: was computed for other prices")
    if isinstance(response, BestResponse):  # its power balance must hold with this day's loads and sources
        balance = (day.fixed_load + response.transfer + response.charge - response.discharge - day.pv - day.wind
                   + response.elastic + response.curtailed)
        if np.shape(balance) != np.shape(response.exchange_power) or \
                np.abs(response.exchange_power - balance).max() > 1e-6:
            raise ValueError("response: was computed for another day (its exchange power does not balance this "
                             "day's loads and PV)")
    return response


def _follower_failure(response) -> str:
    why = getattr(response, "failure", "") or getattr(response, "status", "")
    return f"follower_failed: {why}" if why else "follower_failed"


def _setpoint_loss(case: Case, mop_p, mop_q) -> np.ndarray:
    """MW of converter losses A_k |S_k| of given MOP set-points."""
    return case.mop.loss_coefficient[:, None] * np.hypot(mop_p, mop_q)


def _outside_limits(case: Case, vm: np.ndarray) -> np.ndarray:
    """Which bus(-hour)s of AC voltages vm (B, ...) p.u. lie outside [v_min, v_max] (beyond
    VIOLATION_TOL), the substation left out."""
    others = np.arange(case.buses.size) != case.bus_position(case.slack_bus)
    return (vm[others] < case.v_min - VIOLATION_TOL) | (vm[others] > case.v_max + VIOLATION_TOL)


def _failed(status, lam, response, case, day, dispatch=None) -> Outcome:
    nan = float("nan")
    n_bus, k = case.buses.size, len(case.mop)
    return Outcome(status=status, prices=lam, dno_objective=nan, dno_cost=nan, grid_cost=nan, revenue=nan,
                   line_loss_cost=nan, mop_loss_cost=nan, voltage_deviation_cost=nan,
                   prosumer_costs=response.cost, exchange_power=response.exchange_power,
                   grid_power=np.full(HOURS, nan), mop_p=np.full((k, HOURS), nan), mop_q=np.full((k, HOURS), nan),
                   line_loss=np.full(HOURS, nan), mop_loss=np.full((k, HOURS), nan),
                   voltages_ac=np.full((n_bus, HOURS), nan), voltages_model=np.full((n_bus, HOURS), nan),
                   relaxation_gap=np.full(HOURS, nan), ac_mismatch=np.full(HOURS, nan), violation_rate=nan,
                   price_violation=price_violation(case, day, lam), response=response, dispatch=dispatch,
                   hourly_objective=np.full(HOURS, nan))


def evaluate(case: Case, day: Day, prices, mop="opf", voltage_limits: str = "hard", formulation: str = "socp",
             ac: str = "sweep", response: BestResponse | None = None, dispatch: DispatchResult | None = None,
             ) -> Outcome:
    """Score clearing prices on a day: the one scorer of the package.

    prices: (24,) ¥/MWh for all prosumers, or (N, 24) one row per prosumer.
    mop: "opf" (dispatched optimally by the DNO's model), "off" (idle), or set-points (2, K, 24) =
    [P; Q] in MW/Mvar injected at each terminal (then no optimiser runs: the AC power flow gives the
    network state and the costs). voltage_limits: "hard", "soft" or "none" (see `DispatchModel`).
    formulation: "socp" or "lindistflow". ac: "sweep" (vectorised backward/forward sweep, agrees with
    pandapower to ~1e-10 p.u.) or "pandapower" (Newton-Raphson, 24 runs, slower).
    response: a precomputed best response to the same prices (skips re-solving the followers).
    dispatch: a precomputed dispatch of that response's exchange power with the same mop, voltage
    limits and formulation (skips the dispatch solve; e.g. the hourly game's one-hour solves joined
    by `powerflow.join_windows`); the caller vouches that it belongs to this response.
    It may also be a `market.p2p.P2PResult` for the same prices: the peer-to-peer sharing market's
    exchange with the DNO and costs are then scored (``p2p=True`` in the environments).
    Bad input raises ValueError; solver failures come back as `Outcome.status`.
    """
    _validate.choice("ac", ac, AC_MODES)
    fixed = not isinstance(mop, str)
    check_market_options(case, day, None if fixed else mop, voltage_limits, formulation)
    lam = check_prices(case, prices, batched=False)[0]  # (N, 24)
    if fixed:
        mop_p, mop_q = check_mop_setpoints(case, mop)
    response = _response(case, day, lam, response)
    if not response.ok:
        return _failed(_follower_failure(response), lam, response, case, day)
    obj, exchange = case.objective, response.exchange_power
    revenue = float((lam * exchange).sum())

    result = None
    if fixed:
        state = sweep_power_flow(case, day, exchange, mop_p, mop_q)
        if not state.converged.all():
            return _failed("ac_not_converged", lam, response, case, day)
        v, line_loss, grid_power = state.vm**2, state.line_loss, state.grid_power
        mop_loss = _setpoint_loss(case, mop_p, mop_q)
        vm_ac, vm_model = state.vm, np.full_like(state.vm, np.nan)
        gap = mismatch = np.full(HOURS, np.nan)
        dg_p = dg_q = np.zeros((0, HOURS))
    else:
        result = dispatch
        if result is None:
            result = dispatch_model(case, formulation, mop, voltage_limits).solve(day, exchange)
        elif not isinstance(result, DispatchResult) or result.v.shape != (case.buses.size, HOURS):
            raise ValueError(f"dispatch: expected a whole day's DispatchResult, got {type(result).__name__}")
        if not result.status.startswith("optimal"):
            return _failed(result.status, lam, response, case, day, result)
        mop_p, mop_q, line_loss, mop_loss = result.mop_p, result.mop_q, result.line_loss, result.mop_loss
        v, vm_model, grid_power, gap = result.v, result.voltage, result.grid_power, result.relaxation_gap
        dg_p, dg_q = result.dg_p, result.dg_q
        if ac == "sweep":
            state = sweep_power_flow(case, day, exchange, mop_p, mop_q, dg_p, dg_q)
            vm_ac, converged = state.vm, state.converged
        else:
            vm_ac, converged = pandapower_power_flow(case, day, exchange, mop_p, mop_q, dg_p=dg_p, dg_q=dg_q)
        if not converged.all():
            return _failed("ac_not_converged", lam, response, case, day, result)
        mismatch = np.abs(vm_ac - vm_model).max(axis=0)

    hourly = hourly_network_costs(case, day, grid_power, line_loss, mop_loss, v, dg_p)
    grid_cost, line_loss_cost, mop_loss_cost, deviation_cost, dg_cost = (float(c) for c in hourly.sum(axis=1))
    hourly_objective = weigh_hours(case, hourly, (lam * exchange).sum(axis=0))
    dno_cost = float(economic_costs(hourly).sum()) - revenue
    outside = _outside_limits(case, vm_ac)
    return Outcome(
        status="optimal" if result is None else result.status, prices=lam, dno_objective=obj.weigh(dno_cost, deviation_cost),
        dno_cost=dno_cost, grid_cost=grid_cost, revenue=revenue, line_loss_cost=line_loss_cost,
        mop_loss_cost=mop_loss_cost, voltage_deviation_cost=deviation_cost, prosumer_costs=response.cost,
        exchange_power=exchange, grid_power=grid_power, mop_p=mop_p, mop_q=mop_q, line_loss=line_loss,
        mop_loss=mop_loss, voltages_ac=vm_ac,
        voltages_model=vm_model, relaxation_gap=gap, ac_mismatch=mismatch, violation_rate=float(outside.mean()),
        price_violation=price_violation(case, day, lam), response=response, dispatch=result,
        hourly_objective=hourly_objective, dg_cost=dg_cost, dg_p=dg_p, dg_q=dg_q)


@dataclass(frozen=True, eq=False)
class HourOutcome:
    """One hour of a day's score (`evaluate_hour`): what the hourly game needs after each step.

    objective: ¥, the hour's share of the DNO objective (= `Outcome.hourly_objective[hour]` of the
    whole day's `evaluate` to solver tolerance: hours are separable given the exchange power).
    violations: buses (substation excluded) outside [v_min, v_max] in the AC check of that hour.
    voltages_ac: (B,) p.u.; exchange_power: (N,) MW; dispatch: the one-hour `DispatchResult` (None for
    set-points). status as `Outcome.status`; on failure objective is NaN.
    """

    hour: int
    status: str
    objective: float
    violations: int
    voltages_ac: np.ndarray
    exchange_power: np.ndarray
    dispatch: DispatchResult | None = None


def evaluate_hour(case: Case, day: Day, prices, hour: int, response: BestResponse | None = None, mop="opf",
                  voltage_limits: str = "hard", formulation: str = "socp") -> HourOutcome:
    """Score hour `hour` of `prices` on `day` alone: the followers' response (given, or solved), a
    one-hour dispatch (`DispatchModel(hours=1)`) or the hour's MOP set-points, the AC sweep, and that
    hour's share of the DNO objective. The same arithmetic as `evaluate`, 1/24 of its solver work."""
    hour = _validate.integer("hour", hour, lo=0, hi=HOURS - 1)
    fixed = not isinstance(mop, str)
    check_market_options(case, day, None if fixed else mop, voltage_limits, formulation)
    lam = check_prices(case, prices, batched=False)[0]
    response = _response(case, day, lam, response)
    exchange, n_bus, t = response.exchange_power, case.buses.size, slice(hour, hour + 1)
    failed = lambda status, result=None: HourOutcome(hour, status, float("nan"), 0, np.full(n_bus, np.nan),
                                                     exchange[:, hour].copy(), result)
    if not response.ok:
        return failed(_follower_failure(response))
    result = None
    k = len(case.mop)
    mop_p, mop_q = np.zeros((k, HOURS)), np.zeros((k, HOURS))
    dg_p, dg_q = (np.zeros((len(case.generators), HOURS)) for _ in range(2))
    if fixed:
        mop_p, mop_q = check_mop_setpoints(case, mop)
    else:
        result = dispatch_model(case, formulation, mop, voltage_limits, hours=1).solve(day, exchange, start=hour)
        if not result.status.startswith("optimal"):
            return failed(result.status, result)
        mop_p[:, t], mop_q[:, t] = result.mop_p, result.mop_q
        dg_p[:, t], dg_q[:, t] = result.dg_p, result.dg_q
    state = sweep_power_flow(case, day, exchange, mop_p, mop_q, dg_p, dg_q)
    if not state.converged[hour]:
        return failed("ac_not_converged", result)
    if result is None:
        v, line_loss, grid_power = state.vm[:, t] ** 2, state.line_loss[t], state.grid_power[t]
        mop_loss = _setpoint_loss(case, mop_p[:, t], mop_q[:, t])
    else:
        v, line_loss, grid_power, mop_loss = result.v, result.line_loss, result.grid_power, result.mop_loss
    hourly = hourly_network_costs(case, day, grid_power, line_loss, mop_loss, v, dg_p[:, t], hours=t)
    objective = float(weigh_hours(case, hourly, (lam[:, t] * exchange[:, t]).sum(axis=0))[0])
    vm = state.vm[:, hour]
    violations = int(_outside_limits(case, vm).sum())
    return HourOutcome(hour, "optimal" if result is None else result.status, objective, violations, vm,
                       exchange[:, hour].copy(), result)


@dataclass(frozen=True, eq=False)
class ExpectedOutcome:
    """`evaluate` over weighted HV price scenarios: one `Outcome` per scenario and their expectations.

    The prosumers face the same clearing prices in every scenario (so they respond once); the DNO
    re-dispatches the network for each scenario's HV prices. Expected values are weighted sums.
    """

    outcomes: list
    weight: np.ndarray
    #: ¥/MWh, the prices' breach of the rules of the day they are posted on (its own HV tariff); each
    #: scenario's `Outcome.price_violation` measures against that scenario's sampled tariff instead
    price_violation: float = 0.0

    def expected(self, name: str) -> float:
        """Probability-weighted mean of an `Outcome.summary()` entry, e.g. "dno_objective"."""
        return float(sum(w * o.summary()[name] for w, o in zip(self.weight, self.outcomes)))

    @property
    def status(self) -> str:
        bad = [o.status for o in self.outcomes if o.status != "optimal"]
        return "optimal" if not bad else bad[0]

    @property
    def dno_objective(self) -> float:
        return self.expected("dno_objective")

    @property
    def prosumer_cost(self) -> float:
        return self.expected("prosumer_cost")

    @property
    def welfare(self) -> float:
        return self.expected("welfare")

    @property
    def violation_rate(self) -> float:
        return self.expected("violation_rate")


def evaluate_expected(case: Case, day: Day, prices, scenarios, **kwargs) -> ExpectedOutcome:
    """Score prices on `day` under HV price scenarios (`data.hv_prices.PriceScenarios`): expected cost.

    Calls `evaluate` once per scenario with the day's buy/sell prices replaced; keyword arguments go
    to `evaluate`. The best response is computed once (it does not depend on the HV prices).
    """
    check_day(case, day)
    lam = check_prices(case, prices, batched=False)[0]
    if not hasattr(scenarios, "days") or not hasattr(scenarios, "weight"):
        raise ValueError(f"scenarios: expected data.hv_prices.PriceScenarios, got {type(scenarios).__name__}")
    response = kwargs.pop("response", None) or best_response(case, day, lam)
    outcomes = [evaluate(case, d, lam, response=response, **kwargs) for d in scenarios.days(day)]
    return ExpectedOutcome(outcomes=outcomes, weight=np.asarray(scenarios.weight, float),
                           price_violation=price_violation(case, day, lam))
