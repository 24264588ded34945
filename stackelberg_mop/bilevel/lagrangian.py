"""A Lagrangian lower bound on the bi-level optimum: a second certificate beside `kkt.solve`'s.

The single-level model of `kkt` couples the prosumers only through the common prices λ and the
network's cost of their exchange power P. Give every prosumer n its own copy λⁿ of the prices
(multipliers πₙ, with Σₙ πₙ = 0) and the network its own copy of P (multipliers βₙ, ¥/MW). For every
(β, π) the Lagrangian

    L(β, π) = Σ_t min over P_t in its box of [ max_k cut_k,t(P_t) − Σ_n β_n,t P_n,t ]        (24 LPs)
            + Σ_n min over λⁿ in the price rules and xₙ optimal for λⁿ of
                  [ βₙ·Pₙ(xₙ) − ω_1 λⁿᵀPₙ(xₙ) + πₙ·λⁿ ]                     (prosumer n's own bi-level)

is a lower bound on the DNO's objective at every price vector: a bi-level solution (λ, x) gives a
feasible point of every part (λⁿ = λ, the copy P = P(x)) whose values add up to its objective,
because the β terms cancel, Σₙ πₙ·λ = 0 and the cuts under-estimate the network's convex cost
Φ_t(P) (`kkt.network_cut`). Each part is bounded below by what its solver proves: the LP's optimum
(HiGHS) and SCIP's dual bound of prosumer n's own KKT model (one follower of `kkt.KKTModel`, one
thread), so the bound holds even when a part stops at its time limit.

The multipliers are improved by a proximal bundle method (a QP over the last `bundle_size`
evaluations, Clarabel): β starts at the network's marginal costs at the given prices (ω_1 × LMP),
π at zero. On the reference day of `ieee33-mop` this proves more than the master of `kkt.solve`
after a few minutes on one thread, but stays short of a 1e-3 gap: the price copies keep
disagreeing (`spread`), the mark of a duality gap. `branch_and_bound` attacks it by splitting the
price box (under 0.1 % after 15 nodes; the measurements are in the lab notebook).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import _validate
from ..cases import HOURS, Case
from ..data import Day
from ..market import best_response, follower_qp, project_prices
from ..powerflow import check_market_options
from ..scoring import evaluate
from . import kkt


@dataclass
class LagrangianBound:
    """The best bound found and how it was reached.

    bound: the best L(β, π), ¥ (a proven lower bound on the DNO objective over the price box);
    start_bound: L at the starting multipliers; history: (seconds, L, best L) per evaluation;
    spread: at the best multipliers, the largest |λⁿ_t − mean_n λⁿ_t| of the prosumers' price copies,
    ¥/MWh (0 would mean the copies agree, i.e. no duality gap left at those prices);
    status: "time_limit", "evaluation_limit", "converged" (the bundle's predicted gain < `tol` ¥),
    "target" (the bound reached `target`) or "failed: …"; beta (N, 24) ¥/MW and pi (N, 24) MWh: the
    best multipliers (pass them as `start` to go on, e.g. on a narrower price box); prices (N, 24) ¥/MWh: the prosumers' price copies there;
    cuts: the number of network cuts; prox: the proximal weights at the end (pass them back as
    `prox` with `start` so that a resumed run does not take the first steps' large strides again).
    """

    bound: float
    start_bound: float
    status: str
    evaluations: int
    solve_time: float
    spread: float
    beta: np.ndarray
    pi: np.ndarray
    prices: np.ndarray
    cuts: int
    history: list = field(default_factory=list)
    prox: tuple = (np.nan, np.nan)


def network_cuts(case: Case, day: Day, prices: list, mop: str = "opf", voltage_limits: str = "hard"):
    """Outer-approximation cuts of the network's cost at the best responses to `prices`.

    Returns (Φ (K, 24) ¥, gradient (K, N, 24) ¥/MW, P̂ (K, N, 24) MW); price vectors whose dispatch
    fails are skipped (their cuts would not be valid).
    """
    phis, grads, p_hats = [], [], []
    for lam in prices:
        response = best_response(case, day, lam)
        if not response.ok:
            continue
        phi, grad, _ = kkt.network_cut(case, day, response.exchange_power, mop, voltage_limits)
        if phi is None:
            continue
        phis.append(phi)
        grads.append(grad)
        p_hats.append(response.exchange_power.copy())
    if not phis:
        raise ValueError("no price vector gave a network cut: the network is infeasible at every one")
    return np.array(phis), np.array(grads), np.array(p_hats)


def exchange_box(case: Case, day: Day) -> tuple[np.ndarray, np.ndarray]:
    """(N, 24) MW: the smallest and largest exchange power each prosumer can have in each hour."""
    lo, hi = [], []
    for n in range(len(case.prosumers)):
        qp = follower_qp(case, day, n)
        lo.append(qp.h + np.minimum(qp.G * qp.lower, qp.G * qp.upper).sum(axis=1))
        hi.append(qp.h + np.maximum(qp.G * qp.lower, qp.G * qp.upper).sum(axis=1))
    return np.array(lo), np.array(hi)


def network_part(beta: np.ndarray, cuts, p_lo: np.ndarray, p_hi: np.ndarray) -> tuple[float, np.ndarray]:
    """min over P in [p_lo, p_hi] of Σ_t [max_k cut_k,t(P_t) − β_·,t·P_·,t]: (value ¥, P (N, 24) MW).

    One LP per hour in (θ_t, P_·,t) with HiGHS; raises RuntimeError if HiGHS does not report optimal.
    """
    from scipy.optimize import linprog

    phis, grads, p_hats = cuts
    k, n_pros = grads.shape[0], grads.shape[1]
    value, p = 0.0, np.zeros((n_pros, HOURS))
    for t in range(HOURS):
        # θ ≥ Φ_k + g_k·(P − P̂_k)  ⇔  −θ + g_k·P ≤ g_k·P̂_k − Φ_k
        a_ub = np.hstack([-np.ones((k, 1)), grads[:, :, t]])
        b_ub = (grads[:, :, t] * p_hats[:, :, t]).sum(axis=1) - phis[:, t]
        res = linprog(np.concatenate([[1.0], -beta[:, t]]), A_ub=a_ub, b_ub=b_ub,
                      bounds=[(None, None)] + list(zip(p_lo[:, t], p_hi[:, t])), method="highs")
        if res.status != 0:
            raise RuntimeError(f"network part, hour {t}: HiGHS {res.message}")
        value += float(res.fun)
        p[:, t] = res.x[1:]
    return value, p


class ProsumerPart:
    """Prosumer n's own bi-level problem: its KKT model (`kkt.KKTModel` with one follower), built once;
    each evaluation only changes the objective βₙ·Pₙ − ω_1 λᵀPₙ + πₙ·λ."""

    def __init__(self, case: Case, day: Day, n: int, prices: np.ndarray, response, lo: np.ndarray,
                 hi: np.ndarray, mop: str = "opf", voltage_limits: str = "hard", bigm_scale: float = 1.0):
        """response: `best_response(case, day, prices)`, the known solution of the first warm start."""
        self.n, self.lo, self.hi = n, lo, hi
        self.model = kkt.KKTModel(case, day, None, mop, voltage_limits, lo, hi, bigm_scale, 1, False,
                                scip_params=kkt.SCIP_PARAMS, prosumers=[n])
        self._last = self.model.follower_values(prices, response)

    def solve(self, beta_n: np.ndarray, pi_n: np.ndarray, time_limit: float):
        """(SCIP's dual bound ¥, its best solution's objective ¥, λⁿ (24,) and Pₙ (24,) of that solution)."""
        from pyscipopt import quicksum

        model = self.model
        m = model.m
        if m.getStage() != 1:  # 1 = PROBLEM: back to the original problem to change the objective
            m.freeTransform()
        p_n = model.exchange[0]
        m.setObjective(model.neg_revenue[0] + quicksum(float(beta_n[t]) * p_n[t] for t in range(HOURS))
                       + quicksum(float(pi_n[t]) * model.lam[t] for t in range(HOURS)), "minimize")
        model.add_solution(self._last, 0.0)
        m.setParam("limits/time", max(0.5, time_limit))
        m.setParam("limits/gap", 1e-6)
        m.optimize()
        if m.getNSols() == 0:  # cannot happen with the warm start, but keep the bound honest
            raise RuntimeError(f"prosumer {self.n}: SCIP found no solution ({m.getStatus()})")
        sol = m.getBestSol()
        self._last = {v.name: m.getSolVal(sol, v) for v in m.getVars()}
        # SCIP's values may sit up to its feasibility tolerance outside the price box (seen: 3.7e-6
        # ¥/MWh above 1,100): the copy reported is kept inside, as kkt.solve projects its prices
        lam = np.clip([m.getSolVal(sol, v) for v in model.lam], self.lo, self.hi)
        f = model.followers[0]
        p = f.qp.G @ np.array([m.getSolVal(sol, v) for v in f.x]) + f.qp.h
        return float(m.getDualbound()), float(m.getSolObjVal(sol)), lam, p


@dataclass
class Evaluation:
    """L(β, π) and its supergradient: value ¥ (the bound: the parts' proven bounds); upper ¥: the
    parts' values at the solutions found (= value when every part is solved to optimality; the
    supergradient belongs to these solutions, so the bundle's model uses upper, which over-estimates
    the concave L everywhere); g_beta (N, 24) MW = Pₙ of the prosumer parts minus the network part's
    copy; g_pi (N, 24) ¥/MWh = λⁿ minus the mean of the copies; spread ¥/MWh = max |g_pi|; prices
    (N, 24): the copies λⁿ."""

    value: float
    upper: float
    g_beta: np.ndarray
    g_pi: np.ndarray
    spread: float
    prices: np.ndarray


class LagrangianDual:
    """The parts of L(β, π) for one case and day, built once (module docstring).

    prices: a good price vector (e.g. `kkt.solve(...).prices`): its network cut is exact and
    `start_beta` (ω_1 × its LMPs at the prosumers' buses) starts the multipliers; default the best of
    `kkt.start_prices`. price_lower/price_upper: optional (24,) bounds inside the price rules, as in
    `kkt.solve`. n_random_cuts: further network cuts at random prices (half uniform in the box, half
    around `prices`); part_time_limit: seconds per prosumer part per evaluation (its dual bound
    counts either way); refine: after each evaluation, add the network's cut at the exchange power
    the prosumer parts chose (the cuts are loose away from their points; L
    only rises with more cuts, so the bundle's older cuts may then under-estimate it: slower
    steps, never an invalid bound).
    """

    def __init__(self, case: Case, day: Day, prices: np.ndarray | None = None, price_lower=None,
                 price_upper=None, mop: str = "opf", voltage_limits: str = "hard", n_random_cuts: int = 60,
                 part_time_limit: float = 30.0, seed: int = 0, refine: bool = True):
        check_market_options(case, day, mop, voltage_limits)
        n_random_cuts = _validate.integer("n_random_cuts", n_random_cuts, lo=0)
        part_time_limit = _validate.number("part_time_limit", part_time_limit, lo=0, lo_open=True, unit="s")
        if prices is not None:
            prices = _validate.array("prices", prices, "¥/MWh")
            if prices.shape != (HOURS,):
                raise ValueError(f"prices: expected {HOURS} finite values ¥/MWh, got {prices!r}")
        lo, hi = kkt.price_box(case, day, price_lower, price_upper)
        candidates = kkt.start_prices(case, day, price_lower, price_upper)
        if prices is None:
            scores = [kkt.scored_objective(evaluate(case, day, p, mop=mop, voltage_limits=voltage_limits),
                                           voltage_limits) for p in candidates]
            prices = candidates[int(np.argmin(scores))]
        self.prices = project_prices(case, day, prices, price_lower, price_upper)
        rng = np.random.default_rng(seed)
        extra = [project_prices(case, day, rng.uniform(lo, hi) if k % 2 else self.prices + rng.normal(0, 150, HOURS),
                                price_lower, price_upper) for k in range(n_random_cuts)]
        self.cuts = network_cuts(case, day, [self.prices, *candidates, *extra], mop, voltage_limits)
        self.p_lo, self.p_hi = exchange_box(case, day)
        response = best_response(case, day, self.prices)  # one warm start for every part
        self.parts = [ProsumerPart(case, day, n, self.prices, response, lo, hi, mop, voltage_limits)
                      for n in range(len(case.prosumers))]
        self.part_time_limit = part_time_limit
        self.start_beta = self.cuts[1][0].copy()
        self.case, self.day, self.mop, self.voltage_limits, self.refine = case, day, mop, voltage_limits, refine

    def add_cut(self, exchange: np.ndarray) -> bool:
        """Add the network's cut at the exchange power (N, 24) MW; False if its dispatch fails."""
        phi, grad, _ = kkt.network_cut(self.case, self.day, exchange, self.mop, self.voltage_limits)
        if phi is None:
            return False
        phis, grads, p_hats = self.cuts
        self.cuts = (np.vstack([phis, phi[None]]), np.concatenate([grads, grad[None]]),
                     np.concatenate([p_hats, np.asarray(exchange, float)[None]]))
        return True

    def evaluate(self, beta: np.ndarray, pi: np.ndarray) -> Evaluation:
        """L(β, π), a lower bound on the DNO objective for any β and any π with Σₙ πₙ = 0."""
        beta, pi = np.asarray(beta, float), np.asarray(pi, float)
        if np.abs(pi.sum(axis=0)).max() > 1e-8 * max(1.0, np.abs(pi).max()):
            raise ValueError("pi: the multipliers of the price copies must sum to zero in every hour")
        value, p_net = network_part(beta, self.cuts, self.p_lo, self.p_hi)
        lams, ps = np.zeros_like(pi), np.zeros_like(pi)
        upper = value
        for n, part in enumerate(self.parts):
            bound, found, lams[n], ps[n] = part.solve(beta[n], pi[n], self.part_time_limit)
            value += bound
            upper += found
        if self.refine:
            self.add_cut(ps)
        g_pi = lams - lams.mean(axis=0)
        return Evaluation(value, upper, ps - p_net, g_pi, float(np.abs(g_pi).max()), lams)


def lagrangian_bound(case: Case, day: Day, prices: np.ndarray | None = None, time_limit: float = 600.0,
                     max_evaluations: int = 60, prox: tuple[float, float] = (0.01, 1e4), bundle_size: int = 40,
                     tol: float = 1e-3, start: tuple | None = None, target: float = np.inf,
                     verbose: bool = False, **options) -> LagrangianBound:
    """A lower bound on the bi-level optimum by Lagrangian decomposition (module docstring), the
    multipliers improved by a proximal bundle method until `time_limit` seconds (checked between
    evaluations), `max_evaluations`, or a predicted gain below `tol` ¥.

    prox: the proximal weights on β and on π (the step sizes; ×0.7 after a serious step, ×1.3 after
    a null step). target: stop as soon as the bound reaches it (status "target"; a branch-and-bound
    node that can be pruned). start: (β, π) to start from (default: β = `start_beta`, π = 0); π is projected
    onto Σₙ πₙ = 0. options: those of `LagrangianDual` (prices, price_lower, price_upper, mop,
    voltage_limits, n_random_cuts, part_time_limit, seed). A part that fails ends the run with
    status "failed: …" and the best bound so far (−inf if none).
    """
    time_limit = _validate.number("time_limit", time_limit, lo=0, lo_open=True, unit="s", allow_inf=True)
    max_evaluations = _validate.integer("max_evaluations", max_evaluations, lo=1)
    bundle_size = _validate.integer("bundle_size", bundle_size, lo=1)
    tol = _validate.number("tol", tol, lo=0, unit="¥")
    t0 = time.perf_counter()
    elapsed = lambda: time.perf_counter() - t0
    dual = LagrangianDual(case, day, **options)
    beta, pi = dual.start_beta, np.zeros_like(dual.start_beta)
    if start is not None:
        beta, pi = (np.array(a, float) for a in start)
        if beta.shape != dual.start_beta.shape or pi.shape != beta.shape or not (
                np.all(np.isfinite(beta)) and np.all(np.isfinite(pi))):
            raise ValueError(f"start: expected two finite arrays of shape {dual.start_beta.shape}")
        pi -= pi.mean(axis=0)
    try:
        ev = dual.evaluate(beta, pi)
    except RuntimeError as err:
        return LagrangianBound(-np.inf, -np.inf, f"failed: {err}", 0, elapsed(), np.nan, beta, pi,
                               np.full_like(beta, np.nan), len(dual.cuts[0]))
    status = "evaluation_limit"
    center = (ev.upper, beta, pi)
    best = (ev.value, beta, pi, ev.spread, ev.prices)
    bundle, history = [(ev.upper, beta, pi, ev.g_beta, ev.g_pi)], [(elapsed(), ev.value, ev.value)]
    u_beta, u_pi = prox
    while len(history) < max_evaluations:
        if best[0] >= target:
            status = "target"
            break
        if elapsed() >= time_limit:
            status = "time_limit"
            break
        step = _bundle_step(center, bundle[-bundle_size:], u_beta, u_pi)
        if step is None:
            status = "failed: the bundle QP did not solve"
            break
        beta_new, pi_new, predicted = step
        if predicted - center[0] < tol:
            status = "converged"
            break
        try:
            ev = dual.evaluate(beta_new, pi_new)
        except RuntimeError as err:
            status = f"failed: {err}"
            break
        bundle.append((ev.upper, beta_new, pi_new, ev.g_beta, ev.g_pi))
        if ev.value > best[0]:
            best = (ev.value, beta_new, pi_new, ev.spread, ev.prices)
        if ev.upper - center[0] >= 0.1 * (predicted - center[0]):  # serious step
            center = (ev.upper, beta_new, pi_new)
            u_beta, u_pi = 0.7 * u_beta, 0.7 * u_pi
        else:
            u_beta, u_pi = 1.3 * u_beta, 1.3 * u_pi
        history.append((elapsed(), ev.value, best[0]))
        if verbose:
            print(f"Lagrangian evaluation {len(history)}: L {ev.value:.3f} best {best[0]:.3f} "
                  f"predicted {predicted:.3f} spread {ev.spread:.0f} ¥/MWh ({elapsed():.1f} s)")
    return LagrangianBound(bound=best[0], start_bound=history[0][1], status=status, evaluations=len(history),
                           solve_time=elapsed(), spread=best[3], beta=best[1], pi=best[2], prices=best[4],
                           cuts=len(dual.cuts[0]), history=history, prox=(u_beta, u_pi))


def _bundle_step(center, bundle, u_beta: float, u_pi: float):
    """The proximal bundle step: max r − u_β/2‖Δβ‖² − u_π/2‖Δπ‖² with r below every bundle cut
    (L_k + g_k·(β − β_k, π − π_k)) and Σ_n π_n = 0. Returns (β, π, predicted L) or None."""
    import cvxpy as cp

    _, beta_c, pi_c = center
    d_beta, d_pi, r = cp.Variable(beta_c.shape), cp.Variable(pi_c.shape), cp.Variable()
    cons = [cp.sum(d_pi, axis=0) == 0]
    for value, beta_k, pi_k, g_beta, g_pi in bundle:
        cons.append(r <= value + cp.sum(cp.multiply(g_beta, beta_c + d_beta - beta_k))
                    + cp.sum(cp.multiply(g_pi, pi_c + d_pi - pi_k)))
    prob = cp.Problem(cp.Maximize(r - u_beta / 2 * cp.sum_squares(d_beta) - u_pi / 2 * cp.sum_squares(d_pi)), cons)
    try:
        prob.solve(solver=cp.CLARABEL)
    except cp.error.SolverError:
        return None
    if prob.status not in ("optimal", "optimal_inaccurate") or d_beta.value is None:
        return None
    pi_new = pi_c + d_pi.value
    return beta_c + d_beta.value, pi_new - pi_new.mean(axis=0), float(r.value)
