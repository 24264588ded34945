"""The exact bi-level optimum: every prosumer replaced by its KKT conditions, solved with SCIP.

The single-level model (MODEL.md §"Single level"). For prosumer n in standard form
(`market.follower_qp`: min ½xᵀQx + cᵀx + λᵀ(Gx + h) s.t. Ex = d, l <= x <= u):

    Qx + c + Gᵀλ + Eᵀν − μ_l + μ_u = 0                      stationarity
    Ex = d,  l <= x <= u                                    primal feasibility
    0 <= μ_l <= M_l z_l,   x − l <= (u − l)(1 − z_l)          complementarity by binaries z
    0 <= μ_u <= M_u z_u,   u − x <= (u − l)(1 − z_u),  z_l + z_u <= 1

with every M derived in `bigm.py`. The DNO's revenue λᵀP_n is bilinear; strong duality replaces it by
λᵀh − xᵀQx − cᵀx − dᵀν + lᵀμ_l − uᵀμ_u, so the leader's objective

    ω_1 (grid cost + c_loss (line + MOP losses) − Σ_n λᵀP_n) + ω_2 c_V Σ|v − 1|  (+ soft-limit penalty)

is convex and the problem is a convex mixed-integer SOCP (network: DistFlow with the SOC relaxation
and the MOP, as `powerflow.distflow`; price rules: bounds and the mean cap).

Two ways to solve it, both with SCIP through PySCIPOpt:
- ``method="misocp"``: the whole model in one branch and bound;
- ``method="oa"`` (default): outer approximation of the network. Given the exchange power P the
  network's optimal cost Φ(P) = Σ_t Φ_t(P_t) is convex and separable by hour, with subgradient
  ω_1 × the LMPs at the prosumers' buses (`DispatchResult.lmp`). The master problem (the followers'
  KKT + price rules + cuts θ_t >= Φ_t(P̂_t) + ω_1 lmp_t·(P_t − P̂_t)) is an MIQP that SCIP solves;
  its optimum is a lower bound, and `evaluate` at its prices is an upper bound. Cuts are added at
  every new master solution until the bounds meet.

With more than one thread (the default where the machine has two cores) SCIP solves each model
concurrently: one tree search per thread with different settings and seeds, sharing solutions and
bounds, in SCIP's deterministic mode (the solvers synchronise on work, not on the clock).

Every answer is verified (`Verification`): the followers are re-solved at λ* by `best_response`,
multipliers are checked against their Big-Ms, and λ* is re-scored by `evaluate`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .. import checks
from .._system import available_cpus
from ..cases import HOURS, Case
from ..data import Day
from ..evaluate import Outcome, evaluate, hourly_network_costs
from ..market import (
    best_response,
    follower_qp,
    kkt_residuals,
    price_bounds,
    project_prices,
    standard_solution,
)
from ..powerflow import dispatch_model, feeder
from ..powerflow.distflow import soft_limit_penalty
from .bigm import MultiplierBounds, multiplier_bounds

METHODS = ("oa", "misocp")
#: the default number of SCIP threads is the machine's cores up to this. One: under the paper's price
#: rule SCIP's concurrent solve on two threads is slower (reference day: 1e-4 not reached in 300 s,
#: against ~130 s on one thread, benchmarks/README.md #40); it helped the flat-cap variant (#26)
MAX_DEFAULT_THREADS = 1
#: environment variable that sets the default number of SCIP threads instead (a positive integer):
#: for processes that share the machine, e.g. the benchmark's workers (`benchmark.run` sets it)
THREADS_ENV = "STACKELBERG_MOP_THREADS"
#: Ipopt options for SCIP's NLP heuristics (subnlp, MPEC, ...): MUMPS ordered with AMD instead of
#: METIS. METIS corrupts the heap in the PySCIPOpt wheel (scipopt/scip#211, PySCIPOpt#1234): the
#: process aborts ("free(): invalid pointer"), which no Python code can catch. The MPEC heuristic hit
#: it within 3 s on the KKT master with indicator constraints; with AMD the same runs go through, and
#: the heuristics stay on (switched off, the reference day's incumbent was 3 ¥ worse)
IPOPT_OPTIONS_FILE = "ipopt.opt"


def _ipopt_params() -> dict:
    from importlib import resources

    return {"nlpi/ipopt/optfile": str(resources.files(__package__) / IPOPT_OPTIONS_FILE)}


#: SCIP parameters of the models: few separation rounds (root only) and cheap strong branching give
#: many more nodes per second; best-bound node selection, because the incumbent comes from the local
#: search and only the bound is left to prove; benchmarks/README.md records what was tried and its effect.
#: Every model also gets the Ipopt options file first (`IPOPT_OPTIONS_FILE`), whatever the caller passes
SCIP_PARAMS: dict = {"separating/maxroundsroot": 5, "separating/maxrounds": 0,
                     "branching/relpscost/maxreliable": 2.0, "branching/relpscost/sbiterquot": 0.2,
                     "nodeselection/bfs/stdpriority": 1_000_000}
#: x within this of a bound counts as "at the bound" when a follower solution is turned into binaries
AT_BOUND_TOL = 1e-9
#: a multiplier above this share of its Big-M is reported as sitting at its Big-M
BIGM_TOL = 1 - 1e-6
#: relative tolerance of "model objective = evaluate's objective". `evaluate` dispatches without
#: iterative refinement (the environments' speed), the certificate with it: on the small test case's
#: "economy only" scenario (losses not priced) the two dispatches of the same exchange power differ by
#: 1.1e-5 of the objective (0.013 ¥ of 1,167 ¥), on the default case by < 1e-9
OBJECTIVE_RTOL = 5e-5


# --- results --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    """Checks of one solution, done by the code. Errors in MW, ¥ or ¥/MWh as named.

    exchange_error: max |P_model − P_best_response| (MW) over prosumers and hours; schedule_error: the
    same over every follower variable (MW, MWh); cost_error: max |C_n(model) − C_n(best_response)| ¥.
    follower_kkt: the largest residual of `market.kkt_residuals` of the re-solved followers.
    bigm_ratio: the largest μ/M over all bound multipliers; at_bigm: how many sit at their M (>= 1 − 1e-6).
    model_objective: the model's objective at its solution (¥); evaluated_objective: `evaluate` at λ*
    (F, plus the soft-limit penalty when voltage limits are soft); objective_error: model − evaluated (signed; the model may not be lower).
    setpoint_objective: `evaluate` at λ* with the model's MOP set-points (AC power flow, no optimiser).
    passed: all checks within tolerance; messages: what failed.
    """

    exchange_error: float
    schedule_error: float
    cost_error: float
    follower_kkt: float
    bigm_ratio: float
    at_bigm: int
    model_objective: float
    evaluated_objective: float
    objective_error: float
    setpoint_objective: float
    passed: bool
    messages: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class KKTResult:
    """The bi-level optimum of one day.

    prices: (24,) ¥/MWh. mop_setpoints: (2, K, 24) [P; Q] MW/Mvar injected at the MOP terminals.
    objective: the DNO objective of λ* scored by `evaluate` (¥; plus the soft penalty if soft limits),
    the incumbent. best_bound: a proven lower bound on the optimum (¥). gap: (objective − best_bound) /
    |objective|. status: "optimal" (gap <= the requested gap and verification passed), "time_limit",
    "stalled" (method "oa": the master returned only prices already scored, so the loop could not
    tighten further; the bound stays valid), "verification_failed: …", or (method "misocp") SCIP's own
    status when it stopped for another reason; solver_status: SCIP's last status. solve_time: seconds (wall).
    history: (time s, upper bound, lower bound) after each outer iteration (method "oa") or at the end.
    """

    prices: np.ndarray
    mop_setpoints: np.ndarray
    objective: float
    best_bound: float
    gap: float
    status: str
    solver_status: str
    solve_time: float
    method: str
    verification: Verification
    outcome: Outcome
    iterations: int = 0
    history: list = field(default_factory=list, repr=False)

    @property
    def absolute_gap(self) -> float:
        return self.objective - self.best_bound


# --- the model ------------------------------------------------------------------------------------
def price_box(case: Case, day: Day, price_lower=None, price_upper=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-hour price bounds (24,) each, writable copies: the day's rules (`market.price_bounds`),
    optionally narrowed (e.g. prices fixed); ValueError naming the hour if they leave no price."""
    bounds = price_bounds(case, day, price_lower, price_upper)
    return bounds.lower.copy(), bounds.upper.copy()


