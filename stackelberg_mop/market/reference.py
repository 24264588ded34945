"""A deliberately naive, independent best response: one cvxpy problem per prosumer, rebuilt per call.

Written straight from MODEL.md's lower level (variables P^tr, P^ch, P^dis, E and P; for Song et al.'s (2024)
prosumers the elastic load d, the curtailment c and the bid limits on P), sharing no code with the
fast path beyond the case data. The tests compare the fast path against it and the
benchmark times it as the naive reference.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ..cases import HOURS, Case
from ..data import Day
from .follower import check_prices

#: tight tolerances for the interior-point reference. Even so, where hours tie on price the battery's
#: split between them is fixed only by the weak ε term and any toleranced solver can sit ~1e-6 MW
#: from the optimum at ~1e-12 ¥ extra cost (the tests bound this by strong convexity).
CLARABEL_TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10,
                  "max_iter": 500}


def best_response_cvxpy(case: Case, day: Day, prices, solver: str = "CLARABEL", **solver_options) -> dict:
    """Schedules and costs for one price vector, by cvxpy. Returns arrays keyed like `BestResponse`."""
    lam = check_prices(case, prices, batched=False)[0]
    if not solver_options:
        solver_options = CLARABEL_TIGHT if solver == "CLARABEL" else {}
    pros, bat = case.prosumers, case.batteries
    out = {k: np.zeros((len(pros), HOURS)) for k in ("transfer", "charge", "discharge", "stored_energy",
                                                      "exchange_power", "elastic", "curtailed")}
    out["cost"] = np.zeros(len(pros))
    for n in range(len(pros)):
        limit = pros.shift_fraction[n] * day.fixed_load[n]
        transfer = cp.Variable(HOURS)
        cons = [transfer >= -limit, transfer <= limit, cp.sum(transfer) == 0]
        exchange = day.fixed_load[n] + transfer - day.pv[n] - day.wind[n]
        cost = lam[n] @ exchange + pros.kappa[n] * cp.sum_squares(transfer)
        m = case.battery_of[n]
        charge = discharge = energy = None
        if m >= 0:
            charge, discharge, energy = cp.Variable(HOURS), cp.Variable(HOURS), cp.Variable(HOURS)
            previous = cp.hstack([bat.e_init[m], energy[:-1]])
            cons += [charge >= 0, charge <= bat.p_charge_max[m], discharge >= 0,
                     discharge <= bat.p_discharge_max[m],
                     energy == previous + bat.eta_charge[m] * charge - discharge / bat.eta_discharge[m],
                     energy >= bat.e_min[m], energy <= bat.e_max[m], energy[-1] == bat.e_init[m]]
            exchange = exchange + charge - discharge
            cost += (lam[n] @ (charge - discharge) + bat.degradation_cost[m] * cp.sum(charge + discharge)
                     + bat.regularisation[m] * (cp.sum_squares(charge) + cp.sum_squares(discharge)))
        elastic = curtailed = None
        if pros.hourly[n]:
            elastic, curtailed = cp.Variable(HOURS), cp.Variable(HOURS)
            renewables = day.pv[n] + day.wind[n] if pros.curtailable[n] else np.zeros(HOURS)
            cons += [elastic >= 0, elastic <= pros.elastic_max[n], curtailed >= 0, curtailed <= renewables]
            exchange = exchange + elastic + curtailed
            cost += lam[n] @ (elastic + curtailed) - (pros.utility_linear[n] * cp.sum(elastic)
                                                     - pros.utility_quadratic[n] * cp.sum_squares(elastic))
            cons += [exchange >= pros.bid_min[n]] if np.isfinite(pros.bid_min[n]) else []
            cons += [exchange <= pros.bid_max[n]] if np.isfinite(pros.bid_max[n]) else []
        problem = cp.Problem(cp.Minimize(cost), cons)
        problem.solve(solver=solver, **solver_options)
        if problem.status == cp.OPTIMAL_INACCURATE and solver_options is CLARABEL_TIGHT:
            # a degenerate face (e.g. free curtailment at a price of exactly 0) can stall the tight
            # tolerances; Clarabel's own (1e-8) then decide
            problem.solve(solver=solver)
        if problem.status != cp.OPTIMAL:
            raise RuntimeError(f"reference best response of prosumer {n}: cvxpy status {problem.status}")
        out["transfer"][n] = transfer.value
        out["exchange_power"][n] = day.net_load[n] + transfer.value
        if m >= 0:
            out["charge"][n], out["discharge"][n], out["stored_energy"][n] = (
                charge.value, discharge.value, energy.value)
            out["exchange_power"][n] += charge.value - discharge.value
        if elastic is not None:
            out["elastic"][n], out["curtailed"][n] = elastic.value, curtailed.value
            out["exchange_power"][n] += elastic.value + curtailed.value
        out["cost"][n] = problem.value
    return out
