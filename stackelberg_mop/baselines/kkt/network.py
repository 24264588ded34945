"""The network in the bi-level model: its cost Φ(P) and cuts for the outer approximation, and the
SOCP DistFlow rows of the one-tree model (method "misocp").

Given the exchange power P the network's optimal cost Φ(P) = Σ_t Φ_t(P_t) (the dispatch of
`powerflow.distflow`) is convex and separable by hour, with subgradient ω_1 × the LMPs at the
prosumers' buses, so θ_t >= Φ_t(P̂_t) + ω_1 lmp_t·(P_t − P̂_t) is valid for every P (`network_cut`).
The "misocp" rows write the same DistFlow model (SOC relaxation, MOP, limits, the ω-weighted cost
of `Objective.weigh`, the soft-limit penalty) in SCIP, per unit on case.s_base; every solution is
re-scored by `evaluate`, which dispatches with `powerflow.distflow`, so a mismatch fails verification.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...cases import HOURS, Case
from ...data import Day
from ...evaluate import hourly_network_costs
from ...powerflow import dispatch_model, feeder
from ...powerflow.distflow import soft_limit_penalty


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


@dataclass(frozen=True)
class _Ranges:
    """Variable bounds of the network rows, per unit: flows from the largest demand below each
    branch with a 50 % margin for losses (checked at the solution), voltages from the limits (hard)
    or a wide physical range."""

    pb: np.ndarray
    qb: np.ndarray
    current: np.ndarray
    tot_p: float
    tot_q: float
    v_lo: float
    v_hi: float
    dev_max: float


def _ranges(case: Case, day: Day, followers: list, k: int, hard: bool) -> _Ranges:
    fd, s = feeder(case), case.s_base
    v_lo, v_hi = (case.v_min**2, case.v_max**2) if hard else (0.49, 1.69)
    pos = case.bus_position(case.prosumers.bus)
    p_abs = np.zeros(fd.n_bus)
    for n, f in enumerate(followers):
        reach = np.abs(f.qp.G) @ np.maximum(np.abs(f.qp.lower), np.abs(f.qp.upper)) + np.abs(f.qp.h)
        p_abs[pos[n]] += reach.max()
    pmax = (np.abs(day.base_p).max(axis=1) + p_abs) / s
    qmax = np.abs(day.base_q).max(axis=1) / s
    if k:
        mpos = case.bus_position(case.mop.bus)
        np.add.at(pmax, mpos, case.mop.s_max / s)
        np.add.at(qmax, mpos, case.mop.s_max / s)
    pb, qb = 1.5 * (fd.downstream @ pmax) + 1e-3, 1.5 * (fd.downstream @ qmax) + 1e-3
    current = (pb**2 + qb**2) / v_lo
    if np.isfinite(fd.i_max).any():
        current = np.minimum(current, np.where(np.isfinite(fd.i_max), fd.i_max**2, np.inf))
    return _Ranges(pb=pb, qb=qb, current=current, tot_p=1.5 * pmax.sum() + 1e-3, tot_q=1.5 * qmax.sum() + 1e-3,
                   v_lo=v_lo, v_hi=v_hi, dev_max=max(abs(v_lo - 1), abs(v_hi - 1)))


NET_KEYS = (("p", "branch"), ("q", "branch"), ("l", "branch"), ("v", "bus"), ("dev", "bus"), ("excess", "bus"),
            ("pm", "mop"), ("qm", "mop"), ("ploss", "mop"), ("pg", None), ("qg", None), ("buy", None))


def add_network(model) -> object:
    """The DistFlow rows of every hour in `model` (a `KKTModel` with all prosumers); returns the
    network's cost expression (¥) and keeps the variables in ``model.net`` ((·, 24) object arrays)."""
    from pyscipopt import quicksum

    case, fd = model.case, feeder(model.case)
    k = len(case.mop) if model.mop == "opf" else 0
    rng = _ranges(case, model.day, model.followers, k, model.voltage_limits == "hard")
    size = {"branch": fd.n_branch, "bus": fd.n_bus, "mop": k}
    model.net = {key: np.empty((size[kind], HOURS) if kind else (HOURS,), dtype=object) for key, kind in NET_KEYS}
    return quicksum(_add_hour(model, t, rng, k) for t in range(HOURS))


