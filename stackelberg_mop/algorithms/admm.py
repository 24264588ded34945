"""Welfare-maximising market clearing by ADMM, and the Nash-bargaining split of its savings.

This is Lou et al.'s (2025) game (the DNO and its prosumers) cleared as a welfare baseline with Wang et al.'s (2024)
tools (ADMM, Nash bargaining); Wang et al.'s (2024) own system (distribution substation areas trading with each
other) is `papers.dsa_market`, `papers.dsa_admm` and `papers.substation_areas` on the case `substation-areas`.

The DNO and the prosumers jointly minimise the total cost (¥ per day)

    W = F(P^D)/ω_1 + Σ_n own_n(x_n)        s.t.  P_n(x_n) = P^D_n   (N × 24 coupling, dual y)

where F/ω_1 = grid cost + c_loss·(line + MOP losses) + (ω_2/ω_1)·c_V Σ|v − 1| is the DNO's objective
in ¥ of operating cost without the revenue transfer (it cancels in W), P^D_n the exchange the DNO
supplies at prosumer n's bus, and own_n = discomfort κ(P^tr)² + degradation δ(P^ch + P^dis) + ε terms.
ADMM (Boyd et al. 2011, §3.1 unscaled form) decomposes the coupling:

    prosumer n:  P_n^{k+1}  = argmin own_n + y_n·P_n + (ρ/2)‖P_n − P^D_n^k‖²        (its own problem only)
    DNO:         P^D^{k+1}  = argmin F/ω_1 − y·P^D + (ρ/2)‖P^{k+1} − P^D‖²          (SOCP network + MOP)
    prices:      y^{k+1}    = y^k + ρ (P^{k+1} − P^D^{k+1})

Each party sees only the prices y and the other side's exchange power; y (N, 24) ¥/MWh are the
clearing prices, at convergence the LMPs at the prosumers' buses. Residuals r = P − P^D and
s = ρ(P^D^{k+1} − P^D^k), the stopping rule of §3.3.1 and residual balancing (§3.4.1, μ = 10, τ = 2)
applied to the residuals divided by their tolerances (r is in MW and s in ¥/MWh, so Boyd's raw
comparison would depend on the units).
The DNO's problem is the dispatch model of `powerflow.dispatch` with the exchange as a variable
(the same DistFlow/SOCP/MOP constraints, built once with cvxpy Parameters and re-solved); all costs
reported are priced by `evaluate.network_costs`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from .. import _validate
from ..cache import cached
from ..cases import HOURS, Case
from ..data import Day
from ..market import best_response
from ..market._solve import solve_reported
from ..market.admm_rule import ResidualLog
from ..market.prosumer_model import ProsumerBlock
from ..powerflow import DispatchModel, check_market_options, dispatch_model
from ..scoring import Outcome, evaluate, network_costs


# --- the DNO with the exchange as a variable ------------------------------------------------------
class DNOModel:
    """The DNO's network problem with the prosumers' exchange P^D (N, 24) MW as a variable.

    It is `powerflow.DispatchModel(exchange="variable")` (the same DistFlow/SOCP/MOP constraints,
    built once); `network_cost` is its objective over ω_1, F/ω_1 in ¥, and `admm` adds
    (ρ/2)‖P^D‖² − lin·P^D (Parameters rho, lin).
    """

    def __init__(self, case: Case, mop: str = "opf", voltage_limits: str = "hard", formulation: str = "socp"):
        if case.objective.omega_economic <= 0:
            raise ValueError("case.objective.omega_economic: must be > 0 for a welfare objective in ¥")
        self.case = case
        self.model = DispatchModel(case, formulation, mop, voltage_limits, exchange="variable")
        self.feeder = self.model.feeder
        self.exchange = self.model.exchange
        self.network_cost = self.model.objective / case.objective.omega_economic
        self.constraints = self.model.constraints
        self.vars = self.model.vars
        n = len(case.prosumers)
        self.rho = cp.Parameter(nonneg=True, name="rho")
        self.lin = cp.Parameter((n, HOURS), name="lin")
        self.admm = cp.Problem(cp.Minimize(self.network_cost + 0.5 * self.rho * cp.sum_squares(self.exchange)
                                           - cp.sum(cp.multiply(self.lin, self.exchange))), self.constraints)
        assert self.admm.is_dcp(dpp=True)

    def set_day(self, day: Day) -> None:
        self.model.set_day(day)

    def state(self, day: Day) -> dict:
        """The network state of the last solve, priced by `evaluate.network_costs` (¥)."""
        var, s, fd = self.vars, self.case.s_base, self.feeder
        cur = np.zeros((fd.n_branch, HOURS)) if var["current"] is None else var["current"].value
        k = len(self.case.mop)
        ploss = var["ploss"].value * s if "ploss" in var else np.zeros((k, HOURS))
        gen = self.case.generators
        dg_p = var["dg_p"].value * gen.p_max[:, None] if len(gen) else None
        costs = network_costs(self.case, day, var["pg"].value * s, (fd.r @ cur) * s, ploss, var["v"].value, dg_p)
        obj, economic = self.case.objective, costs["economic"]
        return {"grid_power": var["pg"].value * s, "v": var["v"].value, "grid_cost": costs["grid"],
                "line_loss_cost": costs["line_loss"], "mop_loss_cost": costs["mop_loss"], "dg_cost": costs["dg"],
                "voltage_deviation_cost": costs["voltage_deviation"],
                "network_cost": obj.weigh(economic, costs["voltage_deviation"]) / obj.omega_economic}


def dno_model(case: Case, mop: str = "opf", voltage_limits: str = "hard", formulation: str = "socp") -> DNOModel:
    cache = cached(case, "admm_dno_models", dict)
    key = (mop, voltage_limits, formulation)
    if key not in cache:
        cache[key] = DNOModel(case, mop, voltage_limits, formulation)
    return cache[key]


class _ProsumerADMM:
    """Prosumer n's ADMM step: min own + lin·shift + (ρ/2)‖shift‖² (lin = y + ρ(h − P^D), DPP form)."""

    def __init__(self, case: Case, n: int, day: Day):
        self.block = ProsumerBlock(case, n, day)
        self.rho = cp.Parameter(nonneg=True)
        self.lin = cp.Parameter(HOURS)
        self.problem = cp.Problem(cp.Minimize(self.block.own_cost + self.lin @ self.block.shift
                                              + 0.5 * self.rho * cp.sum_squares(self.block.shift)),
                                  self.block.constraints)
        assert self.problem.is_dcp(dpp=True)