@dataclass
class _Follower:
    qp: object
    bounds: MultiplierBounds
    x: list
    nu: list
    mu_l: list
    mu_u: list
    z_l: list
    z_u: list
    net: dict  # fixed variable index -> free net multiplier variable
    sq: list  # (index, aux variable >= Q_i x_i²)


class _Model:
    """The SCIP model: prices, followers' KKT, and either the network (misocp) or cut variables (oa)."""

    def __init__(self, case: Case, day: Day, network: bool | None, mop: str, voltage_limits: str,
                 price_lo: np.ndarray, price_hi: np.ndarray, bigm_scale: float, threads: int, verbose: bool,
                 scip_params=None, prosumers=None):
        """network: True = the SOCP network inside (misocp), False = one cut variable per hour (oa),
        None = neither, and no objective (the caller sets it; `lagrangian.py` with `prosumers` a subset)."""
        from pyscipopt import Model, quicksum

        self.case, self.day, self.mop, self.voltage_limits = case, day, mop, voltage_limits
        self.threads = threads
        self.n_cuts = 0
        m = self.m = Model("stackelberg_kkt")
        if not verbose:
            m.hideOutput()
        m.setParam("parallel/maxnthreads", threads)
        m.setParam("lp/threads", threads)
        m.setParam("parallel/mode", 1)  # deterministic concurrent solve: as fast here (#26), reproducible
        m.setParam("numerics/feastol", 1e-7)
        for key, value in {**_ipopt_params(), **(scip_params or {})}.items():
            m.setParam(key, value)
        obj = case.objective
        w1 = obj.omega_economic
        self.lam = [m.addVar(f"price_{t}", lb=price_lo[t], ub=price_hi[t]) for t in range(HOURS)]
        m.addCons(quicksum(self.lam) <= HOURS * case.price_rules.mean_cap, "mean_cap")
        self.members = list(range(len(case.prosumers)) if prosumers is None else prosumers)
        if network and len(self.members) != len(case.prosumers):
            raise ValueError("the network needs every prosumer in the model")
        self.followers = []
        self.neg_revenue = []  # per follower: ω_1 × (−λᵀP_n) by strong duality
        self.exchange = []  # (N, 24) linear expressions of P_n,t in MW
        for n in self.members:
            qp = follower_qp(case, day, n)
            f = self._add_follower(n, qp, multiplier_bounds(case, qp, n, price_lo, price_hi, bigm_scale))
            self.followers.append(f)
            # −λᵀP_n by strong duality: −λᵀh + xᵀQx + cᵀx + dᵀν − lᵀμ_l + uᵀμ_u (fixed x: u·net)
            terms = [quicksum(-qp.h[t] * self.lam[t] for t in range(HOURS))]
            terms += [aux for _, aux in f.sq]
            terms += [qp.c[i] * f.x[i] for i in range(qp.size) if qp.c[i] != 0]
            terms += [qp.d[j] * f.nu[j] for j in range(qp.d.size) if qp.d[j] != 0]
            terms += [-qp.lower[i] * f.mu_l[i] for i in range(qp.size) if f.mu_l[i] is not None and qp.lower[i] != 0]
            terms += [qp.upper[i] * f.mu_u[i] for i in range(qp.size) if f.mu_u[i] is not None and qp.upper[i] != 0]
            terms += [qp.upper[i] * v for i, v in f.net.items()]
            self.neg_revenue.append(w1 * quicksum(terms))
            self.exchange.append([quicksum(qp.G[t, i] * f.x[i] for i in np.flatnonzero(qp.G[t])) + qp.h[t]
                                  for t in range(HOURS)])
        self.revenue_terms = quicksum(self.neg_revenue)  # ω_1 × (−revenue)
        self.theta = self.objective_var = None
        if network is None:
            return
        if network:
            network_obj = self._add_network()
        else:
            self.theta = [m.addVar(f"network_cost_{t}", lb=-1e9) for t in range(HOURS)]
            network_obj = quicksum(self.theta)
        self.objective_var = m.addVar("objective", lb=-1e12)
        m.addCons(self.objective_var >= self.revenue_terms + network_obj, "objective")
        m.setObjective(self.objective_var, "minimize")

    def optimize(self):
        """SCIP's solve; with more than one thread its concurrent solve (one tree search per thread,
        each with other settings and seeds, sharing solutions and bounds; `benchmarks/README.md` #26)."""
        if self.threads > 1:
            self.m.solveConcurrent()
        else:
            self.m.optimize()

    # followers ------------------------------------------------------------------------------------
    def _add_follower(self, n: int, qp, b: MultiplierBounds) -> _Follower:
        from pyscipopt import quicksum

        m = self.m
        x = [m.addVar(f"x_{n}_{i}", lb=qp.lower[i], ub=qp.upper[i]) for i in range(qp.size)]
        nu = [m.addVar(f"nu_{n}_{j}", lb=b.nu_lo[j], ub=b.nu_hi[j]) for j in range(qp.d.size)]
        f = _Follower(qp=qp, bounds=b, x=x, nu=nu, mu_l=[None] * qp.size, mu_u=[None] * qp.size,
                      z_l=[None] * qp.size, z_u=[None] * qp.size, net={}, sq=[])
        for j in range(qp.d.size):
            cols = np.flatnonzero(qp.E[j])
            m.addCons(quicksum(qp.E[j, i] * x[i] for i in cols) == qp.d[j], f"eq_{n}_{j}")
        for i in range(qp.size):
            if qp.Q[i] > 0:
                aux = m.addVar(f"sq_{n}_{i}", lb=0.0, ub=qp.Q[i] * max(qp.lower[i] ** 2, qp.upper[i] ** 2))
                m.addCons(qp.Q[i] * x[i] * x[i] <= aux, f"sq_{n}_{i}")
                f.sq.append((i, aux))
            rest = qp.Q[i] * x[i] + qp.c[i] + quicksum(qp.G[t, i] * self.lam[t] for t in np.flatnonzero(qp.G[:, i]))
            rest += quicksum(qp.E[j, i] * nu[j] for j in np.flatnonzero(qp.E[:, i]))
            if qp.lower[i] == qp.upper[i]:
                net = m.addVar(f"net_{n}_{i}", lb=b.net_lo[i], ub=b.net_hi[i])
                f.net[i] = net
                m.addCons(rest + net == 0, f"stat_{n}_{i}")
                continue
            width = b.slack[i]
            parts = []
            for side in ("l", "u"):
                big = b.mu_l_max[i] if side == "l" else b.mu_u_max[i]
                if big <= 0:
                    continue
                mu = m.addVar(f"mu{side}_{n}_{i}", lb=0.0, ub=big)
                z = m.addVar(f"z{side}_{n}_{i}", vtype="B")
                m.addCons(mu <= big * z, f"cm{side}_{n}_{i}")
                slack = x[i] - qp.lower[i] if side == "l" else qp.upper[i] - x[i]
                m.addCons(slack <= width * (1 - z), f"cx{side}_{n}_{i}")
                if side == "l":
                    f.mu_l[i], f.z_l[i] = mu, z
                    parts.append(-mu)
                else:
                    f.mu_u[i], f.z_u[i] = mu, z
                    parts.append(mu)
            if f.z_l[i] is not None and f.z_u[i] is not None:
                m.addCons(f.z_l[i] + f.z_u[i] <= 1, f"zz_{n}_{i}")
            m.addCons(rest + quicksum(parts) == 0, f"stat_{n}_{i}")
        if qp.has_battery:
            # charge and discharge are never both positive (checked on every solution): one of them
            # sits at zero, where its lower-bound binary may be 1
            for t in range(HOURS):
                zc, zd = f.z_l[HOURS + t], f.z_l[2 * HOURS + t]
                if zc is not None and zd is not None:
                    m.addCons(zc + zd >= 1, f"nosim_{n}_{t}")
        return f

    # the network (method "misocp") ---------------------------------------------------------------
    def _add_network(self):
        """DistFlow + SOC relaxation + MOP, per unit on case.s_base, as `powerflow.distflow`."""
        from pyscipopt import quicksum

        m, case, day = self.m, self.case, self.day
        fd = feeder(case)
        s, obj = case.s_base, case.objective
        nb, nbus = fd.n_branch, fd.n_bus
        k = len(case.mop) if self.mop == "opf" else 0
        hard = self.voltage_limits == "hard"
        # bounds: voltages from the limits (hard) or a wide physical range; flows from the largest
        # demand below each branch with a 50 % margin for losses (checked at the solution)
        v_lo, v_hi = (case.v_min**2, case.v_max**2) if hard else (0.49, 1.69)
        pmax = np.zeros(nbus)
        pos = case.bus_position(case.prosumers.bus)
        p_abs = np.zeros(nbus)
        for n, f in enumerate(self.followers):
            qp = f.qp
            reach = np.abs(qp.G) @ np.maximum(np.abs(qp.lower), np.abs(qp.upper)) + np.abs(qp.h)
            p_abs[pos[n]] += reach.max()
        pmax = (np.abs(day.base_p).max(axis=1) + p_abs) / s
        qmax = np.abs(day.base_q).max(axis=1) / s
        if k:
            mpos = case.bus_position(case.mop.bus)
            np.add.at(pmax, mpos, case.mop.s_max / s)
            np.add.at(qmax, mpos, case.mop.s_max / s)
        down = fd.downstream
        pb, qb = 1.5 * (down @ pmax) + 1e-3, 1.5 * (down @ qmax) + 1e-3
        lb_ = (pb**2 + qb**2) / v_lo
        if np.isfinite(fd.i_max).any():
            lb_ = np.minimum(lb_, np.where(np.isfinite(fd.i_max), fd.i_max**2, np.inf))
        tot_p, tot_q = 1.5 * pmax.sum() + 1e-3, 1.5 * qmax.sum() + 1e-3
        dev_max = max(abs(v_lo - 1), abs(v_hi - 1))
        others = [i for i in range(nbus) if i != fd.root]
        net = self.net = {key: np.empty(shape, dtype=object) for key, shape in (
            ("p", (nb, HOURS)), ("q", (nb, HOURS)), ("l", (nb, HOURS)), ("v", (nbus, HOURS)),
            ("pg", (HOURS,)), ("qg", (HOURS,)), ("buy", (HOURS,)), ("dev", (nbus, HOURS)),
            ("pm", (k, HOURS)), ("qm", (k, HOURS)), ("ploss", (k, HOURS)), ("excess", (nbus, HOURS)))}
        cost = []
        for t in range(HOURS):
            p = [m.addVar(f"p_{j}_{t}", lb=-pb[j], ub=pb[j]) for j in range(nb)]
            q = [m.addVar(f"q_{j}_{t}", lb=-qb[j], ub=qb[j]) for j in range(nb)]
            cur = [m.addVar(f"l_{j}_{t}", lb=0.0, ub=lb_[j]) for j in range(nb)]
            v = [m.addVar(f"v_{i}_{t}", lb=v_lo, ub=v_hi) for i in range(nbus)]
            pg = m.addVar(f"pg_{t}", lb=-tot_p, ub=tot_p)
            qg = m.addVar(f"qg_{t}", lb=-tot_q, ub=tot_q)
            buy = m.addVar(f"buy_{t}", lb=0.0, ub=tot_p)
            m.addCons(buy >= pg)
            dev = [m.addVar(f"dev_{i}_{t}", lb=0.0, ub=dev_max) for i in range(nbus)]
            pm = [m.addVar(f"pm_{kk}_{t}", lb=-case.mop.s_max[kk] / s, ub=case.mop.s_max[kk] / s) for kk in range(k)]
            qm = [m.addVar(f"qm_{kk}_{t}", lb=-case.mop.s_max[kk] / s, ub=case.mop.s_max[kk] / s) for kk in range(k)]
            ploss = [m.addVar(f"ploss_{kk}_{t}", lb=0.0, ub=case.mop.loss_coefficient[kk] * case.mop.s_max[kk] / s)
                     for kk in range(k)]
            # cones are scaled so that SCIP's absolute feasibility tolerance (1e-7) is small relative
            # to their per-unit values (unscaled, losses of ~1e-4 p.u. were violated by 100 %)
            for kk in range(k):
                f_cap = 1.0 / (case.mop.s_max[kk] / s)
                m.addCons((f_cap * pm[kk]) * (f_cap * pm[kk]) + (f_cap * qm[kk]) * (f_cap * qm[kk]) <= 1.0)
                a = case.mop.loss_coefficient[kk]
                if a > 0:
                    f = f_cap / a
                    m.addCons((a * f * pm[kk]) * (a * f * pm[kk]) + (a * f * qm[kk]) * (a * f * qm[kk])
                              <= (f * ploss[kk]) * (f * ploss[kk]))
            if k:
                m.addCons(quicksum(pm) + quicksum(ploss) == 0)
            # nodal balances
            inj_p = [-day.base_p[i, t] / s for i in range(nbus)]
            inj_q = [-day.base_q[i, t] / s for i in range(nbus)]
            for n in range(len(self.followers)):
                inj_p[pos[n]] = inj_p[pos[n]] - self.exchange[n][t] * (1.0 / s)
            if k:
                for kk, i in enumerate(mpos):
                    inj_p[i] = inj_p[i] + pm[kk]
                    inj_q[i] = inj_q[i] + qm[kk]
            inj_p[fd.root] = inj_p[fd.root] + pg
            inj_q[fd.root] = inj_q[fd.root] + qg
            for i in range(nbus):
                into = [j for j in range(nb) if fd.to_pos[j] == i]
                out = [j for j in range(nb) if fd.from_pos[j] == i]
                m.addCons(quicksum(p[j] - fd.r[j] * cur[j] for j in into) - quicksum(p[j] for j in out)
                          + inj_p[i] == 0)
                m.addCons(quicksum(q[j] - fd.x[j] * cur[j] for j in into) - quicksum(q[j] for j in out)
                          + inj_q[i] == 0)
            for j in range(nb):
                a, b = fd.from_pos[j], fd.to_pos[j]
                m.addCons(v[b] == v[a] - 2 * (fd.r[j] * p[j] + fd.x[j] * q[j]) + (fd.r[j] ** 2 + fd.x[j] ** 2) * cur[j])
                f = 1.0 / max(pb[j], qb[j])
                m.addCons((f * p[j]) * (f * p[j]) + (f * q[j]) * (f * q[j]) <= (f * f * cur[j]) * v[a])
            m.addCons(v[fd.root] == case.v_slack**2)
            excess = [None] * nbus
            for i in range(nbus):
                m.addCons(dev[i] >= v[i] - 1)
                m.addCons(dev[i] >= 1 - v[i])
            if self.voltage_limits == "soft":
                for i in others:
                    excess[i] = m.addVar(f"excess_{i}_{t}", lb=0.0, ub=1.0)
                    m.addCons(v[i] >= case.v_min**2 - excess[i])
                    m.addCons(v[i] <= case.v_max**2 + excess[i])
            elif self.voltage_limits == "hard":
                for i in others:
                    m.chgVarLb(v[i], case.v_min**2)
                    m.chgVarUb(v[i], case.v_max**2)
            prem = day.buy_price[t] - day.sell_price[t]
            econ = s * (day.sell_price[t] * pg + prem * buy) + obj.loss_cost * s * (
                quicksum(fd.r[j] * cur[j] for j in range(nb)) + quicksum(ploss))
            cost.append(obj.weigh(econ, obj.voltage_cost * quicksum(dev))
                        + soft_limit_penalty(quicksum(e for e in excess if e is not None)))
            for key, val in (("p", p), ("q", q), ("l", cur), ("v", v), ("dev", dev), ("pm", pm), ("qm", qm),
                             ("ploss", ploss), ("excess", excess)):
                net[key][:, t] = val
            net["pg"][t], net["qg"][t], net["buy"][t] = pg, qg, buy
        return quicksum(cost)

    # values of a known point (warm start, and the model objective of the OA master) ---------------
    def follower_values(self, prices: np.ndarray, response) -> dict:
        """Values of every follower variable for the exact best response to `prices`.

        The multipliers are moved into their derived boxes (bigm.py: clipping ν keeps a KKT point)
        and the bound multipliers recomputed from stationarity.
        """
        vals = {}
        for t, var in enumerate(self.lam):
            vals[var.name] = float(prices[t])
        for n, f in zip(self.members, self.followers):
            qp, b = f.qp, f.bounds
            x, nu, _, _ = standard_solution(self.case, response, n)
            nu = np.clip(nu, b.nu_lo, b.nu_hi)
            net = -(qp.Q * x + qp.c + qp.G.T @ prices + qp.E.T @ nu)  # μ_u − μ_l
            for i in range(qp.size):
                vals[f.x[i].name] = float(np.clip(x[i], qp.lower[i], qp.upper[i]))
            for j in range(qp.d.size):
                vals[f.nu[j].name] = float(nu[j])
            for i, var in f.net.items():
                vals[var.name] = float(net[i])
            for i in range(qp.size):
                at_l = x[i] - qp.lower[i] <= AT_BOUND_TOL
                at_u = qp.upper[i] - x[i] <= AT_BOUND_TOL
                if f.mu_l[i] is not None:
                    vals[f.mu_l[i].name] = float(max(-net[i], 0.0)) if at_l else 0.0
                    vals[f.z_l[i].name] = 1.0 if at_l else 0.0
                    if at_l:
                        vals[f.x[i].name] = float(qp.lower[i])
                if f.mu_u[i] is not None:
                    vals[f.mu_u[i].name] = float(max(net[i], 0.0)) if at_u and not at_l else 0.0
                    vals[f.z_u[i].name] = 1.0 if at_u and not at_l else 0.0
                    if at_u and not at_l:
                        vals[f.x[i].name] = float(qp.upper[i])
            for i, aux in f.sq:
                vals[aux.name] = float(qp.Q[i] * vals[f.x[i].name] ** 2)
        return vals

    def network_values(self, result) -> dict:
        """Values of the network variables (method "misocp") from a `DispatchResult` of the same P."""
        s, case = self.case.s_base, self.case
        net, vals = self.net, {}
        put = lambda arr, data: vals.update({v.name: float(d) for v, d in zip(arr.ravel(), np.ravel(data))
                                             if v is not None})
        fd = feeder(case)
        p, q = result.branch_p / s, result.branch_q / s
        # the interior-point solution may sit ~1e-9 inside a cone's wrong side: lift ℓ onto the cone
        current = np.maximum(result.current_sq, (p**2 + q**2) / result.v[fd.from_pos] * (1 + 1e-9))
        put(net["p"], p)
        put(net["q"], q)
        put(net["l"], current)
        put(net["v"], result.v)
        put(net["pg"], result.grid_power / s)
        put(net["qg"], result.grid_q / s)
        put(net["buy"], np.maximum(result.grid_power / s, 0.0))
        put(net["dev"], np.abs(result.v - 1))
        if net["pm"].size:
            put(net["pm"], result.mop_p / s)
            put(net["qm"], result.mop_q / s)
            apparent = np.hypot(result.mop_p, result.mop_q) / s
            put(net["ploss"], np.maximum(result.mop_loss / s, case.mop.loss_coefficient[:, None] * apparent))
        if self.voltage_limits == "soft":
            excess = np.maximum(np.maximum(case.v_min**2 - result.v, result.v - case.v_max**2), 0.0)
            put(net["excess"], excess)
        return vals

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
        """The incumbent: prices, follower variables (x, ν, μ) and, for "misocp", the network state."""
        m = self.m
        sol = m.getBestSol()
        get = lambda v: m.getSolVal(sol, v)
        out = {"prices": np.array([get(v) for v in self.lam]), "followers": []}
        for f in self.followers:
            val = lambda lst: np.array([0.0 if v is None else get(v) for v in lst])
            net = np.zeros(f.qp.size)
            for i, v in f.net.items():
                net[i] = get(v)
            out["followers"].append({"x": val(f.x), "nu": val(f.nu), "mu_l": val(f.mu_l), "mu_u": val(f.mu_u),
                                     "net_fixed": net})
        if self.theta is None:
            s = self.case.s_base
            arr = lambda key: np.vectorize(lambda v: 0.0 if v is None else get(v), otypes=[float])(self.net[key]) \
                if self.net[key].size else np.zeros(self.net[key].shape)
            out["mop_p"], out["mop_q"] = arr("pm") * s, arr("qm") * s
            out["mop_loss"] = arr("ploss") * s
        out["objective"] = m.getSolObjVal(sol)
        return out