def _add_hour(model, t: int, rng: _Ranges, k: int):
    """Hour t's variables and rows; returns its cost (`Objective.weigh` of its parts + soft penalty)."""
    from pyscipopt import quicksum

    m, case, day, net = model.m, model.case, model.day, model.net
    fd, s, obj = feeder(case), case.s_base, case.objective
    nb, nbus = fd.n_branch, fd.n_bus
    var = lambda name, lo, hi, count: [m.addVar(f"{name}_{i}_{t}", lb=lo[i], ub=hi[i]) for i in range(count)]
    p, q = var("p", -rng.pb, rng.pb, nb), var("q", -rng.qb, rng.qb, nb)
    cur = var("l", np.zeros(nb), rng.current, nb)
    v = var("v", np.full(nbus, rng.v_lo), np.full(nbus, rng.v_hi), nbus)
    dev = var("dev", np.zeros(nbus), np.full(nbus, rng.dev_max), nbus)
    pg = m.addVar(f"pg_{t}", lb=-rng.tot_p, ub=rng.tot_p)
    qg = m.addVar(f"qg_{t}", lb=-rng.tot_q, ub=rng.tot_q)
    buy = m.addVar(f"buy_{t}", lb=0.0, ub=rng.tot_p)
    m.addCons(buy >= pg)
    pm, qm, ploss = _add_mop(model, t, k)
    inj_p = [-day.base_p[i, t] / s for i in range(nbus)]
    inj_q = [-day.base_q[i, t] / s for i in range(nbus)]
    for n, i in enumerate(case.bus_position(case.prosumers.bus)):
        inj_p[i] = inj_p[i] - model.exchange[n][t] * (1.0 / s)
    for kk, i in enumerate(case.bus_position(case.mop.bus)[:k]):
        inj_p[i], inj_q[i] = inj_p[i] + pm[kk], inj_q[i] + qm[kk]
    inj_p[fd.root], inj_q[fd.root] = inj_p[fd.root] + pg, inj_q[fd.root] + qg
    for i in range(nbus):  # nodal balances
        into, out = np.flatnonzero(fd.to_pos == i), np.flatnonzero(fd.from_pos == i)
        m.addCons(quicksum(p[j] - fd.r[j] * cur[j] for j in into) - quicksum(p[j] for j in out) + inj_p[i] == 0)
        m.addCons(quicksum(q[j] - fd.x[j] * cur[j] for j in into) - quicksum(q[j] for j in out) + inj_q[i] == 0)
    for j in range(nb):  # voltage drop and the branch's cone, scaled for SCIP's absolute tolerance
        a, b = fd.from_pos[j], fd.to_pos[j]
        m.addCons(v[b] == v[a] - 2 * (fd.r[j] * p[j] + fd.x[j] * q[j]) + (fd.r[j] ** 2 + fd.x[j] ** 2) * cur[j])
        f = 1.0 / max(rng.pb[j], rng.qb[j])
        m.addCons((f * p[j]) * (f * p[j]) + (f * q[j]) * (f * q[j]) <= (f * f * cur[j]) * v[a])
    m.addCons(v[fd.root] == case.v_slack**2)
    excess = _add_voltage_limits(model, t, v, dev)
    prem = day.buy_price[t] - day.sell_price[t]
    econ = s * (day.sell_price[t] * pg + prem * buy) + obj.loss_cost * s * (
        quicksum(fd.r[j] * cur[j] for j in range(nb)) + quicksum(ploss))
    for key, val in (("p", p), ("q", q), ("l", cur), ("v", v), ("dev", dev), ("pm", pm), ("qm", qm),
                     ("ploss", ploss), ("excess", excess)):
        net[key][:, t] = val
    net["pg"][t], net["qg"][t], net["buy"][t] = pg, qg, buy
    return obj.weigh(econ, obj.voltage_cost * quicksum(dev)) + soft_limit_penalty(
        quicksum(e for e in excess if e is not None))


def _add_mop(model, t: int, k: int):
    """The MOP's terminals in hour t: rating and loss cones (scaled so that SCIP's absolute
    feasibility tolerance, 1e-7, is small against their per-unit values: unscaled, losses of
    ~1e-4 p.u. were violated by 100 %) and the DC balance."""
    from pyscipopt import quicksum

    m, mop, s = model.m, model.case.mop, model.case.s_base
    cap = mop.s_max[:k] / s
    pm = [m.addVar(f"pm_{kk}_{t}", lb=-cap[kk], ub=cap[kk]) for kk in range(k)]
    qm = [m.addVar(f"qm_{kk}_{t}", lb=-cap[kk], ub=cap[kk]) for kk in range(k)]
    ploss = [m.addVar(f"ploss_{kk}_{t}", lb=0.0, ub=mop.loss_coefficient[kk] * cap[kk]) for kk in range(k)]
    for kk in range(k):
        f_cap = 1.0 / cap[kk]
        m.addCons((f_cap * pm[kk]) * (f_cap * pm[kk]) + (f_cap * qm[kk]) * (f_cap * qm[kk]) <= 1.0)
        a = mop.loss_coefficient[kk]
        if a > 0:
            f = f_cap / a
            m.addCons((a * f * pm[kk]) * (a * f * pm[kk]) + (a * f * qm[kk]) * (a * f * qm[kk])
                      <= (f * ploss[kk]) * (f * ploss[kk]))
    if k:
        m.addCons(quicksum(pm) + quicksum(ploss) == 0)
    return pm, qm, ploss


def _add_voltage_limits(model, t: int, v: list, dev: list) -> list:
    """|v − 1| by dev, and the limits: soft (excess variables, priced by the soft-limit penalty),
    hard (bounds) or none; returns the excess variables (None where absent)."""
    m, case = model.m, model.case
    root = feeder(case).root
    excess = [None] * len(v)
    for i in range(len(v)):
        m.addCons(dev[i] >= v[i] - 1)
        m.addCons(dev[i] >= 1 - v[i])
        if i == root:
            continue
        if model.voltage_limits == "soft":
            excess[i] = m.addVar(f"excess_{i}_{t}", lb=0.0, ub=1.0)
            m.addCons(v[i] >= case.v_min**2 - excess[i])
            m.addCons(v[i] <= case.v_max**2 + excess[i])
        elif model.voltage_limits == "hard":
            m.chgVarLb(v[i], case.v_min**2)
            m.chgVarUb(v[i], case.v_max**2)
    return excess


def network_values(model, result) -> dict:
    """Values of the network variables of `model` (method "misocp") from a `DispatchResult` of the same P."""
    case, s, net, vals = model.case, model.case.s_base, model.net, {}
    put = lambda arr, data: vals.update({v.name: float(d) for v, d in zip(arr.ravel(), np.ravel(data))
                                         if v is not None})
    p, q = result.branch_p / s, result.branch_q / s
    # the interior-point solution may sit ~1e-9 inside a cone's wrong side: lift ℓ onto the cone
    current = np.maximum(result.current_sq, (p**2 + q**2) / result.v[feeder(case).from_pos] * (1 + 1e-9))
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
    if model.voltage_limits == "soft":
        put(net["excess"], np.maximum(np.maximum(case.v_min**2 - result.v, result.v - case.v_max**2), 0.0))
    return vals
