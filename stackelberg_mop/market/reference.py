"""A deliberately naive, independent best response: one cvxpy problem per prosumer, rebuilt per call.

Written straight from MODEL.md's lower level (variables P^tr, P^ch, P^dis, E and P), sharing no code
with the fast path beyond the case data. The tests compare the fast path against it and the
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
                                                      "exchange_power")}
    out["cost"] = np.zeros(len(pros))
    for n in range(len(pros)):
        limit = pros.shift_fraction[n] * day.fixed_load[n]
        transfer = cp.Variable(HOURS)
        cons = [transfer >= -limit, transfer <= limit, cp.sum(transfer) == 0]
        exchange = day.fixed_load[n] + transfer - day.pv[n]
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
        problem = cp.Problem(cp.Minimize(cost), cons)
        problem.solve(solver=solver, **solver_options)
        if problem.status != cp.OPTIMAL:
            raise RuntimeError(f"reference best response of prosumer {n}: cvxpy status {problem.status}")
        out["transfer"][n] = transfer.value
        out["exchange_power"][n] = day.net_load[n] + transfer.value
        if m >= 0:
            out["charge"][n], out["discharge"][n], out["stored_energy"][n] = (
                charge.value, discharge.value, energy.value)
            out["exchange_power"][n] += charge.value - discharge.value
        out["cost"][n] = problem.value
    return out