# --- the network's cost as a function of the exchange power -----------------------------------------
def hourly_network_cost(case: Case, day: Day, result, voltage_limits: str) -> np.ndarray:
    """(24,) ¥: the dispatch model's objective hour by hour, Φ_t(P_t), from a `DispatchResult`.

    ω_1 (grid cost + c_loss (line + MOP losses)) + ω_2 c_V Σ_i |v − 1| (`evaluate.hourly_network_costs`)
    plus the soft-limit penalty when the limits are soft.
    """
    obj = case.objective
    grid, line, mop, deviation = hourly_network_costs(case, day, result.grid_power, result.line_loss,
                                                      result.mop_loss, result.v)
    cost = obj.weigh(grid + line + mop, deviation)
    if voltage_limits == "soft":
        others = np.arange(result.v.shape[0]) != feeder(case).root
        v = result.v[others]
        cost = cost + soft_limit_penalty(np.maximum(np.maximum(case.v_min**2 - v, v - case.v_max**2), 0).sum(0))
    return cost


def network_cut(case: Case, day: Day, exchange: np.ndarray, mop: str, voltage_limits: str):
    """(Φ_t(P̂) (24,), gradient (N, 24) ¥/MW, DispatchResult) at the exchange power P̂ (N, 24) MW.

    The gradient of Φ_t with respect to P_n,t is ω_1 × the LMP at prosumer n's bus (the LMPs are
    reported per ω_1); Φ_t is convex, so Φ_t(P) >= Φ_t(P̂) + gradient·(P − P̂) for every P.
    """
    res = dispatch_model(case, "socp", mop, voltage_limits).solve(day, exchange, accurate=True)  # exact cuts
    if not res.status.startswith("optimal"):
        return None, None, res
    w1 = case.objective.omega_economic
    grad = (w1 if w1 > 0 else 1.0) * res.lmp[case.bus_position(case.prosumers.bus)]
    return hourly_network_cost(case, day, res, voltage_limits), grad, res


