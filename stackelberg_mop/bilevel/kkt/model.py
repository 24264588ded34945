"""The single-level SCIP model: the DNO's prices and rules, every follower's KKT conditions, and the network.

The network enters in one of two ways (`KKTModel(network=...)`): as the DistFlow rows themselves
(`network.add_network`, method "misocp") or as one cut variable θ_t per hour that the outer
approximation bounds from below by cuts (`network.network_cut`, method "oa"). The objective is

    ω_1 (−Σ_n λᵀP_n by strong duality) + network cost (θ or the rows' `Objective.weigh` of their parts)
"""

from __future__ import annotations

import numpy as np

from ...cases import HOURS, Case
from ...data import Day
from ...market import follower_qp, price_bounds
from ..bigm import multiplier_bounds
from .followers import FollowerKKT
from .network import add_network, network_values
from .scip import SCIP_PARAMS, new_scip_model


def price_box(case: Case, day: Day, price_lower=None, price_upper=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-hour price bounds (24,) each, writable copies: the day's rules (`market.price_bounds`),
    optionally narrowed (e.g. prices fixed); ValueError naming the hour if they leave no price."""
    bounds = price_bounds(case, day, price_lower, price_upper)
    return bounds.lower.copy(), bounds.upper.copy()


class KKTModel:
    """The SCIP model: prices, followers' KKT, and either the network (misocp) or cut variables (oa).

    m: the PySCIPOpt model; lam: the 24 price variables (¥/MWh); followers: `FollowerKKT` per member;
    exchange: (N, 24) linear expressions of P_n,t (MW); neg_revenue: per follower ω_1 × (−λᵀP_n);
    theta: the 24 cut variables (oa) or None; net: the network's variables (misocp), by the dispatch
    model's variable names;
    n_cuts: how many of the outer approximation's cuts are among its constraints.
    """

    def __init__(self, case: Case, day: Day, network: bool | None, mop: str, voltage_limits: str,
                 price_lo: np.ndarray, price_hi: np.ndarray, bigm_scale: float, threads: int, verbose: bool,
                 scip_params=None, prosumers=None):
        """network: True = the SOCP network inside (misocp), False = one cut variable per hour (oa),
        None = neither, and no objective (the caller sets it; `lagrangian.py` with `prosumers` a subset)."""
        from pyscipopt import quicksum

        self.case, self.day, self.mop, self.voltage_limits = case, day, mop, voltage_limits
        self.threads = threads
        self.n_cuts = 0
        m = self.m = new_scip_model("stackelberg_kkt", threads, verbose, scip_params)
        w1 = case.objective.omega_economic
        self.lam = [m.addVar(f"price_{t}", lb=price_lo[t], ub=price_hi[t]) for t in range(HOURS)]
        m.addCons(quicksum(self.lam) <= HOURS * case.price_rules.mean_cap, "mean_cap")
        self.members = list(range(len(case.prosumers)) if prosumers is None else prosumers)
        if network and len(self.members) != len(case.prosumers):
            raise ValueError("the network needs every prosumer in the model")
        self.followers = []
        for n in self.members:
            qp = follower_qp(case, day, n)
            bounds = multiplier_bounds(case, qp, n, price_lo, price_hi, bigm_scale)
            self.followers.append(FollowerKKT.add(m, self.lam, n, qp, bounds))
        self.neg_revenue = [w1 * f.neg_revenue for f in self.followers]
        self.exchange = [f.exchange for f in self.followers]
        self.revenue_terms = quicksum(self.neg_revenue)  # ω_1 × (−revenue)
        self.theta = self.objective_var = None
        if network is None:
            return
        if network:
            network_obj = add_network(self)
        else:
            self.theta = [m.addVar(f"network_cost_{t}", lb=-1e9) for t in range(HOURS)]
            network_obj = quicksum(self.theta)
        self.objective_var = m.addVar("objective", lb=-1e12)
        m.addCons(self.objective_var >= self.revenue_terms + network_obj, "objective")
        m.setObjective(self.objective_var, "minimize")

    def optimize(self):
        """SCIP's solve; with more than one thread its concurrent solve (one tree search per thread,
        each with other settings and seeds, sharing solutions and bounds)."""
        if self.threads > 1:
            self.m.solveConcurrent()
        else:
            self.m.optimize()

    def follower_values(self, prices: np.ndarray, response) -> dict:
        """Values of the prices and every follower variable at the exact best response to `prices`."""
        vals = {var.name: float(prices[t]) for t, var in enumerate(self.lam)}
        for f in self.followers:
            vals.update(f.values(self.case, prices, response))
        return vals

    def network_values(self, result) -> dict:
        """Values of the network variables (method "misocp") from a `DispatchResult` of the same P."""
        return network_values(self, result)

    def add_solution(self, vals: dict, objective: float) -> bool:
        """Hand a solution to SCIP (warm start); True if SCIP accepted it. With objective None the
        solution is partial (SCIP's completesol heuristic fills in the rest)."""
        vals = dict(vals)
        if objective is not None and self.objective_var is not None:
            vals[self.objective_var.name] = objective + 1e-7 * max(1.0, abs(objective))
        if not hasattr(self, "_by_name"):
            self._by_name = {v.name: v for v in self.m.getVars()}
        sol = self.m.createSol() if objective is not None else self.m.createPartialSol()
        for name, val in vals.items():
            self.m.setSolVal(sol, self._by_name[name], val)
        return bool(self.m.addSol(sol, free=True))

    def solution(self) -> dict:
        """The incumbent: prices, follower variables (x, ν, μ) and, for "misocp", the MOP's state."""
        m = self.m
        sol = m.getBestSol()
        out = {"prices": np.array([m.getSolVal(sol, v) for v in self.lam]),
               "followers": [f.solution(m, sol) for f in self.followers]}
        if self.theta is None:
            s = self.case.s_base
            arr = lambda key: (np.vectorize(lambda v: m.getSolVal(sol, v), otypes=[float])(self.net[key])
                               if key in self.net else np.zeros((0, HOURS)))
            out["mop_p"], out["mop_q"], out["mop_loss"] = (arr(key) * s for key in ("mop_p", "mop_q", "mop_loss"))
        out["objective"] = m.getSolObjVal(sol)
        return out


def new_model(case, day, network, mop, voltage_limits, lo, hi, bigm_scale, threads, verbose,
              scip_params=None) -> KKTModel:
    """A `KKTModel` with the package's SCIP parameters unless `scip_params` are given."""
    return KKTModel(case, day, network, mop, voltage_limits, lo, hi, bigm_scale, threads, verbose,
                    scip_params=SCIP_PARAMS if scip_params is None else scip_params)
