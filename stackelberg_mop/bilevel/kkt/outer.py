"""Method "oa": outer approximation of the network around the followers' KKT master (the default).

The master (`KKTModel(network=False)`: followers' KKT + price rules + cuts θ_t >= Φ_t(P̂_t) +
ω_1 lmp_t·(P_t − P̂_t)) is an MIQP that SCIP solves; its bound is a lower bound on the bi-level
optimum, and the exact score of any price vector (`best_response` + dispatch) an upper bound.

1. Heuristic prices (`heuristics.start_prices`) and a local search on the surrogate are scored
   exactly; each score adds a cut at its exchange power.
2. The master is solved (warm-started at the best prices); its incumbents are scored as SCIP finds
   them and its best solutions at the end, which adds cuts where the master looked. A new master (or
   the same one, back in SCIP's problem stage) is solved again until the scored upper bound and the
   master's bound meet within the gap; SCIP is stopped as soon as they do (`BoundTracker`).
3. The certificate: the master with the prices fixed at λ* gives the model's own KKT point, whose
   objective (its exact network cost, its revenue by strong duality) `verification.finish` checks.
"""

from __future__ import annotations

import time

import numpy as np

from ...cases import HOURS
from ...market import best_response, project_prices
from ...powerflow import dispatch_model
from .heuristics import local_search, start_prices
from .model import new_model
from .network import hourly_network_cost, network_cut
from .scip import scip_status
from .verification import KKTResult, SolveRun, failed_certificate, finish, revenue_by_duality, setpoints_of


def _bound_tracker_class():
    from pyscipopt import SCIP_EVENTTYPE, Eventhdlr

    class BoundTracker(Eventhdlr):
        """Appends (time s, best upper bound, master's dual bound) to a history as the tree grows,
        scores each new incumbent of the master as SCIP finds it (`on_solution(solution)`: the master's
        objective under-estimates the network, so only the exact score is an upper bound), and stops
        the solve once the best scored prices and the master's bound are within `stop_gap`."""

        def __init__(self, history, best, elapsed, stop_gap=None, on_solution=None):
            self.history, self.best, self.elapsed, self.last = history, best, elapsed, -np.inf
            self.stop_gap, self.on_solution = stop_gap, on_solution

        def eventinit(self):
            self.model.catchEvent(SCIP_EVENTTYPE.NODESOLVED, self)
            self.model.catchEvent(SCIP_EVENTTYPE.BESTSOLFOUND, self)

        def eventexit(self):
            self.model.dropEvent(SCIP_EVENTTYPE.NODESOLVED, self)
            self.model.dropEvent(SCIP_EVENTTYPE.BESTSOLFOUND, self)

        def eventexec(self, event):
            if self.history is None:  # switched off (the certificate's fixed-price solve)
                return
            if event.getType() == SCIP_EVENTTYPE.BESTSOLFOUND:
                if self.on_solution is not None:
                    self.on_solution(self.model.getBestSol())
                self.check_stop()
                return
            bound = self.model.getDualbound()
            if bound > self.last + 1e-9 * max(1.0, abs(bound)):
                self.last = bound
                self.history.append((self.elapsed(), self.best["ub"], bound))
                self.check_stop()

        def check_stop(self):
            ub = self.best["ub"]
            if self.stop_gap is not None and ub - self.last <= self.stop_gap * abs(ub):
                self.model.interruptSolve()

    return BoundTracker


def bound_tracker(history, best, elapsed, stop_gap=None, on_solution=None):  # PySCIPOpt is imported lazily
    return _bound_tracker_class()(history, best, elapsed, stop_gap, on_solution)