# --- verification ---------------------------------------------------------------------------------
def _follower_cost(qp, x, prices) -> float:
    return float(0.5 * x @ (qp.Q * x) + qp.c @ x + prices @ (qp.G @ x + qp.h))


def _revenue_by_duality(qp, f: dict, prices) -> float:
    """λᵀP_n from the model's (x, ν, μ) by strong duality (MODEL.md), ¥."""
    x, nu, mu_l, mu_u = f["x"], f["nu"], f["mu_l"], f["mu_u"]
    return float(prices @ qp.h - x @ (qp.Q * x) - qp.c @ x - qp.d @ nu + qp.lower @ mu_l - qp.upper @ mu_u
                 - qp.upper @ f["net_fixed"])


def scored_objective(outcome: Outcome, voltage_limits: str) -> float:
    """What the model minimises, from `evaluate`: F, plus the soft-limit penalty when limits are soft."""
    penalty = 0.0
    if voltage_limits == "soft" and outcome.dispatch is not None:
        penalty = float(outcome.dispatch.voltage_penalty)
    return float(outcome.dno_objective) + penalty


def verify(case: Case, day: Day, model: _Model, sol: dict, model_objective: float, setpoints: np.ndarray,
           objective_rtol: float = OBJECTIVE_RTOL, schedule_tol: float = 1e-5, slack: float = 0.0
           ) -> tuple[Verification, Outcome]:
    """Check a solution against the exact followers and the one scorer (see `Verification`).

    The model's objective may not be below `evaluate`'s (beyond `objective_rtol`): that would mean
    the model promises what the market cannot deliver. It may exceed it by up to `slack` (¥), the
    model's own open gap: an incumbent found before the time limit need not dispatch the network
    optimally for its exchange power, while `evaluate` does.
    """
    prices = sol["prices"]
    response = best_response(case, day, prices)
    msgs = []
    exch_err = sched_err = cost_err = 0.0
    ratio, at_bigm = 0.0, 0
    for n, (f, fs) in enumerate(zip(model.followers, sol["followers"])):
        qp = f.qp
        x_ref = standard_solution(case, response, n)[0]
        sched_err = max(sched_err, float(np.abs(fs["x"] - x_ref).max()))
        exch_err = max(exch_err, float(np.abs(qp.G @ fs["x"] + qp.h - response.exchange_power[n]).max()))
        cost_err = max(cost_err, abs(_follower_cost(qp, fs["x"], prices) - float(response.cost[n])))
        for mu, big in ((fs["mu_l"], f.bounds.mu_l_max), (fs["mu_u"], f.bounds.mu_u_max)):
            has = big > 0
            if has.any():
                r = mu[has] / big[has]
                ratio = max(ratio, float(r.max()))
                at_bigm += int((r >= BIGM_TOL).sum())
    kkt = max(kkt_residuals(case, day, response).values())
    if not response.ok:
        msgs.append("follower re-solve failed or charged and discharged at once")
    if sched_err > schedule_tol:
        msgs.append(f"follower schedules differ from the exact best response by {sched_err:.2e}")
    if cost_err > schedule_tol * 1e3:
        msgs.append(f"follower costs differ from the exact best response by {cost_err:.2e} ¥")
    if at_bigm:
        msgs.append(f"{at_bigm} multipliers sit at their Big-M")
    outcome = evaluate(case, day, prices, mop=model.mop, voltage_limits=model.voltage_limits, response=response)
    # "optimal_inaccurate" (the dispatch reached only its reduced accuracy, seen with soft limits and
    # the MOP off) still gives a value; it passes only if the model's objective matches it
    scored = outcome.status.startswith("optimal")
    evaluated = scored_objective(outcome, model.voltage_limits) if scored else float("nan")
    err = model_objective - evaluated
    tol = objective_rtol * max(1.0, abs(evaluated))
    if not np.isfinite(evaluated):
        msgs.append(f"evaluate failed: {outcome.status}")
    elif err < -tol or err > tol + slack:
        msgs.append(f"model objective {model_objective:.4f} differs from evaluate {evaluated:.4f}")
    setpoint_obj = float("nan")
    if model.mop == "opf" and len(case.mop):
        try:
            setpoint_obj = float(evaluate(case, day, prices, mop=setpoints, response=response).dno_objective)
        except ValueError as err_sp:  # set-points off the MOP's DC balance (e.g. losses not priced)
            msgs.append(f"MOP set-points not scorable: {err_sp}")
    ver = Verification(exchange_error=exch_err, schedule_error=sched_err, cost_error=cost_err, follower_kkt=kkt,
                       bigm_ratio=ratio, at_bigm=at_bigm, model_objective=float(model_objective),
                       evaluated_objective=evaluated, objective_error=err, setpoint_objective=setpoint_obj,
                       passed=not msgs, messages=tuple(msgs))
    return ver, outcome


