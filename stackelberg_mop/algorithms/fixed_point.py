"""The LMP fixed point (Song et al. (2024) Algorithm 2): prices = LMPs of the bids, bids = best responses.

The DNO clears the market at the locational marginal price: the dual of the active-power balance at
each prosumer's bus in its SOCP dispatch given the bids (¥/MWh of operating cost, i.e. a subgradient
of the DNO's network cost C(P) = F/ω_1 without revenue, as a function of the bids P). The prosumers
bid their best response BR(λ) to the posted prices. An equilibrium is a pair (λ, P) with

    P = BR(λ),   λ = post(μ) for some LMP μ ∈ ∂C(P)

`post` is the identity per prosumer (``price_per_prosumer=True``: prosumer n pays the LMP at its own
bus) or, for one price for all, the arithmetic mean of the prosumers' LMPs each hour; ``project=True``
then maps the result onto the case's price rules (`market.prices.project_prices`, row by row).

Two iterations are offered.

**Plain (damping α or "msa"), Song et al. (2024) as written.** T(λ) = post(LMP(BR(λ))) with the LMP the dual
the dispatch solver returns, iterated as λ^{k+1} = λ^k + α (T(λ^k) − λ^k). Residuals at iteration k
(what one more undamped iteration would change): price ‖T(λ^k) − λ^k‖∞ (¥/MWh) and power
‖BR(T(λ^k)) − BR(λ^k)‖∞ (MW). The cobweb condition (Song et al. (2024) §5.3): it converges when the
prosumers' response is flatter than the price response, |∂LMP/∂P| · |∂P/∂λ| < 1. In the default
case it does not: the batteries respond with slope 1/2ε = 0.5 MW per ¥/MWh, and the LMP is set-valued
where a voltage sits at the |v − 1| kink, so T jumps and no damping makes ‖T(λ) − λ‖ small.
`kappa_scaled` builds the case with every κ (and ε) scaled, for the paper's Fig. 9.

**Proximal (``damping="proximal"``, the default).** Both sides take proximal steps, with the DNO's
LMP carried as the state μ (N, 24):

    bids      P^{k+1}  = argmin own(P) + λ^k·P + (ρ/2)‖P − P^D_k‖²        (best response, kept near
                                                                            the last dispatch)
    dispatch  P^D_{k+1} = argmin C(P^D) − μ^k·P^D + (ρ/2)‖P^D − P^{k+1}‖²  (the SOCP, kept near the bids)
    LMP       μ^{k+1}  = μ^k + ρ (P^{k+1} − P^D_{k+1})  ∈ ∂C(P^D_{k+1})     (exact, by the dispatch's
                                                                            optimality condition)
    prices    λ^{k+1}  = post(μ^{k+1})

A fixed point (P = P^D, nothing moves) is an equilibrium in the sense above, including at the kinks
where the LMP is a set: μ is then an LMP of the bids by construction. With one price per prosumer and
no projection the iteration is ADMM on the welfare problem (`admm.solve`; Boyd et al. 2011), so it
converges for every κ and ε; with one posted price there is no such theorem, and the tests check the
answer instead (the LMP certificate `lmp_residual` and re-solved followers). ρ (¥/(MW²h)) starts at
`rho` and is balanced as in `market.admm_rule` on the residuals relative to their tolerances.
Residuals at iteration k: price max(‖λ^{k+1} − λ^k‖∞, ρ‖P^{k+1} − P^D_k‖∞) (¥/MWh; the second term
is how far the price the bidders answered, λ^k + ρ(P^{k+1} − P^D_k), is from the posted one) and power
max(‖P^{k+1} − P^k‖∞, ‖P^{k+1} − P^D_{k+1}‖∞) (MW). When both are under tolerance the answer is: μ
an exact LMP of a dispatch within tol_power of the bids, λ = post(μ), and bids that are the exact
best response to prices within 2·tol_price of λ. (The batteries make BR steep, so the exact BR at λ
itself can differ from the bids by up to ~1 MW per ¥/MWh of that slack: `response_gap` reports it.)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from .. import _validate
from ..cache import cached, share
from ..cases import Case
from ..data import Day
from ..market import best_response
from ..market.admm_rule import balanced_rho
from ..market.p2p import P2PMarket, p2p_response, solve_centralised
from ..market.prices import project_prices
from ..powerflow import DispatchResult, check_market_options, dispatch_model
from ..scoring import Outcome, evaluate
from . import admm


@dataclass(frozen=True, eq=False)
class FixedPointResult:
    """The fixed point's answer and its trajectory.

    prices: (24,) or (N, 24) ¥/MWh, the last iterate λ^k (the fixed point when converged).
    exchange_power: (N, 24) MW, the bids at `prices`. lmp: (N, 24) ¥/MWh at the prosumers' buses for
    those bids (proximal: the LMP state μ, exact for the dispatch `dno_exchange`). converged: both
    residuals under tolerance. iterations: dispatches solved. price_residual, power_residual, rho: one
    entry per iteration (rho: proximal only). price_history: λ^k per iteration.
    status: "converged", "max_iter", or the failure ("dispatch: infeasible", "follower_failed", "dno: ...").
    dispatch: the SOCP dispatch of the bids. dno_exchange: (N, 24) MW, the proximal dispatch's P^D (None
    for the plain iteration). response_gap: ‖BR(prices) − bids‖∞ MW (0 for the plain iteration).
    bid_prices: (N, 24) ¥/MWh, proximal only: the prices the bids are the exact best response to
    (within the price residual of the posted prices; None for the plain iteration).
    outcome: `evaluate` of the final prices (None with ``evaluate_result=False``; with p2p it scores the
    sharing market's exchange). scenarios: the HV price scenarios used (None: the day's own prices).
    """

    status: str
    converged: bool
    iterations: int
    prices: np.ndarray
    exchange_power: np.ndarray
    lmp: np.ndarray
    price_residual: list
    power_residual: list
    price_history: list
    solve_time: float
    dispatch: DispatchResult | None = None
    outcome: Outcome | None = None
    scenarios: object = None
    options: dict = field(default_factory=dict)
    rho: list = field(default_factory=list)
    dno_exchange: np.ndarray | None = None
    response_gap: float = 0.0
    bid_prices: np.ndarray | None = None


def kappa_scaled(case: Case, factor: float, batteries: bool = True) -> Case:
    """The case with every prosumer's quadratic cost scaled by `factor` (> 0): κ_n, the elastic load's
    utility coefficient a_n (Song et al.'s (2024) Fig. 9: a, 1.5a, 2a), and with ``batteries=True`` also the
    batteries' ε. The response slope ∂P/∂λ scales by 1/factor.

    In the default case the batteries are the elastic part of the response (slope 1/2ε = 0.5 MW per
    ¥/MWh against 1/2κ ≈ 2e-4 for the shiftable load), so scaling κ alone barely moves the cobweb
    condition. κ and ε do not enter the network, so the new case reuses the original's feeder and
    compiled dispatch models (a rebuild costs seconds).
    """
    if not factor > 0:
        raise ValueError(f"factor: must be > 0, got {factor}")
    pros = case.prosumers
    changes = {"prosumers": dataclasses.replace(pros, kappa=pros.kappa * factor,
                                                utility_quadratic=pros.utility_quadratic * factor)}
    if batteries:
        changes["batteries"] = dataclasses.replace(case.batteries,
                                                   regularisation=case.batteries.regularisation * factor)
    scaled = case.replace(**changes)
    cached(case, "dispatch_models", dict)
    share(scaled, case, "feeder", "dispatch_models")  # the network is the same: so are its models
    return scaled


def _bids(case: Case, day: Day, prices: np.ndarray, p2p: P2PMarket | None):
    if p2p is None:
        r = best_response(case, day, prices)
        return r.exchange_power, r.ok, r
    r = p2p_response(case, day, prices, p2p)
    return r.exchange_power, r.ok, r


def solve(case: Case, day: Day, damping: float | str = "proximal", tol_price: float = 0.1, tol_power: float = 1e-3,
          max_iter: int = 200, price_per_prosumer: bool = False, project: bool = True,
          p2p: P2PMarket | None = None, scenarios=None, initial_prices=None, rho: float = 1000.0,
          mop: str = "opf", voltage_limits: str = "hard", formulation: str = "socp",
          evaluate_result: bool = True) -> FixedPointResult:
    """Find prices and bids that reproduce each other (module docstring: the two iterations).

    damping: "proximal" (default; converges in the default case), α in (0, 1] for the plain iteration
    (1 = Song et al. (2024) undamped), or "msa", the plain iteration with successive averages α_k = 1/(k + 2).
    tol_price: ¥/MWh; tol_power: MW (∞-norms). max_iter: iterations (dispatches) at most.
    price_per_prosumer: post the LMP at each prosumer's bus (prices (N, 24)) instead of one price.
    project: map posted prices onto the case's price rules (bounds and mean cap).
    p2p: a `market.p2p.P2PMarket`: the bids are the prosumers' exchange with the DNO after peer-to-peer
    sharing (meaningful with price_per_prosumer: under one price no trade pays).
    scenarios: HV price scenarios (`data.hv_prices.PriceScenarios`): the dispatch is day-ahead, so
    its expected cost is its cost at the probability-weighted mean HV prices (the cost is linear in
    them) and the LMPs are expected LMPs; the final `outcome` is still scored on the day's own prices
    (use `evaluate_expected` for the expected score).
    initial_prices: λ^0 (default: the day's HV buy price, posted as above).
    rho: the proximal iteration's starting ρ, ¥/(MW²h) (> 0).
    mop, voltage_limits, formulation: the dispatch model (as in `evaluate`).
    """
    check_market_options(case, day, mop, voltage_limits, formulation)
    proximal = damping == "proximal"
    if not proximal and damping != "msa":
        if isinstance(damping, str):
            raise ValueError(f"damping: must be 'proximal', 'msa' or lie in (0, 1], got {damping!r}")
        damping = _validate.number("damping", damping, lo=0, lo_open=True, hi=1)
    rho = _validate.number("rho", rho, lo=0, lo_open=True, unit="¥/(MW²h)")
    tol_price = _validate.number("tol_price", tol_price, lo=0, lo_open=True, unit="¥/MWh")
    tol_power = _validate.number("tol_power", tol_power, lo=0, lo_open=True, unit="MW")
    max_iter = _validate.integer("max_iter", max_iter, lo=1)
    for name, value in (("price_per_prosumer", price_per_prosumer), ("project", project),
                        ("evaluate_result", evaluate_result)):
        _validate.flag(name, value)
    market_day = day if scenarios is None else scenarios.expected_day(day)
    model = dispatch_model(case, formulation, mop, voltage_limits)
    pos = case.bus_position(case.prosumers.bus)
    n = len(case.prosumers)

    def post(lmp: np.ndarray) -> np.ndarray:
        price = lmp if price_per_prosumer else lmp.mean(axis=0)
        return project_prices(case, day, price) if project else price

    if initial_prices is None:
        lam = post(np.tile(market_day.buy_price, (n, 1)))
    else:
        lam = _validate.array("initial_prices", initial_prices, "¥/MWh")
        if lam.shape not in ((24,), (n, 24)):
            raise ValueError(f"initial_prices: expected finite (24,) or ({n}, 24) ¥/MWh, got shape {lam.shape}")
    lam = np.broadcast_to(lam, (n, 24)).copy() if price_per_prosumer else np.array(lam, float)
    options = {"damping": damping, "tol_price": tol_price, "tol_power": tol_power, "max_iter": max_iter,
               "price_per_prosumer": price_per_prosumer, "project": project, "p2p": p2p is not None}
    start = time.perf_counter()
    run = _proximal if proximal else _plain
    state = run(case, day, market_day, model, pos, post, lam, damping, tol_price, tol_power, max_iter, p2p, rho,
                (mop, voltage_limits, formulation))
    elapsed = time.perf_counter() - start
    lam, bids, status = state["prices"], state["bids"], state["status"]
    result = state.get("dispatch")
    finished = status in ("converged", "max_iter")
    response, response_gap = None, 0.0
    if finished and (proximal or evaluate_result):  # the exact response at the final prices, solved once
        exact, ok, response = _bids(case, day, lam, p2p)
    if proximal and finished:
        result = model.solve(market_day, bids)  # the network state of the bids
        response_gap = float(np.abs(exact - bids).max()) if ok else float("nan")
    outcome = None
    if evaluate_result and finished:
        outcome = evaluate(case, day, lam, mop=mop, voltage_limits=voltage_limits, formulation=formulation,
                           response=response)
    return FixedPointResult(status=status, converged=status == "converged", iterations=len(state["price_res"]),
                            prices=lam, exchange_power=bids, lmp=state["lmp"], price_residual=state["price_res"],
                            power_residual=state["power_res"], price_history=state["history"], solve_time=elapsed,
                            dispatch=result, outcome=outcome, scenarios=scenarios, options=options,
                            rho=state.get("rho", []), dno_exchange=state.get("supply"), response_gap=response_gap,
                            bid_prices=state.get("bid_prices"))


def _plain(case, day, market_day, model, pos, post, lam, damping, tol_price, tol_power, max_iter, p2p, rho, network):
    """Song et al. (2024) Algorithm 2 with damping α (or successive averages)."""
    bids, ok, _ = _bids(case, day, lam, p2p)
    price_res, power_res, history = [], [], []
    status, result, lmp = "max_iter", None, None
    for _ in range(max_iter):
        if not ok:
            status = "follower_failed"
            break
        result = model.solve(market_day, bids)
        if not result.status.startswith("optimal"):
            status = f"dispatch: {result.status}"
            break
        lmp = result.lmp[pos]
        target = post(lmp)
        target_bids, ok, _ = _bids(case, day, target, p2p)
        price_res.append(float(np.abs(target - lam).max()))
        power_res.append(float(np.abs(target_bids - bids).max()))
        history.append(lam.copy())
        if price_res[-1] <= tol_price and power_res[-1] <= tol_power:
            status = "converged"
            break
        alpha = 1.0 / (len(price_res) + 1) if damping == "msa" else damping
        lam = lam + alpha * (target - lam)
        bids, ok, _ = (target_bids, ok, None) if alpha == 1 else _bids(case, day, lam, p2p)
    return {"prices": lam, "bids": bids, "status": status, "dispatch": result, "lmp": lmp,
            "price_res": price_res, "power_res": power_res, "history": history}


def _proximal(case, day, market_day, model, pos, post, lam, damping, tol_price, tol_power, max_iter, p2p, rho,
              network):
    """The proximal iteration (module docstring): prosumers and DNO each stay near the other's last move."""
    n = len(case.prosumers)
    net = admm.dno_model(case, *network)
    net.set_day(market_day)
    prosumers = admm.proximal_prosumers(case, day) if p2p is None else None
    supply, ok, _ = _bids(case, day, lam, p2p)  # P^D_0: the bids at λ^0
    first = model.solve(market_day, supply) if ok else None
    state = {"prices": lam, "bids": supply, "lmp": None, "price_res": [], "power_res": [], "history": [],
             "rho": []}
    if first is None or not first.status.startswith("optimal"):
        state["status"] = "follower_failed" if first is None else f"dispatch: {first.status}"
        return state
    mu = first.lmp[pos]  # μ^0: the LMPs of the bids at λ^0
    lam, bids = post(mu), supply
    status = "max_iter"
    bid_prices = None
    for _ in range(max_iter):
        posted = np.broadcast_to(lam, (n, 24))
        if p2p is None:
            new_bids, failure = admm.proximal_responses(prosumers, posted, rho, supply)
        else:
            r = solve_centralised(case, day, posted, p2p, proximal=(rho, supply))
            new_bids, failure = (r.exchange_power, None) if r.ok else (None, f"follower_failed: {r.status}")
        if failure is None:
            new_supply, failure = admm.dno_step(net, mu, rho, new_bids)
        if failure is not None:
            status = failure
            break
        bid_prices = posted + rho * (new_bids - supply)  # the bids are the exact best response to these
        mu = mu + rho * (new_bids - new_supply)
        new_lam = post(mu)
        mismatch = float(np.abs(new_bids - new_supply).max())
        state["history"].append(lam.copy())
        state["price_res"].append(max(float(np.abs(new_lam - lam).max()), float(np.abs(bid_prices - posted).max())))
        state["power_res"].append(max(float(np.abs(new_bids - bids).max()), mismatch))
        state["rho"].append(rho)
        moved = rho * float(np.abs(new_supply - supply).max())
        lam, bids, supply = new_lam, new_bids, new_supply
        if state["price_res"][-1] <= tol_price and state["power_res"][-1] <= tol_power:
            status = "converged"
            break
        rho = balanced_rho(rho, mismatch, moved, tol_power, tol_price)
    state.update(prices=lam, bids=bids, lmp=mu, supply=supply, status=status, bid_prices=bid_prices)
    return state


def lmp_residual(case: Case, day: Day, bids, lmp, rho: float = 100.0, scenarios=None, mop: str = "opf",
                 voltage_limits: str = "hard", formulation: str = "socp") -> float:
    """How far `lmp` (N, 24) ¥/MWh is from being an LMP of `bids` (N, 24) MW, in MW.

    The DNO's proximal dispatch P^D = argmin C(P^D) − lmp·P^D + (ρ/2)‖P^D − bids‖² returns the bids
    themselves exactly when lmp ∈ ∂C(bids) (any ρ > 0): the certificate for set-valued LMPs, where
    re-solving the plain dispatch may return another element of the set. Returns ‖P^D − bids‖∞
    (inf when the dispatch fails).
    """
    net = admm.dno_model(case, mop, voltage_limits, formulation)
    net.set_day(day if scenarios is None else scenarios.expected_day(day))
    supply, failure = admm.dno_step(net, np.asarray(lmp, float), rho, np.asarray(bids, float))
    return float("inf") if failure is not None else float(np.abs(supply - bids).max())