def proximal_prosumers(case: Case, day: Day) -> list[_ProsumerADMM]:
    """Every prosumer's ADMM step model (built once per case), loaded with `day`."""
    models = cached(case, "admm_prosumers", lambda: [_ProsumerADMM(case, i, day) for i in range(len(case.prosumers))])
    for m in models:
        m.block.set_day(day)
    return models


def proximal_responses(models: list[_ProsumerADMM], prices: np.ndarray, rho: float, target: np.ndarray):
    """Each prosumer's best response to `prices` (N, 24) ¥/MWh with the proximal term (ρ/2)‖P_n − target_n‖²
    (target (N, 24) MW): ((N, 24) MW, None), or (None, "prosumer n: <status>") on a solver failure."""
    exchange = np.empty((len(models), HOURS))
    for i, m in enumerate(models):
        m.rho.value = rho
        m.lin.value = prices[i] + rho * (m.block.h.value - target[i])
        status, _ = solve_reported(m.problem, warm_start=False)  # history-independent, as in `dno_step`
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return None, f"prosumer {i}: {status}"
        exchange[i] = m.block.exchange.value
    return exchange, None


#: Clarabel settings tried in turn by `dno_step`. Each solve starts afresh (warm_start=False): cvxpy
#: otherwise re-uses the last Clarabel solver when presolve removed nothing, so an answer (and the rare
#: NumericalError seen on 2 of 12 test days in a long benchmark run) depended on what was solved before.
#: Then tighter tolerances, which cured a NumericalError on the reference day.
DNO_SOLVER_ATTEMPTS = ({"warm_start": False},
                       {"warm_start": False, "tol_gap_rel": 1e-7, "tol_feas": 1e-7, "iterative_refinement_enable": True})


