"""The LMP fixed point (seeds/003 Algorithm 2): prices = LMPs of the bids, bids = best responses.

The DNO clears the market at the locational marginal price: the dual of the active-power balance at
each prosumer's bus in its SOCP dispatch given the bids (`DispatchResult.lmp`, ¥/MWh of operating
cost). The prosumers bid their best response to the posted prices. The map

    T(λ) = post(LMP(bids(λ)))      (bids = best response, or the sharing market's exchange with p2p)

is iterated with damping α: λ^{k+1} = λ^k + α (T(λ^k) − λ^k). `post` is the identity per prosumer
(``price_per_prosumer=True``: prosumer n pays the LMP at its own bus) or, for one price for all, the
arithmetic mean of the prosumers' LMPs each hour; ``project=True`` then maps the result onto the
case's price rules (`market.prices.project_prices`, row by row).

Residuals at iteration k (both measure what one more undamped iteration would change):
price ‖T(λ^k) − λ^k‖∞ (¥/MWh) and power ‖bids(T(λ^k)) − bids(λ^k)‖∞ (MW). The iteration stops when
both are under tolerance, so the answer is a fixed point of T to that tolerance whatever α was.

The cobweb condition (seeds/003 §5.3): the iteration converges when the prosumers' demand response
is steeper than the price response, i.e. |∂LMP/∂P| · |∂P/∂λ| < 1; ∂P/∂λ = −1/2κ for shiftable
load, so a small κ (elastic prosumers) breaks convergence. `kappa_scaled` builds the case with all
κ scaled, for the paper's Fig. 9 (``benchmarks/baselines.py --kappa``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from ..cases import Case
from ..data import Day
from ..evaluate import Outcome, evaluate
from ..market import best_response
from ..market.p2p import P2PMarket, p2p_response
from ..market.prices import project_prices
from ..powerflow import DispatchResult, dispatch_model


@dataclass(frozen=True, eq=False)
class FixedPointResult:
    """The fixed point's answer and its trajectory.

    prices: (24,) or (N, 24) ¥/MWh, the last iterate λ^k (the fixed point when converged).
    exchange_power: (N, 24) MW, the bids at `prices`. lmp: (N, 24) ¥/MWh at the prosumers' buses for
    those bids. converged: both residuals under tolerance. iterations: dispatches solved.
    price_residual, power_residual: one entry per iteration. price_history: λ^k per iteration.
    status: "converged", "max_iter", or the failure ("dispatch: infeasible", "follower_failed").
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


def kappa_scaled(case: Case, factor: float, batteries: bool = True) -> Case:
    """The case with every prosumer's quadratic cost scaled by `factor` (> 0): κ_n, and with
    ``batteries=True`` also the batteries' ε. The response slope ∂P/∂λ scales by 1/factor.

    In the default case the batteries are the elastic part of the response (slope 1/2ε = 0.5 MW per
    ¥/MWh against 1/2κ ≈ 2e-4 for the shiftable load), so scaling κ alone barely moves the cobweb
    condition. κ and ε do not enter the network, so the new case reuses the original's feeder and
    compiled dispatch models (a rebuild costs seconds).
    """
    if not factor > 0:
        raise ValueError(f"factor: must be > 0, got {factor}")
    changes = {"prosumers": dataclasses.replace(case.prosumers, kappa=case.prosumers.kappa * factor)}
    if batteries:
        changes["batteries"] = dataclasses.replace(case.batteries,
                                                   regularisation=case.batteries.regularisation * factor)
    scaled = case.replace(**changes)
    if "_feeder" in case.__dict__:
        scaled.__dict__["_feeder"] = case.__dict__["_feeder"]
    scaled.__dict__["_dispatch_models"] = case.__dict__.setdefault("_dispatch_models", {})
    return scaled


def _bids(case: Case, day: Day, prices: np.ndarray, p2p: P2PMarket | None):
    if p2p is None:
        r = best_response(case, day, prices)
        return r.exchange_power, r.ok, r
    r = p2p_response(case, day, prices, p2p)
    return r.exchange_power, r.ok, r


def solve(case: Case, day: Day, damping: float | str = 0.5, tol_price: float = 0.1, tol_power: float = 1e-3,
          max_iter: int = 50, price_per_prosumer: bool = False, project: bool = True,
          p2p: P2PMarket | None = None, scenarios=None, initial_prices=None, mop: str = "opf",
          voltage_limits: str = "hard", formulation: str = "socp", evaluate_result: bool = True) -> FixedPointResult:
    """Iterate bids → LMP → prices until the prices and bids stop changing (seeds/003 Algorithm 2).

    damping: α in (0, 1] (1 = plain iteration), or "msa", the method of successive averages
    α_k = 1/(k + 2): λ^k is then the running mean of the targets, which approaches an equilibrium
    where plain damping cycles (the default case: residual ≈ 2 ¥/MWh after 400 iterations, slowly
    falling, against a steady ≈ 40 ¥/MWh cycle with α = 0.5). tol_price: ¥/MWh; tol_power: MW (∞-norms).
    price_per_prosumer: post the LMP at each prosumer's bus (prices (N, 24)) instead of one price.
    project: map posted prices onto the case's price rules (bounds and mean cap).
    p2p: a `market.p2p.P2PMarket`: the bids are the prosumers' exchange with the DNO after peer-to-peer
    sharing (meaningful with price_per_prosumer: under one price no trade pays).
    scenarios: HV price scenarios (`data.hv_prices.PriceScenarios`): the dispatch is day-ahead, so
    its expected cost is its cost at the probability-weighted mean HV prices (the cost is linear in
    them) and the LMPs are expected LMPs; the final `outcome` is still scored on the day's own prices
    (use `evaluate_expected` for the expected score).
    initial_prices: λ^0 (default: the day's HV buy price, posted as above).
    mop, voltage_limits, formulation: the dispatch model (as in `evaluate`).
    """
    if damping != "msa" and not (isinstance(damping, int | float) and 0 < damping <= 1):
        raise ValueError(f"damping: must lie in (0, 1] or be 'msa', got {damping!r}")
    market_day = day if scenarios is None else scenarios.expected_day(day)
    model = dispatch_model(case, formulation, mop, voltage_limits)
    pos = case.bus_position(case.prosumers.bus)
    n = len(case.prosumers)

    def post(lmp: np.ndarray) -> np.ndarray:
        price = lmp if price_per_prosumer else lmp.mean(axis=0)
        return project_prices(case, price) if project else price

    lam = post(np.tile(market_day.buy_price, (n, 1))) if initial_prices is None else np.asarray(initial_prices, float)
    lam = np.broadcast_to(lam, (n, 24)).copy() if price_per_prosumer else np.array(lam, float)
    start = time.perf_counter()
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
    elapsed = time.perf_counter() - start
    outcome = None
    if evaluate_result and status in ("converged", "max_iter"):
        response = p2p_response(case, day, lam, p2p) if p2p is not None else None
        outcome = evaluate(case, day, lam, mop=mop, voltage_limits=voltage_limits, formulation=formulation,
                           response=response)
    options = {"damping": damping, "tol_price": tol_price, "tol_power": tol_power, "max_iter": max_iter,
                   "price_per_prosumer": price_per_prosumer, "project": project, "p2p": p2p is not None}
    return FixedPointResult(status=status, converged=status == "converged", iterations=len(price_res), prices=lam,
                            exchange_power=bids, lmp=lmp, price_residual=price_res, power_residual=power_res,
                            price_history=history, solve_time=elapsed, dispatch=result, outcome=outcome,
                            scenarios=scenarios, options=options)
