"""Wang et al.'s (2024) Algorithm 1: the DSAs' cooperative operation by a decentralised ADMM (no coordinator).

Agents: the DSAs and the network (the DNO, holding only the network's rows, `DispatchModel`). Each
pair's agreed trade z_nm (n < m; ẑ_nm = z_nm, ẑ_mn = −z_nm) and the network's copy Ñ_n of each DSA's
withdrawal are the auxiliary variables of Wang et al. (2024) Eq. 8; the couplings p_nm = ẑ_nm (multiplier λ_nm,
kept by n) and N_n = Ñ_n (μ_n, kept by n). Iteration k (docs/plans/seed001-dsa.md §2):

1. every DSA n, in parallel: min C_n + Σ_m [λ_nm p_nm + (ρ_n/2)(p_nm − ẑ_nm)²] + μ_n N_n + (ρ_n/2)‖N_n − Ñ_n‖²
   over its own schedule and trades (`DSAPart`);
2. each pair, computed alike by both ends: z_nm = (ρ_n p_nm − ρ_m p_mn + λ_nm − λ_mn)/(ρ_n + ρ_m);
   the network: Ñ = argmin over its feasible set of Σ_n [−μ_n Ñ_n + (ρ_n/2)‖N_n − Ñ_n‖²];
3. every DSA: λ_nm += ρ_n (p_nm − ẑ_nm), μ_n += ρ_n (N_n − Ñ_n);
4. every DSA its own residuals r_n = ‖(p_n· − ẑ_n·, N_n − Ñ_n)‖ (MW), s_n = ρ_n ‖(Δẑ_n·, ΔÑ_n)‖ (¥/MWh);
   stop when r_n <= √m_n ε_pri and s_n <= √m_n ε_dual for every n (m_n = 24·(its pairs + 1)).

Two-block ADMM (DSAs | z, Ñ) with a fixed penalty per DSA, so it converges for convex C_n (Boyd et al.
2011 §3.2). A DSA shares only its trades with its partners and its withdrawal with the network. At the
end λ_nm = λ_mn is the pair's trade price and μ_n the network's price at b(n).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from .. import _validate
from ..cache import cached
from ..cases import HOURS, Case
from ..data import Day
from ..market._solve import solve_reported
from .dsa_market import DSAOperation, DSAPart, _Tariff, checked_arguments, operation, trading_pairs


@dataclass
class _Local:
    """DSA n's problem in Algorithm 1 (DPP: the prices and targets enter one linear Parameter each)."""

    part: DSAPart
    trades: dict
    lin_trade: dict
    lin_net: cp.Parameter
    rho: cp.Parameter
    problem: cp.Problem


def _local(case: Case, day: Day, n: int, tariff: _Tariff, partners: list) -> _Local:
    trades = {m: cp.Variable(HOURS, name=f"dsa_admm_p_{n}{m}") for m in partners}
    part = DSAPart(case, day, n, tariff, trades)
    rho = cp.Parameter(nonneg=True, name=f"rho_{n}")
    # (ρ/2)‖y − t‖² + λ·y = (ρ/2)‖y‖² + (λ − ρt)·y + const: one linear Parameter per coupled block; the
    # withdrawal N = F + h with F = `flex` parameter-free, so μ·N + (ρ/2)‖N − Ñ‖² = (μ − ρ(Ñ − h))·F + (ρ/2)‖F‖²
    lin_trade = {m: cp.Parameter(HOURS, name=f"lin_p_{n}{m}") for m in partners}
    lin_net = cp.Parameter(HOURS, name=f"lin_net_{n}")
    obj = part.cost + lin_net @ part.flex + 0.5 * rho * cp.sum_squares(part.flex)
    obj = obj + sum((lin_trade[m] @ p + 0.5 * rho * cp.sum_squares(p) for m, p in trades.items()), start=0)
    problem = cp.Problem(cp.Minimize(obj), part.constraints)
    assert problem.is_dcp(dpp=True)
    return _Local(part, trades, lin_trade, lin_net, rho, problem)


class _Network:
    """The network agent: the one network definition's rows, min Σ_n [−μ_n Ñ_n + (ρ_n/2)‖N_n − Ñ_n‖²]."""

    def __init__(self, case: Case, formulation: str, voltage_limits: str):
        from ..powerflow import DispatchModel

        n = len(case.prosumers)
        self.model = DispatchModel(case, formulation, "off", voltage_limits, exchange="variable")
        self.rho = cp.Parameter(n, nonneg=True, name="rho_network")
        self.lin = cp.Parameter((n, HOURS), name="lin_network")  # −μ − ρN
        x = self.model.exchange
        obj = cp.sum(cp.multiply(self.lin, x)) + 0.5 * cp.sum(cp.multiply(self.rho, cp.sum(cp.square(x), axis=1)))
        self.problem = cp.Problem(cp.Minimize(obj), self.model.constraints)
        assert self.problem.is_dcp(dpp=True)


@dataclass(frozen=True, eq=False)
class ADMMResult:
    """Algorithm 1's answer: `operation` (a `DSAOperation`; trades are the agreed ẑ, trade_price the
    pairs' λ; its status "optimal_inaccurate" when the run stopped at max_iter), status "optimal" or
    "max_iter" or a solver failure, iterations, and per iteration the
    largest r_n/(√m_n ε_pri) and s_n/(√m_n ε_dual) over the DSAs (<= 1 each at the stop)."""

    operation: DSAOperation
    status: str
    iterations: int
    primal: list = field(default_factory=list)
    dual: list = field(default_factory=list)


