"""Every answer of the bi-level solver checked by the code, and the result it returns.

A solution is verified (`verify`): the followers are re-solved at λ* by `best_response` and their
schedules and costs compared with the model's, the multipliers checked against their Big-Ms, λ*
re-scored by `evaluate` (the one scorer) and compared with the model's objective, and the MOP
set-points re-scored through the AC power flow. `finish` turns a checked solution and a proven
bound into a `KKTResult`; a result whose checks fail carries "verification_failed: …" as status.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from ...cases import HOURS, Case
from ...data import Day
from ...market import best_response, kkt_residuals, standard_solution
from ...scoring import Outcome, evaluate

#: a multiplier above this share of its Big-M is reported as sitting at its Big-M
BIGM_TOL = 1 - 1e-6
#: relative tolerance of "model objective = evaluate's objective". `evaluate` dispatches without
#: iterative refinement (the environments' speed), the certificate with it: on the small test case's
#: "economy only" scenario (losses not priced) the two dispatches of the same exchange power differ by
#: 1.1e-5 of the objective (0.013 ¥ of 1,167 ¥), on the default case by < 1e-9
OBJECTIVE_RTOL = 5e-5


@dataclass(frozen=True)
class Verification:
    """Checks of one solution, done by the code. Errors in MW, ¥ or ¥/MWh as named.

    exchange_error: max |P_model − P_best_response| (MW) over prosumers and hours; schedule_error: the
    same over every follower variable (MW, MWh); cost_error: max |C_n(model) − C_n(best_response)| ¥.
    follower_kkt: the largest residual of `market.kkt_residuals` of the re-solved followers.
    bigm_ratio: the largest μ/M over all bound multipliers; at_bigm: how many sit at their M (>= 1 − 1e-6).
    model_objective: the model's objective at its solution (¥); evaluated_objective: `evaluate` at λ*
    (F, plus the soft-limit penalty when voltage limits are soft); objective_error: model − evaluated (signed; the model may not be lower).
    setpoint_objective: `evaluate` at λ* with the model's MOP set-points (AC power flow, no optimiser;
    NaN for a case with DGs, whose output set-points do not fix).
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




def follower_cost(qp, x, prices) -> float:
    return float(0.5 * x @ (qp.Q * x) + qp.c @ x + prices @ (qp.G @ x + qp.h))


def revenue_by_duality(qp, f: dict, prices) -> float:
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


def verify(case: Case, day: Day, model, sol: dict, model_objective: float, setpoints: np.ndarray,
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
        cost_err = max(cost_err, abs(follower_cost(qp, fs["x"], prices) - float(response.cost[n])))
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
    if model.mop == "opf" and len(case.mop) and not len(case.generators):  # set-points leave DGs undecided
        try:
            setpoint_obj = float(evaluate(case, day, prices, mop=setpoints, response=response).dno_objective)
        except ValueError as err_sp:  # set-points off the MOP's DC balance (e.g. losses not priced)
            msgs.append(f"MOP set-points not scorable: {err_sp}")
    ver = Verification(exchange_error=exch_err, schedule_error=sched_err, cost_error=cost_err, follower_kkt=kkt,
                       bigm_ratio=ratio, at_bigm=at_bigm, model_objective=float(model_objective),
                       evaluated_objective=evaluated, objective_error=err, setpoint_objective=setpoint_obj,
                       passed=not msgs, messages=tuple(msgs))
    return ver, outcome


@dataclass(frozen=True)
class SolveRun:
    """What a bi-level solve carries to its result: method ("oa" or "misocp"), start (its
    `time.perf_counter()` at the start), gap_target (the relative gap that counts as optimal), the
    iterations so far and the history of (seconds, objective, bound)."""

    method: str
    start: float
    gap_target: float
    iterations: int = 1
    history: list = field(default_factory=list)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def finish(case, day, model, sol, setpoints, run: SolveRun, *, model_obj: float, bound: float, status_hint: str,
           solver_status: str) -> KKTResult:
    """The result of a solve that found prices (`sol`, the master's solution, its objective `model_obj`,
    the proven `bound`): verified (`verify`), then "optimal" at `run.gap_target`, else `status_hint`."""
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
    elif rel <= run.gap_target:
        status = "optimal"
    else:
        status = status_hint
    return KKTResult(prices=sol["prices"], mop_setpoints=setpoints, objective=objective, best_bound=bound, gap=rel,
                     status=status, solver_status=solver_status, solve_time=run.elapsed(), method=run.method,
                     verification=ver, outcome=outcome, iterations=run.iterations, history=run.history)


def failed_certificate(case, day, model, run: SolveRun, prices, response, res, lb: float, message: str) -> KKTResult:
    """The result of a solve whose prices have no certificate (`message` says why): λ scored by
    `evaluate` with the followers' `response` and the dispatch `res`, status "verification_failed"."""
    outcome = evaluate(case, day, prices, mop=model.mop, voltage_limits=model.voltage_limits, response=response)
    obj = scored_objective(outcome, model.voltage_limits)
    ver = Verification(exchange_error=np.nan, schedule_error=np.nan, cost_error=np.nan, follower_kkt=np.nan,
                       bigm_ratio=np.nan, at_bigm=0, model_objective=np.nan, evaluated_objective=obj,
                       objective_error=np.nan, setpoint_objective=np.nan, passed=False, messages=(message,))
    setpoints = setpoints_of(case, res.mop_p, res.mop_q) if model.mop == "opf" else np.zeros((2, len(case.mop), HOURS))
    lb = lb if lb < 1e19 else float("nan")
    return KKTResult(prices=prices, mop_setpoints=setpoints, objective=obj, best_bound=lb,
                     gap=(obj - lb) / max(abs(obj), 1e-9), status="verification_failed: " + message,
                     solver_status=str(model.m.getStatus()), solve_time=run.elapsed(), method=run.method,
                     verification=ver, outcome=outcome, iterations=run.iterations, history=run.history)


def setpoints_of(case, p, q) -> np.ndarray:
    """[P; Q] (2, K, 24) MW/Mvar with the DC balance Σ_k (P_k + A_k |S_k|) = 0 restored exactly.

    A solver leaves the balance off by its tolerance (~1e-7 p.u.); the terminal with the largest
    rating absorbs the residual (Newton on its P), so `evaluate` accepts the set-points.
    """
    k = len(case.mop)
    if k == 0 or p is None or p.shape != (k, HOURS):  # no MOP (or no values): nothing to balance
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
