"""The one scorer: prices → prosumers' best response → DNO dispatch → AC check → `Outcome`.

Every producer of prices (an RL policy, the bi-level optimum, the fixed point, ADMM, a tariff) is
scored here, so the objective exists once. It lives at the package's top level because it composes
``market`` (the followers) and ``powerflow`` (the network).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _validate
from ..cases import HOURS, Case
from ..data import Day
from ..data.days import check_day
from ..market import BestResponse, best_response, check_prices
from ..powerflow import DispatchResult, check_market_options, dispatch_model
from ..powerflow.ac import pandapower_power_flow, sweep_power_flow
from .costs import (
    check_mop_setpoints,
    economic_costs,
    hourly_network_costs,
    outside_limits,
    price_violation,
    setpoint_loss,
    weigh_hours,
)
from .gradient import check_gradient_options, price_gradient
from .outcome import ExpectedOutcome, HourOutcome, Outcome

AC_MODES = ("sweep", "pandapower")


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
             gradient: bool = False) -> Outcome:
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
    gradient: also compute dJ/dλ (`Outcome.price_gradient`, ¥ per ¥/MWh, the shape of `prices`) and
    the hours where J may have a kink (`Outcome.gradient_kinks`); see `scoring.gradient`. Defined for
    mop "opf" or "off", voltage limits "hard" or "none" and the followers' own best response.
    Bad input raises ValueError; solver failures come back as `Outcome.status`.
    """
    _validate.choice("ac", ac, AC_MODES)
    if _validate.flag("gradient", gradient):
        check_gradient_options(mop, voltage_limits, response)
    fixed = not isinstance(mop, str)
    check_market_options(case, day, None if fixed else mop, voltage_limits, formulation)
    lam = check_prices(case, prices, batched=False)[0]  # (N, 24)
    if fixed:
        mop_p, mop_q = check_mop_setpoints(case, mop)
        if dispatch is not None:
            raise ValueError("dispatch: a dispatch belongs to mop 'opf' or 'off'; with set-points the AC power "
                             "flow gives the network state")
    response = _response(case, day, lam, response)
    if not response.ok:
        return _with_gradient(_failed(_follower_failure(response), lam, response, case, day), gradient, prices)
    obj, exchange = case.objective, response.exchange_power
    revenue = float((lam * exchange).sum())

    result = None
    if fixed:
        state = sweep_power_flow(case, day, exchange, mop_p, mop_q)
        if not state.converged.all():
            return _failed("ac_not_converged", lam, response, case, day)
        v, line_loss, grid_power = state.vm**2, state.line_loss, state.grid_power
        mop_loss = setpoint_loss(case, mop_p, mop_q)
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
            return _with_gradient(_failed(result.status, lam, response, case, day, result), gradient, prices)
        mop_p, mop_q, line_loss, mop_loss = result.mop_p, result.mop_q, result.line_loss, result.mop_loss
        v, vm_model, grid_power, gap = result.v, result.voltage, result.grid_power, result.relaxation_gap
        dg_p, dg_q = result.dg_p, result.dg_q
        if ac == "sweep":
            state = sweep_power_flow(case, day, exchange, mop_p, mop_q, dg_p, dg_q)
            vm_ac, converged = state.vm, state.converged
        else:
            vm_ac, converged = pandapower_power_flow(case, day, exchange, mop_p, mop_q, dg_p=dg_p, dg_q=dg_q)
        if not converged.all():
            return _with_gradient(_failed("ac_not_converged", lam, response, case, day, result), gradient, prices)
        mismatch = np.abs(vm_ac - vm_model).max(axis=0)

    hourly = hourly_network_costs(case, day, grid_power, line_loss, mop_loss, v, dg_p)
    grid_cost, line_loss_cost, mop_loss_cost, deviation_cost, dg_cost = (float(c) for c in hourly.sum(axis=1))
    hourly_objective = weigh_hours(case, hourly, (lam * exchange).sum(axis=0))
    dno_cost = float(economic_costs(hourly).sum()) - revenue
    outside = outside_limits(case, vm_ac)
    slope = kinks = None
    if gradient:
        found = price_gradient(case, day, lam, response, result)
        slope = found.gradient.sum(axis=0) if np.ndim(prices) == 1 else found.gradient
        kinks = found.kinks
    return Outcome(
        status="optimal" if result is None else result.status, prices=lam, dno_objective=obj.weigh(dno_cost, deviation_cost),
        dno_cost=dno_cost, grid_cost=grid_cost, revenue=revenue, line_loss_cost=line_loss_cost,
        mop_loss_cost=mop_loss_cost, voltage_deviation_cost=deviation_cost, prosumer_costs=response.cost,
        exchange_power=exchange, grid_power=grid_power, mop_p=mop_p, mop_q=mop_q, line_loss=line_loss,
        mop_loss=mop_loss, voltages_ac=vm_ac,
        voltages_model=vm_model, relaxation_gap=gap, ac_mismatch=mismatch, violation_rate=float(outside.mean()),
        price_violation=price_violation(case, day, lam), response=response, dispatch=result,
        hourly_objective=hourly_objective, dg_cost=dg_cost, dg_p=dg_p, dg_q=dg_q, price_gradient=slope,
        gradient_kinks=kinks)


def _with_gradient(outcome: Outcome, gradient: bool, prices) -> Outcome:
    """A failed outcome with NaN in place of the gradient that was asked for."""
    if not gradient:
        return outcome
    return dataclasses.replace(outcome, price_gradient=np.full(np.shape(prices), np.nan),
                               gradient_kinks=np.ones(HOURS, dtype=bool))


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
        mop_loss = setpoint_loss(case, mop_p[:, t], mop_q[:, t])
    else:
        v, line_loss, grid_power, mop_loss = result.v, result.line_loss, result.grid_power, result.mop_loss
    hourly = hourly_network_costs(case, day, grid_power, line_loss, mop_loss, v, dg_p[:, t], hours=t)
    objective = float(weigh_hours(case, hourly, (lam[:, t] * exchange[:, t]).sum(axis=0))[0])
    vm = state.vm[:, hour]
    violations = int(outside_limits(case, vm).sum())
    return HourOutcome(hour, "optimal" if result is None else result.status, objective, violations, vm,
                       exchange[:, hour].copy(), result)


def evaluate_expected(case: Case, day: Day, prices, scenarios, **kwargs) -> ExpectedOutcome:
    """Score prices on `day` under HV price scenarios (`data.hv_prices.PriceScenarios`): expected cost.

    Calls `evaluate` once per scenario with the day's buy/sell prices replaced; keyword arguments go
    to `evaluate`. The best response is computed once (it does not depend on the HV prices).
    """
    check_day(case, day)
    lam = check_prices(case, prices, batched=False)[0]
    if not hasattr(scenarios, "days") or not hasattr(scenarios, "weight"):
        raise ValueError(f"scenarios: expected data.hv_prices.PriceScenarios, got {type(scenarios).__name__}")
    unknown = sorted(set(kwargs) - {"mop", "voltage_limits", "formulation", "ac", "response"})
    if unknown:
        raise ValueError(f"{unknown[0]}: not an argument of evaluate_expected (mop, voltage_limits, formulation, ac, "
                         "response)")
    response = kwargs.pop("response", None)
    response = best_response(case, day, lam) if response is None else response
    outcomes = [evaluate(case, d, lam, response=response, **kwargs) for d in scenarios.days(day)]
    return ExpectedOutcome(outcomes=outcomes, weight=np.asarray(scenarios.weight, float),
                           price_violation=price_violation(case, day, lam))
