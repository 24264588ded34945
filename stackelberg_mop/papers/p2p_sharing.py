"""Song et al.'s (2024) claims measured on its own system (the case `p2p-sharing`).

The paper (a DSO clearing prosumers at their buses' LMPs, prosumers sharing energy peer to peer)
states: the fixed point on prices (its Algorithm 2: SOCP-OPF, LMPs, bids) converges by the 10th
iteration; the distributed sharing (its Algorithm 1) converges after 36 iterations and equals the
centralised optimum (Proposition 1); without sharing the prosumers pay 9.8 % more; the fixed point
converges faster for steeper utilities, a, 1.5a, 2a (its Fig. 9, the cobweb condition); prosumers 1
and 3 (PV) sell in the middle of the day (Figs. 6–8); the DSO's cost is constant once converged;
the LMP is higher at prosumer 3's bus. `reproduce` measures each on one day; `benchmarks/papers/
p2p_sharing.py` prints them beside the paper's figures and tests/test_p2p_sharing.py asserts the
qualitative ones.

Algorithm 2 is run as the paper writes it: undamped (`fixed_point.solve(damping=1.0)`), every
prosumer at the LMP of its own bus, no projection on price rules, at most 20 iterations, the bids
being the sharing market's exchange with the DSO (solved centrally inside the loop, the paper's
Fig. 5; the distributed Algorithm 1 is then run once at the converged prices). It starts from the
day's HV buy price (the paper's initial bids are lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..algorithms import fixed_point
from ..cases import Case
from ..data import Day
from ..market.p2p import P2PMarket, P2PResult, p2p_market, p2p_response, solve_admm

#: the paper's Algorithm 2: at most 20 iterations (its §5)
MAX_ITER = 20
#: hours 7–18: "the middle of the day" of the trading-pattern claim
MIDDAY = slice(7, 19)


def algorithm2(case: Case, day: Day, market: P2PMarket | None, max_iter: int = MAX_ITER):
    """Song et al.'s (2024) Algorithm 2: the undamped LMP fixed point with one price per prosumer bus and the
    sharing market's bids (market None: without sharing). A `fixed_point.FixedPointResult`."""
    return fixed_point.solve(case, day, damping=1.0, price_per_prosumer=True, project=False, p2p=market,
                             max_iter=max_iter)


@dataclass(frozen=True)
class Claims:
    """The measurements behind each claim (money ¥ per day, power MW, prices ¥/MWh).

    fixed_point_iterations: Algorithm 2 with sharing, iterations to converge (None: not in 20);
    without_p2p_iterations: the same without sharing. price_residuals: its ‖Δλ‖∞ per iteration.
    admm_iterations, admm_rho: Algorithm 1 as written (`solve_admm(rule="paper")`, fixed ρ) at the
    converged prices; admm_boyd_iterations: the package's default stopping and ρ balancing.
    distributed_gap: |joint cost (Algorithm 1) − joint cost (centralised)| / centralised;
    trade_difference: max |p_nm| difference between them.
    cost_without_p2p, cost_with_p2p: the prosumers' total cost at each equilibrium;
    cost_increase: without / with − 1 (the paper's 9.8 %).
    cobweb: {utility scale: (iterations or None, price residuals)} (the paper's Fig. 9).
    midday_sales: (N,) MWh sold to peers net over hours 7–18 (> 0 sells); sharing: the `P2PResult`.
    dso_objective_tail: the DSO's objective at the last three iterates. lmp_mean: (N,) mean LMP.
    """

    fixed_point_iterations: int | None
    without_p2p_iterations: int | None
    price_residuals: list
    admm_iterations: int
    admm_rho: float
    admm_boyd_iterations: int
    distributed_gap: float
    trade_difference: float
    cost_without_p2p: float
    cost_with_p2p: float
    cost_increase: float
    cobweb: dict
    midday_sales: np.ndarray
    dso_objective_tail: list
    lmp_mean: np.ndarray
    stackelberg: dict = field(default_factory=dict)
    sharing: P2PResult | None = None


