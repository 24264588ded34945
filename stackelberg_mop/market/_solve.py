"""One cvxpy solve that reports instead of raising: the markets' convex problems share it."""

from __future__ import annotations

import time

import cvxpy as cp


def solve_reported(problem: cp.Problem, **options) -> tuple[str, float]:
    """Solve `problem` with Clarabel; (cvxpy status or "solver_error: ...", seconds). A solver failure
    is a status, never an exception (the caller returns it in its result)."""
    start = time.perf_counter()
    try:
        problem.solve(solver="CLARABEL", **options)
        status = problem.status
    except cp.SolverError as err:
        status = f"solver_error: {err}"
    return status, time.perf_counter() - start
