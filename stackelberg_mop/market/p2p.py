"""Peer-to-peer energy sharing among the prosumers (the lower layer of Song et al. (2024), MODEL.md).

Given clearing prices Λ (N, 24) ¥/MWh (one row per prosumer, e.g. the LMP at its bus), prosumers may
also trade with each other. p_nm,t (MW) is what n buys from m (p_nm = −p_mn), |p_nm| <= cap_nm, and
n's exchange with the DNO becomes

    g_n,t = P_n,t − Σ_m p_nm,t        (P_n: its own consumption schedule, > 0 buys, as in `follower`)

Prosumer n pays Λ_n·g_n to the DNO, π_nm·p_nm to each peer m (π_nm = π_mn, the pairwise sharing
price) and a trading cost (γ/2)·p_nm² per side (γ = `trade_cost`, ¥/MW²h; it prices the use of the
platform and makes the trades unique). Optionally lower_n <= g_n,t <= upper_n (Song et al. (2024) Eq. 17, the
bid limit; `exchange_limit` for a symmetric one), which couples a prosumer's schedule to its trades.
`p2p_market(case)` reads a case's own platform (`cases.Sharing`: the pairwise caps and γ, with the
prosumers' bid limits as these exchange limits), else every pair may trade 0.2 MW at γ = 10.

The prosumers' joint (centralised) problem minimises Σ_n [own cost + Λ_n·g_n] + γ Σ_{n<m} p_nm²
(the peer payments cancel). Three ways to solve it, same answer:
- ``"exact"`` (no exchange limit): the problem separates. Schedules are the exact best response to
  Λ; each pair trades p_nm = clip((Λ_n − Λ_m) / 2γ, ±cap_nm) at π_nm = (Λ_n + Λ_m) / 2. Microseconds.
- ``"centralised"``: one cvxpy problem (Clarabel); π is the dual of p_nm + p_mn = 0.
- ``"admm"``: the distributed mechanism (Song et al. (2024) Algorithm 1 = consensus ADMM): each prosumer
  solves only its own problem given the sharing prices; the platform updates
  π_nm += ρ/2 (p_nm + p_mn). Stopping rule and residual balancing as Boyd et al. (2011) §3.3–3.4.

With a single price for everyone (Λ_n = λ for all n) and no exchange limit, no trade lowers the joint
cost (the payments cancel and the DNO buys and sells at the same price): the trades are zero.
"""

from __future__ import annotations

import time

import cvxpy as cp
import numpy as np

from .. import _validate
from ..cache import cached
from ..cases import HOURS, Case
from ..data import Day
from ._solve import solve_reported
from .admm_rule import ResidualLog
from .follower import best_response
from .p2p_market import P2PMarket, P2PResult, check_market, p2p_market, sharing_costs
from .prosumer_model import ProsumerBlock, own_costs

__all__ = ["METHODS", "P2PMarket", "P2PResult", "p2p_market", "p2p_response", "solve_admm", "solve_centralised"]

METHODS = ("auto", "exact", "centralised", "admm")


# --- exact (separable) ------------------------------------------------------------------------
def _solve_exact(case: Case, day: Day, lam: np.ndarray, market: P2PMarket) -> P2PResult:
    start = time.perf_counter()
    response = best_response(case, day, lam)
    gamma, cap = market.trade_cost, market.cap[:, :, None]
    diff = lam[:, None, :] - lam[None, :, :]  # Λ_n − Λ_m
    trades = np.clip(diff / (2 * gamma), -cap, cap)
    sharing = 0.5 * (lam[:, None, :] + lam[None, :, :]) * (cap > 0)
    exchange = response.exchange_power - trades.sum(1)
    own = own_costs(case, response)
    cost, joint = sharing_costs(lam, exchange, trades, sharing, own, gamma)
    status = "optimal" if response.ok else "follower_failed"
    return P2PResult(method="exact", status=status, prices=lam, exchange_power=exchange,
                     consumption=response.exchange_power, trades=trades, sharing_price=sharing, own_cost=own,
                     cost=cost, joint_cost=joint, solve_time=time.perf_counter() - start)