def algorithm1(case: Case, day: Day, mode: str = "cooperative", dr: bool = True, buy_price=None,
               rho=None, eps_pri: float = 1e-4, eps_dual: float = 0.1, max_iter: int = 2000,
               voltage_limits: str = "hard") -> ADMMResult:
    """Wang et al.'s (2024) Algorithm 1 (module docstring) on `day`. rho: (N,) ¥/(MW²h) each DSA's penalty (default
    the case's `dsa.admm_penalty`); eps_pri MW, eps_dual ¥/MWh per coupled entry; max_iter iterations.
    Same arguments otherwise as `papers.dsa_market.operate`, whose centralised optimum it reaches."""
    price = checked_arguments(case, day, mode, dr, buy_price, voltage_limits)
    rho = np.asarray(case.dsa.admm_penalty if rho is None else _validate.array("rho", rho, "¥/(MW²h)"), float)
    rho = np.broadcast_to(rho, (len(case.prosumers),)).copy()
    if np.any(rho <= 0):
        raise ValueError(f"rho: must be > 0 ¥/(MW²h), got {rho}")
    eps_pri = _validate.number("eps_pri", eps_pri, lo=0, lo_open=True, unit="MW")
    eps_dual = _validate.number("eps_dual", eps_dual, lo=0, lo_open=True, unit="¥/MWh")
    max_iter = _validate.integer("max_iter", max_iter, lo=1)
    n, pairs = len(case.prosumers), trading_pairs(case, mode)
    partners = [[m for i, m in pairs if i == k] + [i for i, m in pairs if m == k] for k in range(n)]
    agents = cached(case, "dsa_admm", dict)
    key = (mode, voltage_limits)
    if key not in agents:
        tariff = _Tariff(n)
        agents[key] = (tariff, [_local(case, day, k, tariff, partners[k]) for k in range(n)],
                       _Network(case, "lindistflow", voltage_limits))
    tariff, local, network = agents[key]
    tariff.load(day, dr, price)
    network.model.set_day(day)
    for agent in local:
        agent.part.block.set_day(day)
    z = {pair: np.zeros(HOURS) for pair in pairs}
    signed = lambda zs, k, m: zs[k, m] if (k, m) in zs else -zs[m, k]  # ẑ_km of the agreed trades zs
    zhat = lambda k, m: signed(z, k, m)
    lam = {(k, m): np.zeros(HOURS) for k in range(n) for m in partners[k]}
    mu, n_tilde = np.zeros((n, HOURS)), np.zeros((n, HOURS))
    network.rho.value = rho
    status, primal, dual, start, it = "max_iter", [], [], time.perf_counter(), 0
    for it in range(1, max_iter + 1):
        for k, agent in enumerate(local):  # 1. the DSAs
            agent.rho.value = rho[k]
            agent.lin_net.value = mu[k] - rho[k] * (n_tilde[k] - agent.part.block.h.value)
            for m in partners[k]:
                agent.lin_trade[m].value = lam[k, m] - rho[k] * zhat(k, m)
            st, _ = solve_reported(agent.problem)
            if st not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                status = f"solver_failed (DSA {k}: {st})"
                break
        else:
            p = {(k, m): local[k].trades[m].value for k in range(n) for m in partners[k]}  # noqa: PLR1736
            net = np.array([agent.part.net.value for agent in local])
            old_z, old_tilde = dict(z), n_tilde.copy()
            for i, j in pairs:  # 2. the pairs and the network
                z[i, j] = (rho[i] * p[i, j] - rho[j] * p[j, i] + lam[i, j] - lam[j, i]) / (rho[i] + rho[j])
            network.lin.value = -mu - rho[:, None] * net
            st, _ = solve_reported(network.problem)
            if st not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                status = f"solver_failed (network: {st})"
                break
            n_tilde = network.model.exchange.value
            r_k, s_k = [], []
            for k in range(n):  # 3. the multipliers, 4. each DSA's residuals
                r2, s2 = float(((net[k] - n_tilde[k]) ** 2).sum()), float(((n_tilde[k] - old_tilde[k]) ** 2).sum())
                for m in partners[k]:
                    lam[k, m] = lam[k, m] + rho[k] * (p[k, m] - zhat(k, m))
                    r2 += float(((p[k, m] - zhat(k, m)) ** 2).sum())
                    s2 += float(((zhat(k, m) - signed(old_z, k, m)) ** 2).sum())
                mu[k] = mu[k] + rho[k] * (net[k] - n_tilde[k])
                root = np.sqrt(HOURS * (len(partners[k]) + 1))
                r_k.append(np.sqrt(r2) / (root * eps_pri))
                s_k.append(rho[k] * np.sqrt(s2) / (root * eps_dual))
            primal.append(max(r_k))
            dual.append(max(s_k))
            if primal[-1] <= 1 and dual[-1] <= 1:
                status = "optimal"
                break
            continue
        break
    elapsed = time.perf_counter() - start
    trades, price_out = np.zeros((n, n, HOURS)), np.zeros((n, n, HOURS))
    for i, j in pairs:
        trades[i, j], trades[j, i] = z[i, j], -z[i, j]
        price_out[i, j] = price_out[j, i] = 0.5 * (lam[i, j] + lam[j, i])
    # stopped at max_iter: the last iterate is reported, as "optimal_inaccurate" (the tolerances not met)
    reported = {"optimal": "optimal", "max_iter": "optimal_inaccurate"}.get(status, status)
    op = operation(mode, dr, reported, [a.part for a in local], trades, price_out, network.model, case, elapsed)
    return ADMMResult(operation=op, status=status, iterations=it, primal=primal, dual=dual)