def _iterations(result) -> int | None:
    return result.iterations if result.status == "converged" else None


def cobweb(case: Case, day: Day, market: P2PMarket | None, scales=(1.0, 1.5, 2.0)) -> dict:
    """{scale: (iterations or None, price residuals)} of Algorithm 2 with every prosumer's utility
    coefficient a (and κ) multiplied by the scale (`fixed_point.kappa_scaled`)."""
    out = {}
    for scale in scales:
        res = algorithm2(fixed_point.kappa_scaled(case, scale), day, market)
        out[float(scale)] = (_iterations(res), [float(r) for r in res.price_residual])
    return out


def reproduce(case: Case, day: Day, admm_rho: float | None = None, scales=(0.5, 1.0, 1.5, 2.0),
              stackelberg_time_limit: float | None = 120.0) -> Claims:
    """Measure every claim on `day` (module docstring). admm_rho: Algorithm 1's fixed ρ, ¥/(MW²h)
    (the paper's value is lost; default 2γ, the trades' own curvature on both sides).
    stackelberg_time_limit: also solve the bi-level optimum (`kkt.solve`) for the comparison table
    (None: skip)."""
    from ..scoring import evaluate

    market = p2p_market(case)
    with_p2p, without = algorithm2(case, day, market), algorithm2(case, day, None)
    for res, what in ((with_p2p, "with"), (without, "without")):
        if res.outcome is None or not res.outcome.status.startswith("optimal"):
            raise RuntimeError(f"Algorithm 2 {what} sharing ended {res.status!r}; no equilibrium to measure")
    prices = with_p2p.prices
    central = p2p_response(case, day, prices, market, method="centralised")
    rho = 2 * market.trade_cost if admm_rho is None else float(admm_rho)
    paper = solve_admm(case, day, prices, market, rule="paper", rho=rho, eps_abs=1e-4, max_iter=2000)
    boyd = solve_admm(case, day, prices, market)
    cost_with = float(with_p2p.outcome.prosumer_costs.sum())
    cost_without = float(without.outcome.prosumer_costs.sum())
    tail = [float(evaluate(case, day, lam, response=p2p_response(case, day, lam, market)).dno_objective)
            for lam in with_p2p.price_history[-3:]]
    stackelberg = {}
    if stackelberg_time_limit is not None:
        from ..bilevel import kkt

        opt = kkt.solve(case, day, time_limit=stackelberg_time_limit, threads=1)
        for name, out in (("Stackelberg optimum (one price, no sharing)", opt.outcome),
                          ("LMP equilibrium without sharing", without.outcome),
                          ("LMP equilibrium with sharing", with_p2p.outcome)):
            stackelberg[name] = {"dso_objective": float(out.dno_objective),
                                 "prosumer_cost": float(out.prosumer_costs.sum()), "welfare": float(out.welfare)}
        stackelberg["Stackelberg optimum (one price, no sharing)"]["status"] = opt.status
    return Claims(
        fixed_point_iterations=_iterations(with_p2p), without_p2p_iterations=_iterations(without),
        price_residuals=[float(r) for r in with_p2p.price_residual], admm_iterations=paper.iterations,
        admm_rho=rho, admm_boyd_iterations=boyd.iterations,
        distributed_gap=abs(paper.joint_cost - central.joint_cost) / abs(central.joint_cost),
        trade_difference=float(np.abs(paper.trades - central.trades).max()), cost_without_p2p=cost_without,
        cost_with_p2p=cost_with, cost_increase=cost_without / cost_with - 1, cobweb=cobweb(case, day, market, scales),
        midday_sales=-central.trades[:, :, MIDDAY].sum((1, 2)), dso_objective_tail=tail,
        lmp_mean=with_p2p.lmp.mean(1), stackelberg=stackelberg, sharing=central)