def dno_step(net: DNOModel, prices: np.ndarray, rho: float, bids: np.ndarray):
    """The DNO's proximal dispatch P^D = argmin F/ω_1 − prices·P^D + (ρ/2)‖P^D − bids‖² (all (N, 24)):
    (P^D MW, None), or (None, "dno: <status>") on a solver failure. Its optimality condition makes
    prices + ρ(bids − P^D) an exact LMP (a subgradient of the network cost) at the dispatch P^D."""
    net.rho.value, net.lin.value = rho, prices + rho * bids
    status = "solver_error"
    for options in DNO_SOLVER_ATTEMPTS:
        with warnings.catch_warnings():  # the status is reported
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            status, _ = solve_reported(net.admm, **options)
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return net.exchange.value.copy(), None
    return None, f"dno: {status}"


# --- results --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ClearingResult:
    """Welfare-maximising clearing of one day. ¥, MW, ¥/MWh.

    prices: (N, 24) clearing prices y (the consensus multipliers; centralised: the coupling duals).
    exchange_power: (N, 24) the prosumers' P; dno_exchange: (N, 24) the DNO's P^D (equal at convergence).
    own_cost: (N,) prosumers' discomfort + degradation; network_cost: F/ω_1 without revenue (¥).
    total_cost: network_cost + Σ own_cost (what W minimises). status: "optimal", "max_iter" or a failure;
    for the centralised solve cvxpy's status ("optimal_inaccurate": Clarabel's reduced accuracy).
    iterations and the residual/ρ log (ADMM only); solve_time in s; outcome: `evaluate` of the prices.
    """

    method: str
    status: str
    prices: np.ndarray
    exchange_power: np.ndarray
    dno_exchange: np.ndarray
    own_cost: np.ndarray
    network_cost: float
    total_cost: float
    iterations: int
    solve_time: float
    primal_residual: list = field(default_factory=list)
    dual_residual: list = field(default_factory=list)
    rho: list = field(default_factory=list)
    outcome: Outcome | None = None
    state: dict = field(default_factory=dict)


def _market_day(day: Day, scenarios) -> Day:
    # the clearing is day-ahead: its expected HV cost is the cost at the expected prices (linear in them)
    return day if scenarios is None else scenarios.expected_day(day)


def solve_centralised(case: Case, day: Day, scenarios=None, mop: str = "opf", voltage_limits: str = "hard",
                      formulation: str = "socp") -> ClearingResult:
    """W minimised as one convex problem (Clarabel): the reference the ADMM must reach."""
    mday = _market_day(day, scenarios)
    net = DNOModel(case, mop, voltage_limits, formulation)
    net.set_day(mday)
    blocks = [ProsumerBlock(case, n, day) for n in range(len(case.prosumers))]
    coupling = [b.exchange == net.exchange[n] for n, b in enumerate(blocks)]
    cons = net.constraints + [c for b in blocks for c in b.constraints] + coupling
    problem = cp.Problem(cp.Minimize(net.network_cost + sum(b.own_cost for b in blocks)), cons)
    start = time.perf_counter()
    with warnings.catch_warnings():  # cvxpy warns of reduced accuracy; the status says it instead
        warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
        problem.solve(solver="CLARABEL")
    elapsed = time.perf_counter() - start
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"centralised clearing failed: {problem.status}")
    # coupling P_n − P^D_n = 0 (Lagrangian term y·(P − P^D)): its dual is the price a prosumer pays per MWh
    prices = np.array([c.dual_value for c in coupling])
    state = net.state(mday)
    own = np.array([b.own_cost_value() for b in blocks])
    exchange = np.array([b.exchange.value for b in blocks])
    return ClearingResult(method="centralised", status=problem.status, prices=prices, exchange_power=exchange,
                          dno_exchange=net.exchange.value, own_cost=own, network_cost=state["network_cost"],
                          total_cost=state["network_cost"] + float(own.sum()), iterations=1, solve_time=elapsed,
                          state=state)