# --- heuristics for the warm start / first cuts ----------------------------------------------------
def start_prices(case: Case, day: Day, price_lo=None, price_hi=None) -> list[np.ndarray]:
    """Heuristic price vectors, each projected onto the rules: the HV tariff, a flat price at the
    cap, a bang-bang vector (highest price where the prosumers import, lowest where they export),
    and the lowest prices."""
    lo, hi = price_box(case, day, price_lo, price_hi)
    tariff = project_prices(case, day, day.buy_price, price_lo, price_hi)
    flat = project_prices(case, day, np.full(HOURS, case.price_rules.mean_cap), price_lo, price_hi)
    # bang-bang: the highest price where the prosumers together import under the tariff, the lowest
    # where they export (the shape of the optimum when revenue dominates), projected onto the rules
    net = best_response(case, day, tariff).exchange_power.sum(axis=0)
    bang = project_prices(case, day, np.where(net > 0, hi, lo), price_lo, price_hi)
    return [tariff, flat, bang, lo.copy()]


def local_search(case: Case, day: Day, prices: np.ndarray, cuts: list, lo: np.ndarray, hi: np.ndarray,
                 steps=(100.0, 30.0, 10.0, 3.0, 1.0), max_evals: int = 20000) -> np.ndarray:
    """Pattern search on the prices against a surrogate of the DNO objective (heuristic, upper bound).

    The surrogate is exact for the followers (`best_response`) and uses the outer approximation
    max_k cut_k(P) for the network; moves change one price, or raise one and lower another by the
    same step (so the mean cap stays kept). The caller scores the result exactly with `evaluate`.
    """
    w1, cap = case.objective.omega_economic, HOURS * case.price_rules.mean_cap
    phis = np.array([c[0] for c in cuts])  # (K, 24)
    grads = np.array([c[1] for c in cuts])  # (K, N, 24)
    p_hats = np.array([c[2] for c in cuts])

    def value(lam):
        p = best_response(case, day, lam).exchange_power
        theta = (phis + (grads * (p[None] - p_hats)).sum(axis=1)).max(axis=0)
        return float(theta.sum()) - w1 * float((lam * p).sum())

    lam = np.clip(np.asarray(prices, float), lo, hi)
    best, evals = value(lam), 1
    for step in steps:
        improved = True
        while improved and evals < max_evals:
            improved = False
            moves = [(t, None, sign) for t in range(HOURS) for sign in (1.0, -1.0)]
            moves += [(t, s, 1.0) for t in range(HOURS) for s in range(HOURS) if s != t]
            for t, s, sign in moves:
                cand = lam.copy()
                cand[t] += sign * step
                if s is not None:
                    cand[s] -= step
                cand = np.clip(cand, lo, hi)
                if cand.sum() > cap + 1e-9 or np.array_equal(cand, lam):
                    continue
                val = value(cand)
                evals += 1
                if val < best - 1e-9:
                    lam, best, improved = cand, val, True
    return lam