# --- centralised (cvxpy) ----------------------------------------------------------------------
class _CentralModel:
    """The sharing market as one problem; ``proximal=True`` adds (ρ/2)Σ_n‖g_n − target_n‖² on the exchange
    (the proximal bids of `algorithms.fixed_point`), in DPP form: ρ a Parameter, the linear part folded
    into the price Parameter."""

    def __init__(self, case: Case, day: Day, market: P2PMarket, proximal: bool = False):
        n = len(case.prosumers)
        self.blocks = [ProsumerBlock(case, i, day, bid_limits=False) for i in range(n)]
        self.prices = cp.Parameter((n, HOURS), name="prices")
        self.pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if market.cap[i, j] > 0]
        self.trade = {}
        cons = []
        for i, j in self.pairs:
            self.trade[i, j] = cp.Variable(HOURS, name=f"p_{i}{j}")
            self.trade[j, i] = cp.Variable(HOURS, name=f"p_{j}{i}")
            cons += [cp.abs(self.trade[i, j]) <= market.cap[i, j], cp.abs(self.trade[j, i]) <= market.cap[i, j]]
        self.balance = {(i, j): self.trade[i, j] + self.trade[j, i] == 0 for i, j in self.pairs}
        cons += list(self.balance.values())
        self.exchange, shifts = [], []
        obj = 0
        for i, b in enumerate(self.blocks):
            bought = sum((self.trade[i, j] for j in range(n) if (i, j) in self.trade), start=cp.Constant(np.zeros(HOURS)))
            g = b.exchange - bought
            self.exchange.append(g)
            shifts.append(b.shift - bought)  # g − h, parameter-free
            cons += b.constraints
            cons += market.limit_constraints(i, g)
            obj = obj + b.own_cost + self.prices[i] @ (b.shift - bought)  # + Λ·h, a constant
        obj = obj + 0.5 * market.trade_cost * sum((cp.sum_squares(p) for p in self.trade.values()), start=0)
        self.rho = cp.Parameter(nonneg=True, name="rho") if proximal else None
        if proximal:  # ‖g − target‖² = ‖g − h‖² − 2(target − h)·(g − h) + const; g − h is parameter-free
            obj = obj + 0.5 * self.rho * sum((cp.sum_squares(d) for d in shifts), start=0)
        self.problem = cp.Problem(cp.Minimize(obj), cons)
        assert self.problem.is_dcp(dpp=True)

    def solve(self, case: Case, day: Day, lam: np.ndarray, market: P2PMarket, proximal=None) -> P2PResult:
        n = len(case.prosumers)
        for b in self.blocks:
            b.set_day(day)
        self.prices.value = lam
        if proximal is not None:
            rho, target = proximal
            self.rho.value = rho
            self.prices.value = lam + rho * (np.array([b.h.value for b in self.blocks]) - target)
        status, elapsed = solve_reported(self.problem)
        trades = np.zeros((n, n, HOURS))
        sharing = np.zeros((n, n, HOURS))
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            nan = np.full((n, HOURS), np.nan)
            return P2PResult(method="centralised", status=str(status), prices=lam, exchange_power=nan,
                             consumption=nan, trades=trades * np.nan, sharing_price=sharing * np.nan,
                             own_cost=np.full(n, np.nan), cost=np.full(n, np.nan), joint_cost=np.nan,
                             solve_time=elapsed)
        for (i, j), var in self.trade.items():
            trades[i, j] = var.value
        for (i, j), con in self.balance.items():
            # n's stationarity in p_nm: −Λ_n + γ p_nm + (dual) = 0 off the cap, so the dual is the price
            sharing[i, j] = sharing[j, i] = con.dual_value
        exchange = np.array([g.value for g in self.exchange])
        consumption = np.array([b.exchange.value for b in self.blocks])
        own = np.array([b.own_cost_value() for b in self.blocks])
        cost, joint = sharing_costs(lam, exchange, trades, sharing, own, market.trade_cost)
        return P2PResult(method="centralised", status="optimal", prices=lam, exchange_power=exchange,
                         consumption=consumption, trades=trades, sharing_price=sharing, own_cost=own, cost=cost,
                         joint_cost=joint, solve_time=elapsed)


def _cached(case: Case, name: str, market: P2PMarket, build):
    cache = cached(case, f"p2p_{name}", dict)
    if market.key() not in cache:
        cache[market.key()] = build()
    return cache[market.key()]