def solve(case: Case, day: Day, rho: float = 1000.0, eps_abs: float = 1e-4, eps_rel: float = 1e-5,
          max_iter: int = 100, balance_residuals: bool = True, scenarios=None, initial_prices=None,
          mop: str = "opf", voltage_limits: str = "hard", formulation: str = "socp", evaluate_result: bool = True,
          verbose: bool = False) -> ClearingResult:
    """ADMM market clearing (module docstring). rho: ¥/(MW²h), the starting penalty.

    eps_abs (MW per entry) and eps_rel: Boyd's §3.3.1 tolerances. initial_prices: y^0 ((24,) or (N, 24);
    default: the LMPs at the prosumers' buses when they respond to the HV tariff, one dispatch; the
    HV tariff itself where that dispatch is infeasible, e.g. under a tight line limit);
    P^D^0 = the best response to y^0. scenarios: HV price scenarios
    (the DNO's expected cost = its cost at the expected prices). verbose: print the iteration log.
    """
    check_market_options(case, day, mop, voltage_limits, formulation)
    rho = _validate.number("rho", rho, lo=0, lo_open=True, unit="¥/(MW²h)")
    eps_abs = _validate.number("eps_abs", eps_abs, lo=0, lo_open=True, unit="MW")
    eps_rel = _validate.number("eps_rel", eps_rel, lo=0)
    max_iter = _validate.integer("max_iter", max_iter, lo=1)
    n = len(case.prosumers)
    if initial_prices is not None:
        initial_prices = _validate.array("initial_prices", initial_prices, "¥/MWh")
        if initial_prices.shape not in ((HOURS,), (n, HOURS)):
            raise ValueError(f"initial_prices: expected (24,) or ({n}, 24) ¥/MWh, got shape {initial_prices.shape}")
    mday = _market_day(day, scenarios)
    net = dno_model(case, mop, voltage_limits, formulation)
    net.set_day(mday)
    pros = proximal_prosumers(case, day)
    if initial_prices is None:  # the DNO's LMPs for the prosumers' response to the HV tariff
        bids = best_response(case, day, mday.buy_price).exchange_power
        initial = dispatch_model(case, formulation, mop, voltage_limits).solve(mday, bids)
        if initial.status.startswith("optimal"):
            initial_prices = initial.lmp[case.bus_position(case.prosumers.bus)]
        else:  # e.g. a line limit that the response to the tariff breaks: start from the tariff itself
            initial_prices = mday.buy_price
    y = np.broadcast_to(np.asarray(initial_prices, float), (n, HOURS)).copy()
    supply = best_response(case, day, y).exchange_power  # P^D^0
    exchange = supply.copy()
    log = ResidualLog(n * HOURS, eps_abs, eps_rel, balance_residuals)
    status, k = "max_iter", 0
    start = time.perf_counter()
    for k in range(1, max_iter + 1):
        bids, failure = proximal_responses(pros, y, rho, supply)
        if failure is None:
            new_supply, failure = dno_step(net, y, rho, bids)
        if failure is not None:
            status = failure
            break
        exchange = bids
        r = exchange - new_supply
        y = y + rho * r
        converged, next_rho = log.record(rho, r, new_supply - supply, np.linalg.norm(exchange),
                                         np.linalg.norm(new_supply), np.linalg.norm(y))
        supply = new_supply
        if verbose:
            print(f"admm {k:3d}  r={log.primal[-1]:.3e} (≤{log.eps[0]:.1e})  s={log.dual[-1]:.3e} "
                  f"(≤{log.eps[1]:.1e})  ρ={rho:g}")
        if converged:
            status = "optimal"
            break
        rho = next_rho  # balanced on residuals relative to their tolerances: r is in MW, s in ¥/MWh
    elapsed = time.perf_counter() - start
    state = net.state(mday)
    own = np.array([p.block.own_cost_value() for p in pros])
    outcome = None
    if evaluate_result and status in ("optimal", "max_iter"):
        outcome = evaluate(case, day, y, mop=mop, voltage_limits=voltage_limits, formulation=formulation)
    return ClearingResult(method="admm", status=status, prices=y, exchange_power=exchange.copy(), dno_exchange=supply,
                          own_cost=own, network_cost=state["network_cost"],
                          total_cost=state["network_cost"] + float(own.sum()), iterations=k, solve_time=elapsed,
                          primal_residual=log.primal, dual_residual=log.dual, rho=log.rho, outcome=outcome,
                          state=state)