# --- solving ----------------------------------------------------------------------------------------
def _new_model(case, day, network, mop, voltage_limits, lo, hi, bigm_scale, threads, verbose, scip_params=None):
    return _Model(case, day, network, mop, voltage_limits, lo, hi, bigm_scale, threads, verbose,
                  scip_params=SCIP_PARAMS if scip_params is None else scip_params)


def _scip_status(m) -> str:
    return str(m.getStatus())


def default_threads() -> int:
    """Threads for SCIP when the caller does not say: `THREADS_ENV` if set, else the CPUs this
    process may use, at most `MAX_DEFAULT_THREADS`."""
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"{THREADS_ENV}={env!r}: must be a positive integer")
        return int(env)
    return max(1, min(MAX_DEFAULT_THREADS, available_cpus()))


def solve(case: Case, day: Day, time_limit: float = 300.0, gap: float = 1e-4, method: str = "oa",
          mop: str = "opf", voltage_limits: str = "hard", price_lower=None, price_upper=None,
          threads: int | None = None, bigm_scale: float = 1.0, verbose: bool = False, max_iterations: int = 200,
          scip_params: dict | None = None) -> KKTResult:
    """The bi-level optimum of `day`: the DNO's prices with a proven bound.

    time_limit: seconds of wall time for the whole solve. gap: stop at this relative gap (UB − LB)/|UB|.
    method: "oa" (outer approximation of the network, default) or "misocp" (one SCIP model).
    mop: "opf" or "off"; voltage_limits: "hard", "soft" or "none" (as `evaluate`; the scenarios).
    price_lower, price_upper: optional (24,) narrowing of the case's price bounds (set both to fix an
    hour's price). threads: SCIP's threads; None (default) takes `default_threads()`: one
    (`MAX_DEFAULT_THREADS`; benchmarks/README #40: two concurrent searches were slower on 2 cores),
    or `STACKELBERG_MOP_THREADS`. Above one, SCIP solves concurrently (one search per thread,
    sharing solutions and bounds). bigm_scale: multiplies the derived Big-Ms (1.0; smaller values exist
    only to test that the verification catches them).
    scip_params: SCIP parameters for the master (default `SCIP_PARAMS`).
    Returns a `KKTResult`; the objective is λ*'s score by `evaluate`, the bound SCIP's proven bound.
    """
    checks.choice("method", method, METHODS)
    checks.market_options(case, day, mop, voltage_limits)
    time_limit = checks.number("time_limit", time_limit, lo=0, lo_open=True, unit="s")
    gap = checks.number("gap", gap, lo=0, hi=1)
    threads = default_threads() if threads is None else checks.integer("threads", threads, lo=1)
    bigm_scale = checks.number("bigm_scale", bigm_scale, lo=0, lo_open=True)
    max_iterations = checks.integer("max_iterations", max_iterations, lo=1)
    checks.flag("verbose", verbose)
    start = time.perf_counter()
    lo, hi = price_box(case, day, price_lower, price_upper)
    if method == "misocp":
        return _solve_misocp(case, day, time_limit, gap, mop, voltage_limits, lo, hi, threads, bigm_scale,
                             verbose, start, scip_params)
    return _solve_oa(case, day, time_limit, gap, mop, voltage_limits, lo, hi, threads, bigm_scale, verbose,
                     start, max_iterations, scip_params)