def solve_centralised(case: Case, day: Day, prices, market: P2PMarket, proximal=None) -> P2PResult:
    """The prosumers' joint problem with sharing, solved as one convex problem (Clarabel).

    proximal: None, or (ρ ¥/(MW²h), target (N, 24) MW): add (ρ/2)Σ_n‖g_n − target_n‖² on the exchange.
    """
    lam = check_market(case, prices, market)
    if proximal is None:
        model = _cached(case, "central", market, lambda: _CentralModel(case, day, market))
    else:
        model = _cached(case, "central_proximal", market, lambda: _CentralModel(case, day, market, True))
    return model.solve(case, day, lam, market, proximal)


# --- distributed (consensus ADMM) -------------------------------------------------------------
class _LocalModel:
    """Prosumer n's own problem in the sharing mechanism: it sees only Λ_n, π_n· and the target trades."""

    def __init__(self, case: Case, day: Day, market: P2PMarket, n: int):
        size = market.size
        self.block = ProsumerBlock(case, n, day, bid_limits=False)
        self.price = cp.Parameter(HOURS, name="price")
        # (ρ/2)‖p − v‖² + π·p = (ρ/2)‖p‖² + (π − ρv)·p + const: one linear Parameter keeps the problem DPP
        self.linear = cp.Parameter((size, HOURS), name="sharing_price_minus_rho_target")
        self.rho = cp.Parameter(nonneg=True, name="rho")
        self.trade = cp.Variable((size, HOURS), name="trades")
        cap = np.repeat(market.cap[n][:, None], HOURS, axis=1)
        self.exchange = self.block.exchange - cp.sum(self.trade, axis=0)
        cons = self.block.constraints + [cp.abs(self.trade) <= cap]
        cons += market.limit_constraints(n, self.exchange)
        obj = (self.block.own_cost + self.price @ (self.block.shift - cp.sum(self.trade, axis=0))  # + Λ·h
               + cp.sum(cp.multiply(self.linear, self.trade))
               + 0.5 * (market.trade_cost + self.rho) * cp.sum_squares(self.trade))
        self.problem = cp.Problem(cp.Minimize(obj), cons)
        assert self.problem.is_dcp(dpp=True)

    def solve(self) -> bool:
        status, _ = solve_reported(self.problem)
        return status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)


