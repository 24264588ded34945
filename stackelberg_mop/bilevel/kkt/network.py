"""The network in the bi-level model: its cost Φ(P) and cuts for the outer approximation, and the
SOCP DistFlow rows of the one-tree model (method "misocp"), generated from the dispatch model.

Given the exchange power P the network's optimal cost Φ(P) = Σ_t Φ_t(P_t) (the dispatch of
`powerflow.dispatch`) is convex and separable by hour, with subgradient ω_1 × the LMPs at the
prosumers' buses, so θ_t >= Φ_t(P̂_t) + ω_1 lmp_t·(P_t − P̂_t) is valid for every P (`network_cut`).

The "misocp" rows are not written here: they are the one-hour dispatch model's compiled conic data
(`DispatchModel(hours=1)` as cvxpy hands it to Clarabel: A x + s = b, s ∈ K, cost c·x + offset),
instantiated in SCIP once per hour (`ConicHours`). The right-hand side depends on the exchange power
only through the bus demand parameter, which is affine in the followers' P_n,t. Clarabel's cones
become SCIP rows: the zero cone's equalities, the nonnegative cone's inequalities, and each
second-order cone s_0 >= ||s_1:|| the quadratic

    Σ_{j>=1} s_j² − s_0² <= 0  and  s_0 >= 0,   s = b − A x,

expanded into monomials so that its cancellations are exact (a branch's rotated cone
||(2P, 2Q, ℓ − v)|| <= ℓ + v becomes 4(P² + Q² − ℓv) <= 0, a form SCIP's SOC handler recognises) and
scaled so that its largest quadratic term over the variables' box is 1 (SCIP's feasibility tolerance
is absolute: unscaled, MOP losses of ~1e-4 p.u. are violated by 100 %). A constraint added to the
dispatch model thus reaches the master with no line here; only a new variable wants a range in
`_ranges` (without one it is left unbounded). Every solution is re-scored by `evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ...cases import HOURS, Case
from ...data import Day
from ...powerflow import dispatch_model, feeder
from ...powerflow.formulations import soft_limit_penalty, voltage_excess
from ...scoring import economic_costs, hourly_network_costs


def hourly_network_cost(case: Case, day: Day, result, voltage_limits: str) -> np.ndarray:
    """(24,) ¥: the dispatch model's objective hour by hour, Φ_t(P_t), from a `DispatchResult`.

    ω_1 (grid cost + DG cost + c_loss (line + MOP losses)) + ω_2 c_V Σ_i |v − 1|
    (`evaluate.hourly_network_costs`)
    plus the soft-limit penalty when the limits are soft.
    """
    hourly = hourly_network_costs(case, day, result.grid_power, result.line_loss, result.mop_loss, result.v,
                                  result.dg_p)
    cost = case.objective.weigh(economic_costs(hourly), hourly[3])
    if voltage_limits == "soft":
        others = np.arange(result.v.shape[0]) != feeder(case).root
        cost = cost + soft_limit_penalty(voltage_excess(case, result.v[others]).sum(0))
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


@dataclass(frozen=True)
class ConicHours:
    """The one-hour dispatch problem's conic data for every hour of a day, per unit on case.s_base:
    minimise c_t·x + offset_t subject to A x + s = b_t + B P_t, s ∈ K (Clarabel's convention).

    A: (m, n) CSR; zero, nonneg: the rows of the zero and nonnegative cones; socs: each second-order
    cone's rows; c (n, 24) ¥; offset (24,) ¥; b (m, 24); exchange_rhs B (m, N) per MW of P_n,t;
    columns: (variable name, first column, size) of the one-hour model's cvxpy variables.
    """

    A: sp.csr_array
    zero: np.ndarray
    nonneg: np.ndarray
    socs: list
    c: np.ndarray
    offset: np.ndarray
    b: np.ndarray
    exchange_rhs: np.ndarray
    columns: list


def conic_hours(case: Case, day: Day, mop: str, voltage_limits: str) -> ConicHours:
    """The `ConicHours` of the "socp" dispatch model with these options on `day`."""
    model = dispatch_model(case, "socp", mop, voltage_limits, hours=1)
    one = model.direct_solver()
    if one is None:
        raise RuntimeError("the one-hour dispatch model has no compiled conic data (its direct Clarabel "
                           "path failed its check); the misocp master is generated from it")
    zero_p = np.zeros((len(case.prosumers), HOURS))
    c, b, offset = np.empty((one.n, HOURS)), np.empty((one.m, HOURS)), np.empty(HOURS)
    for t in range(HOURS):
        model.set_day(day, zero_p, start=t)
        c[:, t], b[:, t] = one.data()
        offset[t] = one.offset()
    col, size = next((col, par.size) for par, col in one.param_columns if par.name() == "demand_p")
    if one.c_map[:, col:col + size].count_nonzero() or one.offset_map[:, col:col + size].count_nonzero():
        raise ValueError("the dispatch model's cost depends on the demand: the master cannot use it")
    exchange_rhs = np.zeros((one.m, len(case.prosumers)))
    exchange_rhs[one.b_rows] = one.b_map[:, col:col + size] @ (case.placement(case.prosumers.bus) / case.s_base)
    kinds, start, socs = np.empty(one.m, dtype=object), 0, []
    for cone in one.cones:
        kind = type(cone).__name__
        kinds[start:start + cone.dim] = kind
        if kind == "SecondOrderConeT":
            socs.append(np.arange(start, start + cone.dim))
        elif kind not in ("ZeroConeT", "NonnegativeConeT"):
            raise ValueError(f"the dispatch model has a {kind}, which the misocp master does not translate")
        start += cone.dim
    if socs and np.abs(exchange_rhs[np.concatenate(socs)]).max() > 0:
        raise ValueError("the exchange power enters a cone of the dispatch model: the master cannot use it")
    return ConicHours(A=sp.csr_array(one.A), zero=np.flatnonzero(kinds == "ZeroConeT"),
                      nonneg=np.flatnonzero(kinds == "NonnegativeConeT"), socs=socs, c=c, offset=offset, b=b,
                      exchange_rhs=exchange_rhs, columns=[(var.name(), col, var.size) for var, col in one.columns])


def _ranges(case: Case, day: Day, followers: list, mop: bool, hard: bool) -> dict:
    """Bounds (lower, upper) of the dispatch model's variables by name, per unit: flows from the
    largest demand and generation below each branch with a 50 % margin for losses (checked at the
    solution), voltages from the limits (hard) or a wide physical range, DGs from their ratings
    (p̃ = P/P_max ∈ [p_min/p_max, 1], its epigraph e ∈ [(p_min/p_max)², 1], Q in its range); SCIP's
    branching wants them finite."""
    fd, s, mop_dev = feeder(case), case.s_base, case.mop
    v_lo, v_hi = (case.v_min**2, case.v_max**2) if hard else (0.49, 1.69)
    pos = case.bus_position(case.prosumers.bus)
    p_abs = np.zeros(fd.n_bus)
    for n, f in enumerate(followers):
        reach = np.abs(f.qp.G) @ np.maximum(np.abs(f.qp.lower), np.abs(f.qp.upper)) + np.abs(f.qp.h)
        p_abs[pos[n]] += reach.max()
    pmax = (np.abs(day.base_p).max(axis=1) + p_abs) / s
    qmax = np.abs(day.base_q).max(axis=1) / s
    cap = mop_dev.s_max / s
    if mop:
        np.add.at(pmax, case.bus_position(mop_dev.bus), cap)
        np.add.at(qmax, case.bus_position(mop_dev.bus), cap)
    gen = case.generators
    np.add.at(pmax, case.bus_position(gen.bus), gen.p_max / s)
    np.add.at(qmax, case.bus_position(gen.bus), np.maximum(np.abs(gen.q_min), np.abs(gen.q_max)) / s)
    dg_lo = gen.p_min / gen.p_max
    pb, qb = 1.5 * (fd.downstream @ pmax) + 1e-3, 1.5 * (fd.downstream @ qmax) + 1e-3
    current = (pb**2 + qb**2) / v_lo
    if np.isfinite(fd.i_max).any():
        current = np.minimum(current, np.where(np.isfinite(fd.i_max), fd.i_max**2, np.inf))
    tot_p, tot_q = 1.5 * pmax.sum() + 1e-3, 1.5 * qmax.sum() + 1e-3
    others = fd.n_bus - 1
    sym = lambda hi: (-hi, hi)
    return {"branch_p": sym(pb), "branch_q": sym(qb), "current_sq": (0 * current, current),
            "v": (np.full(fd.n_bus, v_lo), np.full(fd.n_bus, v_hi)), "grid_p": sym(tot_p), "grid_q": sym(tot_q),
            "grid_buying": (0.0, tot_p), "mop_p": sym(cap), "mop_q": sym(cap),
            "mop_loss": (0 * cap, mop_dev.loss_coefficient * cap),
            "voltage_deviation": (np.zeros(others), np.full(others, max(abs(v_lo - 1), abs(v_hi - 1)))),
            "voltage_excess": (np.zeros(others), np.ones(others)),
            "dg_p": (dg_lo, np.ones(len(gen))), "dg_q": (gen.q_min / s, gen.q_max / s),
            "dg_epi": (dg_lo**2, np.ones(len(gen)))}


def add_network(model) -> object:
    """The dispatch model's rows for every hour in `model` (a `KKTModel` with all prosumers); returns
    the network's cost expression (¥) and keeps the variables in ``model.net`` (by the dispatch
    model's variable names, (size, 24) object arrays)."""
    from pyscipopt import quicksum

    data = conic_hours(model.case, model.day, model.mop, model.voltage_limits)
    ranges = _ranges(model.case, model.day, model.followers, model.mop == "opf", model.voltage_limits == "hard")
    n = data.A.shape[1]
    lo, hi, names = np.full(n, -np.inf), np.full(n, np.inf), np.empty(n, dtype=object)
    for name, col, size in data.columns:
        if name in ranges:
            lo[col:col + size], hi[col:col + size] = (np.broadcast_to(r, size) for r in ranges[name])
        names[col:col + size] = [f"net_{name}_{i}" for i in range(size)]
    model.net = {name: np.empty((size, HOURS), dtype=object) for name, _, size in data.columns}
    cones = [_Cone.of(data.A, rows, np.maximum(np.abs(lo), np.abs(hi))) for rows in data.socs]
    return quicksum(_add_hour(model, data, cones, names, lo, hi, t) for t in range(HOURS))


def _add_hour(model, data: ConicHours, cones: list, names, lo, hi, t: int):
    """Hour t's variables and rows; returns its cost c_t·x + offset_t (¥)."""
    from pyscipopt import quicksum

    m, A = model.m, data.A
    x = [m.addVar(f"{names[j]}_{t}", lb=lo[j], ub=hi[j]) for j in range(A.shape[1])]
    for name, col, size in data.columns:
        model.net[name][:, t] = x[col:col + size]
    exchange = [model.exchange[i][t] for i in range(data.exchange_rhs.shape[1])]

    def row(r):  # (A x)_r − b_r − (B P)_r: the zero cone wants it == 0, the nonnegative one <= 0
        lhs = quicksum(A.data[k] * x[A.indices[k]] for k in range(A.indptr[r], A.indptr[r + 1]))
        return lhs - quicksum(float(w) * exchange[i] for i, w in enumerate(data.exchange_rhs[r]) if w) - data.b[r, t]

    for r in data.zero:
        m.addCons(row(r) == 0)
    for r in data.nonneg:
        m.addCons(row(r) <= 0)
    for cone in cones:
        cone.add(m, x, data.b[cone.rows, t])
    return quicksum(float(data.c[j, t]) * x[j] for j in np.flatnonzero(data.c[:, t])) + float(data.offset[t])


@dataclass(frozen=True)
class _Cone:
    """One second-order cone s_0 >= ||s_1:||, s = b − D x_cols, as the SCIP rows
    scale · (Σ_{j>=1} s_j² − s_0²) <= 0 and s_0 >= 0 (the module docstring)."""

    rows: np.ndarray
    cols: np.ndarray
    D: np.ndarray       # (d, k) the cone's rows of A on its columns
    Q: np.ndarray       # (k, k) Σ_{j>=1} d_j d_jᵀ − d_0 d_0ᵀ, exact zeros where terms cancel
    scale: float

    @classmethod
    def of(cls, A: sp.csr_array, rows: np.ndarray, bound: np.ndarray) -> _Cone:
        block = A[rows]
        cols = np.unique(block.indices)
        D = block[:, cols].toarray()
        Q = D[1:].T @ D[1:] - np.outer(D[0], D[0])
        Q[np.abs(Q) <= 1e-12 * max(np.abs(Q).max(), 1e-300)] = 0.0
        M = np.where(np.isfinite(bound[cols]), bound[cols], 1.0)
        largest = (np.abs(Q) * np.outer(M, M) * (2 - np.eye(len(cols)))).max(initial=0.0)  # monomials' coefficients
        return cls(rows=rows, cols=cols, D=D, Q=Q, scale=1.0 / largest if largest > 0 else 1.0)

    def add(self, m, x: list, b: np.ndarray) -> None:
        from pyscipopt import quicksum

        D, Q, f = self.D, self.Q, self.scale
        xs = [x[j] for j in self.cols]
        lin = -2.0 * (D[1:].T @ b[1:] - D[0] * b[0])
        const = float(b[1:] @ b[1:] - b[0] ** 2)
        k = len(xs)
        quad = quicksum((f * (Q[i, i] if i == j else 2 * Q[i, j])) * xs[i] * xs[j]
                        for i in range(k) for j in range(i, k) if Q[i, j])
        m.addCons(quad + quicksum(f * lin[i] * xs[i] for i in range(k) if lin[i]) + f * const <= 0)
        if D[0].any():
            m.addCons(quicksum(float(D[0, i]) * xs[i] for i in range(k) if D[0, i]) <= float(b[0]))
        elif b[0] < 0:
            raise ValueError("a cone of the dispatch model has a negative constant bound: it is infeasible")


def network_values(model, result) -> dict:
    """Values of the network variables of `model` (method "misocp") at a `DispatchResult` of the same
    exchange power, by name (`DispatchModel.variable_values`)."""
    values = dispatch_model(model.case, "socp", model.mop, model.voltage_limits).variable_values(result)
    out = {}
    for name, variables in model.net.items():
        out.update({var.name: float(val) for var, val in zip(variables.ravel(), np.ravel(values[name]))})
    return out