def _finish(case, day, model, sol, model_obj, bound, setpoints, status_hint, solver_status, start, method,
            gap_target, iterations, history) -> KKTResult:
    if not bound < 1e19:  # SCIP reports an infeasible master as a bound of 1e20
        bound = float("nan")
    ver, outcome = verify(case, day, model, sol, model_obj, setpoints, slack=max(0.0, model_obj - bound)
                          if np.isfinite(bound) else 0.0)
    if np.isfinite(bound) and bound > ver.evaluated_objective + 1e-6 * max(1.0, abs(bound)):
        ver = dataclasses.replace(ver, passed=False, messages=ver.messages + (
            f"the proven bound {bound:.4f} exceeds an achievable objective {ver.evaluated_objective:.4f}",))
    objective = ver.evaluated_objective
    rel = (objective - bound) / max(abs(objective), 1e-9) if np.isfinite(objective) else float("nan")
    if not ver.passed:
        status = "verification_failed: " + "; ".join(ver.messages)
    elif rel <= gap_target:
        status = "optimal"
    else:
        status = status_hint
    return KKTResult(prices=sol["prices"], mop_setpoints=setpoints, objective=objective, best_bound=bound, gap=rel,
                     status=status, solver_status=solver_status, solve_time=time.perf_counter() - start,
                     method=method, verification=ver, outcome=outcome, iterations=iterations, history=history)


def _failed_certificate(case, day, model, prices, response, res, lb, start, gap, it, history, message,
                        method="oa"):
    outcome = evaluate(case, day, prices, mop=model.mop, voltage_limits=model.voltage_limits, response=response)
    obj = scored_objective(outcome, model.voltage_limits)
    ver = Verification(exchange_error=np.nan, schedule_error=np.nan, cost_error=np.nan, follower_kkt=np.nan,
                       bigm_ratio=np.nan, at_bigm=0, model_objective=np.nan, evaluated_objective=obj,
                       objective_error=np.nan, setpoint_objective=np.nan, passed=False, messages=(message,))
    setpoints = _setpoints(case, res.mop_p, res.mop_q) if model.mop == "opf" else np.zeros((2, len(case.mop), HOURS))
    lb = lb if lb < 1e19 else float("nan")
    return KKTResult(prices=prices, mop_setpoints=setpoints, objective=obj, best_bound=lb,
                     gap=(obj - lb) / max(abs(obj), 1e-9), status="verification_failed: " + message,
                     solver_status=str(model.m.getStatus()), solve_time=time.perf_counter() - start, method=method,
                     verification=ver, outcome=outcome, iterations=it, history=history)


def _setpoints(case, p, q) -> np.ndarray:
    """[P; Q] (2, K, 24) MW/Mvar with the DC balance Σ_k (P_k + A_k |S_k|) = 0 restored exactly.

    A solver leaves the balance off by its tolerance (~1e-7 p.u.); the terminal with the largest
    rating absorbs the residual (Newton on its P), so `evaluate` accepts the set-points.
    """
    k = len(case.mop)
    if p is None or p.shape != (k, HOURS):
        return np.zeros((2, k, HOURS))
    p, q = np.array(p, float), np.array(q, float)
    a = case.mop.loss_coefficient
    j = int(np.argmax(case.mop.s_max))
    for _ in range(20):
        resid = (p + a[:, None] * np.hypot(p, q)).sum(axis=0)
        if np.abs(resid).max() < 1e-12:
            break
        slope = 1.0 + a[j] * p[j] / np.maximum(np.hypot(p[j], q[j]), 1e-12)
        p[j] -= resid / slope
    return np.stack([p, q])


def _solve_misocp(case, day, time_limit, gap, mop, voltage_limits, lo, hi, threads, bigm_scale, verbose,
                  start, scip_params=None) -> KKTResult:
    model = _new_model(case, day, True, mop, voltage_limits, lo, hi, bigm_scale, threads, verbose, scip_params)
    for prices in start_prices(case, day, lo, hi):
        out = evaluate(case, day, prices, mop=mop, voltage_limits=voltage_limits)
        if out.status != "optimal":
            continue
        vals = model.follower_values(prices, out.response)
        followers_only = dict(vals)
        vals.update(model.network_values(out.dispatch))
        if not model.add_solution(vals, scored_objective(out, voltage_limits)):
            # the interior-point dispatch can miss SCIP's tolerances on a cone: let SCIP complete
            # the network from the prices and the followers' KKT point
            model.add_solution(followers_only, None)
    m = model.m
    m.setParam("limits/time", max(1.0, time_limit - (time.perf_counter() - start)))
    m.setParam("limits/gap", gap)
    model.optimize()
    if m.getNSols() == 0:
        prices = start_prices(case, day, lo, hi)[0]
        out = evaluate(case, day, prices, mop=mop, voltage_limits=voltage_limits)
        return _failed_certificate(case, day, model, prices, out.response, out.dispatch, m.getDualbound(), start,
                                   gap, 1, [], f"SCIP found no solution ({m.getStatus()})", method="misocp")
    sol = model.solution()
    setpoints = _setpoints(case, sol.get("mop_p"), sol.get("mop_q"))
    bound = m.getDualbound()
    history = [(time.perf_counter() - start, sol["objective"], bound)]
    scip_status = _scip_status(m)
    hint = {"timelimit": "time_limit"}.get(scip_status, scip_status)  # one vocabulary with "oa"
    return _finish(case, day, model, sol, sol["objective"], bound, setpoints, hint, scip_status,
                   start, "misocp", gap, 1, history)


def _bound_tracker_class():
    from pyscipopt import SCIP_EVENTTYPE, Eventhdlr

    class BoundTracker(Eventhdlr):
        """Appends (time s, best upper bound, master's dual bound) to a history as the tree grows."""

        def __init__(self, history, best, elapsed):
            self.history, self.best, self.elapsed, self.last = history, best, elapsed, -np.inf

        def eventinit(self):
            self.model.catchEvent(SCIP_EVENTTYPE.NODESOLVED, self)

        def eventexit(self):
            self.model.dropEvent(SCIP_EVENTTYPE.NODESOLVED, self)

        def eventexec(self, event):
            if self.history is None:  # switched off (the certificate's fixed-price solve)
                return
            bound = self.model.getDualbound()
            if bound > self.last + 1e-9 * max(1.0, abs(bound)):
                self.last = bound
                self.history.append((self.elapsed(), self.best["ub"], bound))

    return BoundTracker


def _BoundTracker(history, best, elapsed):  # a factory: PySCIPOpt is imported lazily
    return _bound_tracker_class()(history, best, elapsed)


def _next_master(model, new_master, threads: int):
    """The master for the next solve, on `threads`. After a concurrent solve SCIP keeps the solve's
    stop flag (its synchronisation store is not reset), so every later solve of that model stops at
    once: then, or for another number of threads, a new model (0.03 s on the default case; the cuts
    are pushed before it is solved); else the same model, back in the problem stage."""
    if model.threads > 1 or threads != model.threads:
        return new_master(threads)
    if model.m.getStage() != 1:  # not in the problem stage
        model.m.freeTransform()
    return model