def solve_admm(case: Case, day: Day, prices, market: P2PMarket, rho: float = 1000.0, eps_abs: float = 1e-5,
               eps_rel: float = 1e-5, max_iter: int = 500, balance_residuals: bool = True,
               initial_price=None, rule: str = "boyd") -> P2PResult:
    """The distributed sharing mechanism (Song et al. (2024) Algorithm 1), consensus ADMM on p_nm = −p_mn.

    Each iteration every prosumer n solves its own problem given the sharing prices π_n· and the
    targets v_nm = (p_nm − p_mn)/2 with the penalty (ρ/2)(p_nm − v_nm)²; the platform then sets
    π_nm += (ρ/2)(p_nm + p_mn). Primal residual r = (p_nm + p_mn)/2, dual residual s = ρ Δv; stop when
    ‖r‖ <= √d ε_abs + ε_rel max(‖p‖, ‖v‖) and ‖s‖ <= √d ε_abs + ε_rel ‖π‖ (Boyd et al. 2011 §3.3.1,
    d = number of trade entries). Residual balancing (§3.4.1, μ = 10, τ = 2) adapts ρ, comparing the
    residuals relative to their tolerances (they have different units).
    rho: ¥/(MW²h). initial_price: (N, N, 24) or scalar start of π (default: the mean of Λ each hour,
    public information). Returns a `P2PResult` with the residual log.
    rule="paper": Song et al.'s (2024) Algorithm 1 as written: the sharing prices and the expected sharing
    power start at zero (π⁰ = 0 unless initial_price is given, v⁰ = 0), ρ stays fixed (no residual
    balancing) and the only stopping test is the sharing balance, max |p_nm + p_mn| <= eps_abs (MW).
    The reported trades are the consensus v (exactly antisymmetric) and the exchange is computed from
    them, while each prosumer kept its limits with its own trades: the exchange may break a limit by
    up to the stopping tolerance (measured 7.6e-5 MW at eps_abs 1e-4), and the joint cost may then
    lie that little below the centralised optimum.
    """
    _validate.choice("rule", rule, ("boyd", "paper"))
    paper = rule == "paper"
    if paper:
        balance_residuals = False
        initial_price = 0.0 if initial_price is None else initial_price
    lam = check_market(case, prices, market)
    n = market.size
    models = _cached(case, "local", market,
                     lambda: [_LocalModel(case, day, market, i) for i in range(n)])
    for m in models:
        m.block.set_day(day)
    mask = (market.cap > 0)[:, :, None]
    if initial_price is None:
        pi = np.broadcast_to(lam.mean(0), (n, n, HOURS)) * mask
    else:
        pi = np.broadcast_to(np.asarray(initial_price, float), (n, n, HOURS)) * mask
    pi = np.array(pi)
    trades = np.zeros((n, n, HOURS))
    target = np.zeros((n, n, HOURS))
    log = ResidualLog(int(mask.sum()) * HOURS, eps_abs, eps_rel, balance_residuals)
    status = "max_iter"
    start = time.perf_counter()
    for i, m in enumerate(models):
        m.price.value = lam[i]
    k = 0
    for k in range(1, max_iter + 1):
        for i, m in enumerate(models):
            m.linear.value, m.rho.value = pi[i] - rho * target[i], rho
            if not m.solve():
                status = f"solver_failed (prosumer {i})"
                break
            trades[i] = m.trade.value * mask[i]
        else:
            new_target = 0.5 * (trades - trades.transpose(1, 0, 2))
            r = 0.5 * (trades + trades.transpose(1, 0, 2))
            pi = pi + rho * r * mask
            converged, next_rho = log.record(rho, r, new_target - target, np.linalg.norm(trades),
                                             np.linalg.norm(new_target), np.linalg.norm(pi))
            if paper:  # the sharing balance alone: ‖p_nm + p_mn‖∞ = 2‖r‖∞
                converged = 2 * float(np.abs(r).max()) <= eps_abs
            target = new_target
            if converged:
                status = "optimal"
                break
            rho = next_rho  # balanced on residuals relative to their tolerances (r in MW, s in ¥/MWh)
            continue
        break
    elapsed = time.perf_counter() - start
    # the agreed trades are the consensus values v (exactly antisymmetric)
    exchange = np.array([m.block.exchange.value for m in models]) - target.sum(1)
    consumption = np.array([m.block.exchange.value for m in models])
    own = np.array([m.block.own_cost_value() for m in models])
    cost, joint = sharing_costs(lam, exchange, target, pi, own, market.trade_cost)
    return P2PResult(method="admm", status=status, prices=lam, exchange_power=exchange, consumption=consumption,
                     trades=target, sharing_price=pi, own_cost=own, cost=cost, joint_cost=joint,
                     solve_time=elapsed, iterations=k, primal_residual=log.primal, dual_residual=log.dual,
                     rho=log.rho)


# --- the entry points -------------------------------------------------------------------------
def p2p_response(case: Case, day: Day, prices, market: P2PMarket, method: str = "auto", **admm) -> P2PResult:
    """The prosumers' schedules and trades under peer-to-peer sharing at clearing prices (24,) or (N, 24).

    method: "auto" ("exact" without an exchange limit, else "centralised"), "exact", "centralised" or
    "admm" (keyword arguments go to `solve_admm`).
    """
    if method not in METHODS:
        raise ValueError(f"method: must be one of {METHODS}, got {method!r}")
    lam = check_market(case, prices, market)
    bid_limited = case.prosumers.bid_limited
    if method == "auto":
        method = "exact" if not (market.limited or bid_limited) else "centralised"
    if method == "exact":
        if market.limited:
            raise ValueError("method: 'exact' needs a market without exchange_limit (use 'centralised')")
        if bid_limited:
            raise ValueError("method: 'exact' needs prosumers without bid limits (under sharing they bound the "
                             "exchange after trades, which couples schedules and trades; use 'centralised')")
        return _solve_exact(case, day, lam, market)
    if method == "centralised":
        return solve_centralised(case, day, lam, market)
    return solve_admm(case, day, lam, market, **admm)