class OuterApproximation:
    """One day's outer-approximation solve; `solve()` returns the `KKTResult`.

    cuts: (Φ (24,), gradient (N, 24), P̂ (N, 24)), valid for every master; seen: rounded prices ->
    (score, prices, response, dispatch); best: {"ub": the best score, "prices": its prices}.
    """

    def __init__(self, case, day, time_limit, gap, mop, voltage_limits, lo, hi, threads, bigm_scale, verbose,
                 start, scip_params=None):
        self.case, self.day, self.time_limit, self.gap = case, day, time_limit, gap
        self.mop, self.voltage_limits, self.lo, self.hi = mop, voltage_limits, lo, hi
        self.threads, self.bigm_scale, self.verbose, self.start = threads, bigm_scale, verbose, start
        self.scip_params = scip_params
        self.w1 = case.objective.omega_economic
        self.cuts: list = []
        self.seen: dict = {}
        self.best = {"ub": np.inf, "prices": None}
        self.history: list = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def new_master(self, threads: int):
        return new_model(self.case, self.day, False, self.mop, self.voltage_limits, self.lo, self.hi,
                         self.bigm_scale, threads, self.verbose, self.scip_params)

    def next_master(self, model, threads: int):
        """The master for the next solve, on `threads`. After a concurrent solve SCIP keeps the solve's
        stop flag (its synchronisation store is not reset), so every later solve of that model stops at
        once: then, or for another number of threads, a new model (0.03 s on the default case; the cuts
        are pushed before it is solved); else the same model, back in the problem stage."""
        if model.threads > 1 or threads != model.threads:
            return self.new_master(threads)
        if model.m.getStage() != 1:  # not in the problem stage
            model.m.freeTransform()
        return model

    def score(self, prices):
        """Exact score of prices (best response + dispatch), and a cut at the response."""
        key = tuple(np.round(prices, 6))
        if key in self.seen:
            return self.seen[key]
        response = best_response(self.case, self.day, prices)
        phi, grad, res = network_cut(self.case, self.day, response.exchange_power, self.mop, self.voltage_limits)
        if phi is None or not response.ok:
            self.seen[key] = (np.inf, prices, response, None)
            return self.seen[key]
        self.cuts.append((phi, grad, response.exchange_power.copy()))
        value = float(phi.sum()) - self.w1 * float((prices * response.exchange_power).sum())
        self.seen[key] = (value, prices, response, res)
        if value < self.best["ub"]:
            self.best.update(ub=value, prices=prices.copy())
        return self.seen[key]

    def push_cuts(self, model) -> None:
        """Add the cuts this model has not seen yet."""
        from pyscipopt import quicksum

        n = range(len(self.case.prosumers))
        for phi, grad, p_hat in self.cuts[model.n_cuts:]:
            for t in range(HOURS):
                model.m.addCons(model.theta[t] >= phi[t] + quicksum(
                    grad[i, t] * (model.exchange[i][t] - p_hat[i, t]) for i in n))
        model.n_cuts = len(self.cuts)

    def warm_start(self, model, prices) -> None:
        """The scored prices' KKT point and the cuts' estimate of the network as SCIP's first solution."""
        value, prices, response, _ = self.score(prices)
        if not np.isfinite(value):
            return
        vals = model.follower_values(prices, response)
        exch = response.exchange_power
        total = 0.0
        for t in range(HOURS):
            theta = max(phi[t] + float(grad[:, t] @ (exch[:, t] - p_hat[:, t])) for phi, grad, p_hat in self.cuts)
            vals[model.theta[t].name] = theta
            total += theta
        model.add_solution(vals, total - self.w1 * float((prices * exch).sum()))

    def run(self, model, time_cap: float, rel_gap: float) -> int:
        """Solve `model` (warm-started at the best prices) and score its best solutions (its incumbents
        as SCIP finds them, then its five best); returns how many cuts the master has not seen."""
        self.push_cuts(model)
        if self.best["prices"] is not None:
            self.warm_start(model, self.best["prices"])
        model.m.setParam("limits/time", max(1.0, time_cap))
        model.m.setParam("limits/gap", rel_gap)
        # the bound tracker (a Python event handler) runs on one thread only: with more, the history
        # holds one point per outer iteration
        if model.threads == 1 and not hasattr(model, "tracker"):
            model.tracker = bound_tracker(self.history, self.best, self.elapsed, stop_gap=self.gap,
                                          on_solution=lambda sol: self.score(self.solution_prices(model, sol)))
            model.m.includeEventhdlr(model.tracker, "bound_tracker", "records the bound")
        model.optimize()
        for sol in model.m.getSols()[:5]:
            self.score(self.solution_prices(model, sol))
        return len(self.cuts) - model.n_cuts

    def solution_prices(self, model, sol) -> np.ndarray:
        """The prices of a master solution. SCIP's values may sit ~1e-10 outside the price bounds:
        projected, so that λ* keeps the rules exactly (the certificate fixes the prices in the model)."""
        prices = np.array([model.m.getSolVal(sol, v) for v in model.lam])
        return project_prices(self.case, self.day, prices, self.lo, self.hi)

    def polish(self, rounds: int = 3) -> None:
        """Local search on the surrogate from the best prices, each result scored exactly (new cut)."""
        for _ in range(rounds):
            before = self.best["ub"]
            self.score(local_search(self.case, self.day, self.best["prices"], self.cuts, self.lo, self.hi))
            if self.best["ub"] >= before - 1e-6 or self.elapsed() > self.time_limit:
                break

    def solve(self, max_iterations: int) -> KKTResult:
        # 1. heuristic prices: each scored exactly, each a first set of cuts; then a local search
        for prices in start_prices(self.case, self.day, self.lo, self.hi):
            self.score(prices)
        self.polish()
        if self.verbose:
            print(f"start prices and local search: UB {self.best['ub']:.3f} ({self.elapsed():.1f} s)")
        # 2. the master: followers' KKT + price rules + cuts; its bound is the proven lower bound
        model = self.new_master(self.threads)
        lb, status, it = -np.inf, "time_limit", 0
        for it in range(1, max_iterations + 1):
            remaining = self.time_limit - self.elapsed()
            if remaining <= 1.0:
                break
            new = self.run(model, remaining, 0.25 * self.gap)
            lb = max(lb, model.m.getDualbound())
            ub = self.best["ub"]
            self.history.append((self.elapsed(), ub, lb))
            if self.verbose:
                print(f"OA iteration {it}: UB {ub:.3f} LB {lb:.3f} cuts {len(self.cuts)} ({self.elapsed():.1f} s)")
            if ub - lb <= self.gap * abs(ub):
                status = "optimal"
                break
            if new == 0 and scip_status(model.m) == "optimal":
                status = "stalled"
                break
            model = self.next_master(model, model.threads)
        if hasattr(model, "tracker"):
            model.tracker.history = None
        return self.certificate(self.next_master(model, 1), lb, status, it)  # prices fixed: one thread

    def certificate(self, model, lb: float, status: str, it: int) -> KKTResult:
        """The master's own KKT point at λ* (prices fixed), its exact network cost and its model
        objective; a master that admits no follower response at λ* fails the verification."""
        case, day = self.case, self.day
        _, prices, response, res = self.seen[tuple(np.round(self.best["prices"], 6))]
        m = model.m
        for t, var in enumerate(model.lam):
            m.chgVarLb(var, float(prices[t]))
            m.chgVarUb(var, float(prices[t]))
        self.push_cuts(model)
        self.warm_start(model, prices)
        m.setParam("limits/time", 60.0)
        m.setParam("limits/gap", 1e-6)
        m.optimize()
        if m.getNSols() == 0:
            return failed_certificate(case, day, model, SolveRun("oa", self.start, self.gap, it, self.history), prices,
                                      response, res, lb, f"the KKT model admits no follower response at λ* ({m.getStatus()})")
        sol = model.solution()
        sol["prices"] = prices
        p_model = np.array([f.qp.G @ fs["x"] + f.qp.h for f, fs in zip(model.followers, sol["followers"])])
        if np.abs(p_model - response.exchange_power).max() > 1e-9:  # price the model's own exchange power
            res = dispatch_model(case, "socp", self.mop, self.voltage_limits).solve(day, p_model)
        phi = hourly_network_cost(case, day, res, self.voltage_limits)
        model_obj = float(phi.sum()) - self.w1 * sum(
            revenue_by_duality(f.qp, fs, prices) for f, fs in zip(model.followers, sol["followers"]))
        setpoints = setpoints_of(case, res.mop_p, res.mop_q) if self.mop == "opf" else \
            np.zeros((2, len(case.mop), HOURS))
        return finish(case, day, model, sol, setpoints, SolveRun("oa", self.start, self.gap, it, self.history),
                      model_obj=model_obj, bound=lb, status_hint=status, solver_status=scip_status(model.m))
