"""`solve`: the bi-level optimum of one day with a proven bound, by either method (as a pricing policy:
`policies.baselines.KKTOptimumPolicy`)."""

from __future__ import annotations

import time

from ... import _validate
from ...cases import Case
from ...data import Day
from ...powerflow import check_market_options
from ...scoring import evaluate
from .heuristics import start_prices
from .model import new_model, price_box
from .outer import OuterApproximation
from .scip import default_threads, scip_status
from .verification import KKTResult, SolveRun, failed_certificate, finish, scored_objective, setpoints_of

METHODS = ("oa", "misocp")


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
    (`MAX_DEFAULT_THREADS`: two concurrent searches were slower on 2 cores),
    or `STACKELBERG_MOP_THREADS`. Above one, SCIP solves concurrently (one search per thread,
    sharing solutions and bounds). bigm_scale: multiplies the derived Big-Ms (1.0; smaller values exist
    only to test that the verification catches them).
    scip_params: SCIP parameters for the master (default `SCIP_PARAMS`).
    Returns a `KKTResult`; the objective is λ*'s score by `evaluate`, the bound SCIP's proven bound.
    """
    _validate.choice("method", method, METHODS)
    check_market_options(case, day, mop, voltage_limits)
    time_limit = _validate.number("time_limit", time_limit, lo=0, lo_open=True, unit="s")
    gap = _validate.number("gap", gap, lo=0, hi=1)
    threads = default_threads() if threads is None else _validate.integer("threads", threads, lo=1)
    bigm_scale = _validate.number("bigm_scale", bigm_scale, lo=0, lo_open=True)
    max_iterations = _validate.integer("max_iterations", max_iterations, lo=1)
    _validate.flag("verbose", verbose)
    start = time.perf_counter()
    lo, hi = price_box(case, day, price_lower, price_upper)
    if method == "misocp":
        return _solve_misocp(case, day, time_limit, gap, mop, voltage_limits, lo, hi, threads, bigm_scale,
                             verbose, start, scip_params)
    return OuterApproximation(case, day, time_limit, gap, mop, voltage_limits, lo, hi, threads, bigm_scale,
                              verbose, start, scip_params).solve(max_iterations)


def _solve_misocp(case, day, time_limit, gap, mop, voltage_limits, lo, hi, threads, bigm_scale, verbose,
                  start, scip_params=None) -> KKTResult:
    """Method "misocp": the followers' KKT and the DistFlow rows in one SCIP tree."""
    model = new_model(case, day, True, mop, voltage_limits, lo, hi, bigm_scale, threads, verbose, scip_params)
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
        return failed_certificate(case, day, model, SolveRun("misocp", start, gap), prices, out.response, out.dispatch,
                                  m.getDualbound(), f"SCIP found no solution ({m.getStatus()})")
    sol = model.solution()
    setpoints = setpoints_of(case, sol.get("mop_p"), sol.get("mop_q"))
    bound = m.getDualbound()
    history = [(time.perf_counter() - start, sol["objective"], bound)]
    status = scip_status(m)
    hint = {"timelimit": "time_limit"}.get(status, status)  # one vocabulary with "oa"
    return finish(case, day, model, sol, setpoints, SolveRun("misocp", start, gap, 1, history),
                  model_obj=sol["objective"], bound=bound, status_hint=hint, solver_status=status)