def _solve_oa(case, day, time_limit, gap, mop, voltage_limits, lo, hi, threads, bigm_scale, verbose, start,
              max_iterations, scip_params=None) -> KKTResult:
    from pyscipopt import quicksum

    w1 = case.objective.omega_economic
    n_pros = len(case.prosumers)
    cuts: list = []  # (Φ (24,), gradient (N, 24), P̂ (N, 24)), valid for every model below
    seen: dict = {}  # rounded prices -> (score, prices, response, dispatch)
    best = {"ub": np.inf, "prices": None}
    elapsed = lambda: time.perf_counter() - start

    def push_cuts(model):
        """Add the cuts this model has not seen yet."""
        for phi, grad, p_hat in cuts[model.n_cuts:]:
            for t in range(HOURS):
                model.m.addCons(model.theta[t] >= phi[t] + quicksum(
                    grad[n, t] * (model.exchange[n][t] - p_hat[n, t]) for n in range(n_pros)))
        model.n_cuts = len(cuts)

    def score(prices):
        """Exact score of prices (best response + dispatch), and a cut at the response."""
        key = tuple(np.round(prices, 6))
        if key in seen:
            return seen[key]
        response = best_response(case, day, prices)
        phi, grad, res = network_cut(case, day, response.exchange_power, mop, voltage_limits)
        if phi is None or not response.ok:
            seen[key] = (np.inf, prices, response, None)
            return seen[key]
        cuts.append((phi, grad, response.exchange_power.copy()))
        value = float(phi.sum()) - w1 * float((prices * response.exchange_power).sum())
        seen[key] = (value, prices, response, res)
        if value < best["ub"]:
            best.update(ub=value, prices=prices.copy())
        return seen[key]

    def warm_start(model, prices):
        value, prices, response, _ = score(prices)
        if not np.isfinite(value):
            return
        vals = model.follower_values(prices, response)
        exch = np.array([[response.exchange_power[n, t] for t in range(HOURS)] for n in range(n_pros)])
        total = 0.0
        for t in range(HOURS):
            theta = max(phi[t] + float(grad[:, t] @ (exch[:, t] - p_hat[:, t])) for phi, grad, p_hat in cuts)
            vals[model.theta[t].name] = theta
            total += theta
        model.add_solution(vals, total - w1 * float((prices * exch).sum()))

    def run(model, time_cap, rel_gap, track=None):
        """Solve `model` (warm-started at the best prices) and score its best solutions."""
        push_cuts(model)
        if best["prices"] is not None:
            warm_start(model, best["prices"])
        model.m.setParam("limits/time", max(1.0, time_cap))
        model.m.setParam("limits/gap", rel_gap)
        # the bound tracker (a Python event handler) runs on one thread only: with more, the history
        # holds one point per outer iteration
        if track is not None and model.threads == 1 and not hasattr(model, "tracker"):
            model.tracker = _BoundTracker(track, best, elapsed)
            model.m.includeEventhdlr(model.tracker, "bound_tracker", "records the bound")
        model.optimize()
        new = 0
        for sol in model.m.getSols()[:5]:
            # SCIP's values may sit ~1e-10 outside the price bounds: project, so that λ* keeps the rules
            # exactly (the certificate fixes the prices in the model)
            prices = project_prices(case, day, np.array([model.m.getSolVal(sol, v) for v in model.lam]), lo, hi)
            if tuple(np.round(prices, 6)) not in seen:
                score(prices)
                new += 1
        return new

    def polish(rounds=3):
        """Local search on the surrogate from the best prices, each result scored exactly (new cut)."""
        for _ in range(rounds):
            before = best["ub"]
            score(local_search(case, day, best["prices"], cuts, lo, hi))
            if best["ub"] >= before - 1e-6 or elapsed() > time_limit:
                break

    # 1. heuristic prices: each scored exactly, each a first set of cuts; then a local search
    for prices in start_prices(case, day, lo, hi):
        score(prices)
    polish()
    if verbose:
        print(f"start prices and local search: UB {best['ub']:.3f} ({elapsed():.1f} s)")
    # 2. the master: followers' KKT + price rules + cuts; its bound is the proven lower bound
    def new_master(n_threads):
        return _new_model(case, day, False, mop, voltage_limits, lo, hi, bigm_scale, n_threads, verbose, scip_params)

    model = new_master(threads)
    lb, history, status, it = -np.inf, [], "time_limit", 0
    for it in range(1, max_iterations + 1):
        remaining = time_limit - elapsed()
        if remaining <= 1.0:
            break
        new = run(model, remaining, 0.25 * gap, track=history)
        lb = max(lb, model.m.getDualbound())
        history.append((elapsed(), best["ub"], lb))
        if verbose:
            print(f"OA iteration {it}: UB {best['ub']:.3f} LB {lb:.3f} cuts {len(cuts)} ({elapsed():.1f} s)")
        if best["ub"] - lb <= gap * abs(best["ub"]):
            status = "optimal"
            break
        if new == 0 and _scip_status(model.m) == "optimal":
            status = "stalled"
            break
        model = _next_master(model, new_master, model.threads)
    # the certificate: the master's own KKT point at λ* (prices fixed), its exact network cost and
    # its model objective; a master that admits no follower response at λ* fails the verification
    _, prices, response, res = seen[tuple(np.round(best["prices"], 6))]
    if hasattr(model, "tracker"):
        model.tracker.history = None
    model = _next_master(model, new_master, 1)  # prices fixed: one thread
    m = model.m
    for t, var in enumerate(model.lam):
        m.chgVarLb(var, float(prices[t]))
        m.chgVarUb(var, float(prices[t]))
    push_cuts(model)
    warm_start(model, prices)
    m.setParam("limits/time", 60.0)
    m.setParam("limits/gap", 1e-6)
    m.optimize()
    if m.getNSols() == 0:
        return _failed_certificate(case, day, model, prices, response, res, lb, start, gap, it, history,
                                   f"the KKT model admits no follower response at λ* ({m.getStatus()})")
    sol = model.solution()
    sol["prices"] = prices
    p_model = np.array([f.qp.G @ fs["x"] + f.qp.h for f, fs in zip(model.followers, sol["followers"])])
    if np.abs(p_model - response.exchange_power).max() > 1e-9:  # price the model's own exchange power
        res = dispatch_model(case, "socp", mop, voltage_limits).solve(day, p_model)
    phi = hourly_network_cost(case, day, res, voltage_limits)
    model_obj = float(phi.sum()) - w1 * sum(
        _revenue_by_duality(f.qp, fs, prices) for f, fs in zip(model.followers, sol["followers"]))
    setpoints = _setpoints(case, res.mop_p, res.mop_q) if mop == "opf" else np.zeros((2, len(case.mop), HOURS))
    return _finish(case, day, model, sol, model_obj, lb, setpoints, status, _scip_status(model.m), start, "oa", gap,
                   it, history)


# --- the policy -------------------------------------------------------------------------------------
class KKTPolicy:
    """The bi-level optimum as a pricing policy: ``policy(day) -> prices (24,)``, like any agent.

    Solves each day once (cached by the day's name) with `solve(case, day, **options)`;
    ``setpoints(day)`` gives the MOP set-points (2, K, 24) and ``result(day)`` the full `KKTResult`.
    """

    def __init__(self, case: Case, **options):
        self.case, self.options = case, options
        self._results: dict[str, KKTResult] = {}

    def result(self, day: Day) -> KKTResult:
        if day.name not in self._results:
            self._results[day.name] = solve(self.case, day, **self.options)
        return self._results[day.name]

    def prices(self, day: Day) -> np.ndarray:
        return self.result(day).prices.copy()

    __call__ = prices

    def setpoints(self, day: Day) -> np.ndarray:
        return self.result(day).mop_setpoints.copy()