# --- generalised Nash bargaining over the savings ---------------------------------------------------
@dataclass(frozen=True, eq=False)
class Bargain:
    """The split of the cooperation's savings, ¥. Parties: `bargain`'s are the DNO (index 0) then the N
    prosumers; `papers.substation_areas`'s are the DSAs.

    alone: stand-alone cost of each party (the HV tariff passed through as the clearing price; the DNO's
    cost is F/ω_1 with its revenue). cooperative: cost at the ADMM clearing (prices y, before payments).
    weight: bargaining power = share of energy traded. payment: what each party pays (< 0 receives);
    sums to zero. final: cooperative + payment. savings: Σ alone − Σ cooperative.
    individually_rational: every party ends no worse off than alone (final <= alone + 1e-6).
    """

    alone: np.ndarray
    cooperative: np.ndarray
    weight: np.ndarray
    payment: np.ndarray
    final: np.ndarray
    savings: float
    individually_rational: bool


def bargaining_weights(exchange_power: np.ndarray) -> np.ndarray:
    """Bargaining power from energy traded: prosumer n traded Σ_t |P_n,t|; the DNO, as every prosumer's
    counterparty, traded the sum of those. Returns (1 + N,) weights (DNO first) summing to one."""
    traded = np.abs(np.asarray(exchange_power, float)).sum(axis=-1)
    w = np.concatenate([[traded.sum()], traded])
    return w / w.sum()


def nash_payments(alone, cooperative, weight) -> np.ndarray:
    """Payments maximising Π_i (alone_i − cooperative_i − pay_i)^{w_i} with Σ pay = 0 (log form, cvxpy).

    The problem is solved as written, max Σ w_i log(benefit_i); its closed form, benefit_i = w_i·S with
    S the total savings (for Σ w = 1), is what the tests check it against. ValueError when S <= 0 (no
    cooperative gain to split).
    """
    alone, coop, w = (np.asarray(a, float) for a in (alone, cooperative, weight))
    savings = float(alone.sum() - coop.sum())
    if savings <= 0:
        raise ValueError(f"no savings to split: Σ alone − Σ cooperative = {savings:.6g} ¥")
    scale = savings  # solve in units of the savings for a well-scaled problem
    pay = cp.Variable(alone.size)
    benefit = (alone - coop) / scale - pay
    problem = cp.Problem(cp.Maximize(w @ cp.log(benefit)), [cp.sum(pay) == 0])
    problem.solve(solver="CLARABEL")
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"nash bargaining failed: {problem.status}")
    pay = pay.value * scale
    return pay - pay.mean()  # remove solver round-off from Σ pay = 0


def bargain(case: Case, day: Day, clearing: ClearingResult, mop: str = "opf", voltage_limits: str = "hard",
            formulation: str = "socp") -> Bargain:
    """Split the savings of `clearing` (ADMM or centralised) against stand-alone operation.

    Stand-alone: the prosumers face the HV buy tariff as their price and the DNO dispatches the
    network for their response (scored by `evaluate`). Cooperative: each prosumer pays y·P plus its own
    cost; the DNO bears F/ω_1 − y·P^D.
    """
    obj = case.objective
    alone_outcome = evaluate(case, day, day.buy_price, mop=mop, voltage_limits=voltage_limits, formulation=formulation)
    if alone_outcome.status != "optimal":
        raise RuntimeError(f"stand-alone operation is infeasible ({alone_outcome.status})")
    alone = np.concatenate([[alone_outcome.dno_objective / obj.omega_economic], alone_outcome.prosumer_costs])
    revenue = float((clearing.prices * clearing.dno_exchange).sum())
    pros = clearing.own_cost + (clearing.prices * clearing.exchange_power).sum(axis=1)
    coop = np.concatenate([[clearing.network_cost - revenue], pros])
    weight = bargaining_weights(clearing.exchange_power)
    pay = nash_payments(alone, coop, weight)
    final = coop + pay
    return Bargain(alone=alone, cooperative=coop, weight=weight, payment=pay, final=final,
                   savings=float(alone.sum() - coop.sum()), individually_rational=bool(np.all(final <= alone + 1e-6)))
