"""The dispatch's fast path: Clarabel driven directly, the one module that knows cvxpy's internals.

cvxpy re-applies every parameter to the whole problem at each solve; `DirectClarabel` reads the affine
maps parameters → (c, b) once from cvxpy's compiled problem and re-solves with ``update(q=c, b=b)``;
`HourlyClarabel` solves a window of hours with the one-hour model's solver, hour by hour. Both read
private parts of cvxpy (``get_problem_data``'s parametric program, the Clarabel interface's status map
and cone conversion), which may change between cvxpy versions. Three guards keep that honest:

- `check_cvxpy_version` warns (`SlowPathWarning`) when cvxpy is outside the versions this path was
  tested with (`TESTED_CVXPY`);
- `first_solve` checks the fast path's first answer against cvxpy's own, and falls back to cvxpy's path
  when it cannot be built or disagrees, with a `SlowPathWarning` naming why (never silently);
- the test suite asserts that the default case's dispatch takes the hourly fast path, so a cvxpy
  release whose internals moved fails the tests rather than only slowing every step.
"""

from __future__ import annotations

import copy
import warnings

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from .threads import dispatch_threads, thread_pool

#: the cvxpy versions (major, minor) whose internals this module was written and tested against
TESTED_CVXPY = ((1, 9),)


class SlowPathWarning(RuntimeWarning):
    """The dispatch runs on cvxpy's own (slower) path, or its fast path is used with an untested cvxpy."""


def cvxpy_version() -> tuple[int, int]:
    """cvxpy's (major, minor) version."""
    major, minor = cp.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


_version_checked = False


def check_cvxpy_version() -> None:
    """Warn once per process when cvxpy is not among `TESTED_CVXPY` (the fast path is still checked
    against cvxpy's own answer at its first solve)."""
    global _version_checked
    if not _version_checked and cvxpy_version() not in TESTED_CVXPY:
        warnings.warn(f"cvxpy {cp.__version__} is not among the versions the direct Clarabel path was tested with "
                      f"{['.'.join(map(str, v)) for v in TESTED_CVXPY]}; its first solve is checked against cvxpy's",
                      SlowPathWarning, stacklevel=3)
    _version_checked = True


#: Clarabel re-uses its solver between days (warm_start = a data update, which needs presolve off).
#: Iterative refinement doubles the time per iteration for ~1e-2 ¥/MWh in the LMPs and ~1e-6 relative
#: in the constraints (benchmarks/dispatch.py), so the first attempt runs without it; a solve that ends
#: inaccurate (seen on some soft-limit days with the MOP off) is repeated with it (`refined`).
#: The feasibility tolerance (relative primal and dual residuals) is 1e-7 rather than Clarabel's 1e-8:
#: on a feeder whose branch impedances span four orders of magnitude (the 69-bus one: 3e-5 to 0.3
#: p.u.) the residual of the voltage-drop rows stalls at ~1.5e-8 with or without refinement, and a
#: solve would end "inaccurate" with a point good to 1e-7; on the 33-bus feeder the objective moves by
#: ~5e-9 relative (the lab notebook). The accurate solves, whose LMPs make the bi-level's cuts, keep 1e-8.
CLARABEL_OPTIONS = {"warm_start": True, "presolve_enable": False, "iterative_refinement_enable": False,
                    "tol_feas": 1e-7}
ACCURATE_OPTIONS = {"warm_start": True, "presolve_enable": False, "iterative_refinement_enable": True,
                    "tol_feas": 1e-8}


def clarabel_settings(options: dict):
    """Clarabel's settings for these options (cvxpy's "warm_start" has no Clarabel counterpart)."""
    import clarabel

    settings = clarabel.DefaultSettings()
    settings.verbose = False
    for key, value in options.items():
        if key != "warm_start":
            setattr(settings, key, value)
    return settings


def needs_refinement(status: str, options: dict) -> bool:
    """The dispatch's one rule for inaccurate solves: a solve that ends inaccurate without iterative
    refinement is repeated with it (`refined`)."""
    return status == cp.OPTIMAL_INACCURATE and not options.get("iterative_refinement_enable", True)


def refined(options: dict) -> dict:
    """`options` with iterative refinement on (the retry of an inaccurate solve, same tolerances)."""
    return {**options, "iterative_refinement_enable": True}


class DirectClarabel:
    """A DPP cvxpy problem whose parameters enter only the objective vector c and the right-hand side b,
    re-solved by one Clarabel solver without cvxpy's per-solve work.

    cvxpy re-applies every parameter to the whole constraint matrix, hands Clarabel new P, q, A and b
    (re-equilibrating and refilling the KKT matrix) and inverts its reduction chain: about 15 ms of a
    50 ms dispatch. Here the affine maps parameters → (c, b) are read once from cvxpy's own compiled
    problem, and each solve is `update(q=c, b=b)` and `solve()`; primal values go straight back into the
    cvxpy Variables, so every expression of the model still evaluates. `first_solve`
    compares the first solve with cvxpy's; a model that does not compile this way (or fails that check)
    keeps the cvxpy path.
    """

    def __init__(self, problem: cp.Problem, dual_of: cp.Constraint, canonical=None):
        from cvxpy.cvxcore.python import canonInterface
        from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import CLARABEL, dims_to_solver_cones
        from cvxpy.reductions.solvers.solver import Solver

        self.status_map = CLARABEL.STATUS_MAP  # Clarabel's status names → cvxpy's, as cvxpy reads them

        data, _, inverse = problem.get_problem_data(cp.CLARABEL)
        prog = data["param_prob"]
        if prog.P is not None:
            raise ValueError("quadratic objective")
        indices, indptr, shape = prog.reduced_A.problem_data_index
        n = self.n = shape[1] - 1
        tensor = sp.csr_array(prog.reduced_A.reduced_mat)  # rows: the nonzeros of [A | b], columns: [θ, 1]
        # the parameters must not touch A: its values are those of this first compilation
        if tensor[: indptr[n]][:, :-1].count_nonzero():
            raise ValueError("parameters enter the constraint matrix")
        self.b_rows, self.b_map = indices[indptr[n]:indptr[n + 1]], tensor[indptr[n]:indptr[n + 1]]
        self.c_map = sp.csr_array(prog.q)[:n]
        self.offset_map = sp.csr_array(prog.q)[n:n + 1]  # the objective's constant term
        self.m, self.A, self.cones = shape[0], sp.csc_array(data["A"]), dims_to_solver_cones(data["dims"])
        self.param_vector = lambda: canonInterface.get_parameter_vector(
            prog.total_param_size, prog.param_id_to_col, prog.param_id_to_size,
            lambda pid: np.asarray(prog.id_to_param[pid].value))
        self.columns = [(v, prog.var_id_to_col[v.id]) for v in problem.variables()]
        self.parameters = [prog.id_to_param[pid] for pid in prog.param_id_to_col if pid in prog.id_to_param]
        # where each parameter sits in the parameter vector (for `HourlyClarabel`)
        self.param_size = prog.total_param_size
        self.param_columns = [(prog.id_to_param[pid], col) for pid, col in prog.param_id_to_col.items()
                              if pid in prog.id_to_param]
        self.constant_col = next(col for pid, col in prog.param_id_to_col.items() if pid not in prog.id_to_param)
        row = 0
        for con in inverse[-1][Solver.EQ_CONSTR]:
            if con.id == dual_of.id:
                break
            row += con.size
        else:
            raise ValueError("dual constraint not found among the equalities")
        self.dual_rows, self.dual_shape = slice(row, row + dual_of.size), dual_of.shape
        c, b = self.data()
        if not (np.allclose(c, data["c"], rtol=0, atol=1e-12) and np.allclose(b, data["b"], rtol=0, atol=1e-12)):
            raise ValueError("the affine maps do not reproduce cvxpy's data")
        self.solver, self._setup_data = None, None
        # the solver is set up once, on data that do not depend on which day came first (Clarabel
        # keeps the scaling of its set-up data through `update`): `canonical()` loads such values into
        # the parameters (the model's own choice), after which the current ones are restored
        self.canonical = canonical

    def setup_data(self) -> tuple[np.ndarray, np.ndarray]:
        """(c, b) at `canonical()`'s values, computed once; the parameters' current values are kept."""
        if self._setup_data is None:
            current = [par.value for par in self.parameters]
            self.canonical()
            self._setup_data = self.data()
            for par, value in zip(self.parameters, current):
                par.value = value
        return self._setup_data

    def _new_solver(self, settings, c: np.ndarray, b: np.ndarray):
        import clarabel

        c0, b0 = (c, b) if self.canonical is None else self.setup_data()
        return clarabel.DefaultSolver(sp.csc_array((self.n, self.n)), c0, self.A, b0, self.cones, settings)

    def twin(self, options: dict) -> DirectClarabel:
        """A second solver of the same problem, set up on the same data as this one (so that it
        returns what this one returns, bit for bit), to solve other hours on another thread. It is
        set up here, on the caller's thread, because `setup_data` touches the cvxpy parameters."""
        if self.canonical is None:
            raise ValueError("a twin needs the canonical set-up data (the model's `canonical`)")
        other = copy.copy(self)
        other.solver = self._new_solver(clarabel_settings(options), *self.setup_data())
        return other

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        theta = self.param_vector()
        b = np.zeros(self.m)
        b[self.b_rows] = self.b_map @ theta
        return self.c_map @ theta, b

    def offset(self) -> float:
        """The objective's constant term at the parameters' current values (c·x + offset is the objective)."""
        return float((self.offset_map @ self.param_vector())[0])

    def solve(self, options: dict) -> tuple[str, np.ndarray | None]:
        """Solve with the parameters' current values; (cvxpy status, dual of `dual_of` or None).
        The variables' values are set when a solution is present."""
        status, x, z = self.solve_data(*self.data(), options)
        if x is None:
            return status, None
        self._save(x)
        return status, self._dual(z)

    def solve_data(self, c: np.ndarray, b: np.ndarray, options: dict):
        """Solve the compiled problem with objective vector c and right-hand side b:
        (cvxpy status, x, z), x and z None unless a solution is present."""
        settings = clarabel_settings(options)
        if self.solver is None:
            self.solver = self._new_solver(settings, c, b)
        self.solver.update(q=c, b=b, settings=settings)
        sol = self.solver.solve()
        status = self.status_map.get(str(sol.status), cp.SOLVER_ERROR)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return status, None, None
        return status, np.asarray(sol.x), np.asarray(sol.z)

    def _save(self, x: np.ndarray) -> None:
        for var, col in self.columns:
            var.save_value(x[col:col + var.size].reshape(var.shape, order="F"))  # no re-validation

    def _dual(self, z: np.ndarray) -> np.ndarray:
        return z[self.dual_rows].reshape(self.dual_shape, order="F")


class HourlyClarabel:
    """A window of H hours (`model`, a `DispatchModel`) solved hour by hour with the one-hour model's direct Clarabel solver,
    without compiling the H-hour cvxpy problem (~1.5 s for the day, against ~0.04 s for one hour).

    Given the exchange power the hours are independent, so the H-hour problem is the one-hour
    problem H times, hour t's (c, b) being the one-hour affine maps applied to hour t's parameter
    values. Solving the hours one by one rather than as one block-diagonal problem lets each hour
    stop at its own iteration count (about 10 against 14 for the block; the lab notebook), and
    the day's solve of an hour is the one-hour model's solve of it. The solutions are written into
    the H-hour model's own cvxpy Variables (column t is hour t), so every expression of that model
    evaluates as on cvxpy's path. `first_solve` checks the first solve against the
    one-hour model solved hour by hour through cvxpy's parameters.
    """

    def __init__(self, model, hour):
        # a one-hour solver whose check on the case's own data found no solution (an infeasible hour)
        # is checked against cvxpy hour by hour below, through the one-hour model's own solves
        one = self.one = hour.direct_solver() or hour._candidate
        if one is None:
            raise ValueError("the one-hour model has no direct Clarabel path")
        self.hours = model.hours
        by_name = {par.name(): par for par in model.problem.parameters()}
        self.param_slots = [(by_name[par.name()], col, par.size) for par, col in one.param_columns]
        own = {var.name(): var for var in model.problem.variables()}
        self.columns = [(own[var.name()], col, var.size) for var, col in one.columns]
        self.dual_rows = one.dual_rows
        self.solvers = [one]  # solver j solves hours j, j + k, ... (k = dispatch_threads())

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """(c (n, H), b (m, H)): column t is hour t's one-hour problem data."""
        one = self.one
        theta = np.zeros((one.param_size + 1, self.hours))  # column t: hour t's parameter vector
        theta[one.constant_col] = 1.0
        for par, col, size in self.param_slots:
            theta[col:col + size] = np.reshape(par.value, (size, self.hours), order="F")  # column t: hour t
        b = np.zeros((one.m, self.hours))
        b[one.b_rows] = one.b_map @ theta
        return one.c_map @ theta, b

    def solve(self, options: dict) -> tuple[str, np.ndarray | None]:
        """Solve every hour; (status, dual of the P balance (bus, H) or None). An hour that ends
        inaccurate is solved again with iterative refinement (`needs_refinement`); the status is
        "optimal" only when every hour's is; the first hour without a solution ends the solve.
        With `dispatch_threads()` = k > 1 the hours are dealt to k solvers set up on the same data
        (hour t to solver t mod k), each on its own thread: Clarabel releases the GIL while it
        iterates, and every solver returns what the first would, so the answer does not depend on k."""
        c, b = self.data()
        k = min(dispatch_threads(), self.hours)
        while len(self.solvers) < k:
            self.solvers.append(self.one.twin(options))

        def hours_of(j: int) -> list:
            out = []
            for t in range(j, self.hours, k):
                status, x_t, z_t = self.solvers[j].solve_data(c[:, t], b[:, t], options)
                if needs_refinement(status, options):
                    status, x_t, z_t = self.solvers[j].solve_data(c[:, t], b[:, t], refined(options))
                out.append((t, status, x_t, z_t))
                if x_t is None:
                    break
            return out

        others = [thread_pool(k - 1).submit(hours_of, j) for j in range(1, k)]  # solvers 1, ..., k − 1 on the pool
        solved = hours_of(0) + [r for part in others for r in part.result()]  # solver 0 on this thread
        x, z, worst = np.empty((self.one.n, self.hours)), np.empty((self.one.m, self.hours)), cp.OPTIMAL
        for t, status, x_t, z_t in sorted(solved, key=lambda r: r[0]):
            if x_t is None:
                return status, None
            x[:, t], z[:, t] = x_t, z_t
            worst = status if status != cp.OPTIMAL else worst
        for var, col, size in self.columns:
            var.save_value(x[col:col + size].reshape(var.shape, order="F"))
        return worst, z[self.dual_rows]


def same_solution(status, dual, objective, reference, reference_dual, reference_objective,
                  rtol: float = 1e-7) -> bool:
    """Two solves agree: status, the objective tightly (`rtol`) and the duals loosely (a wrong
    column or row would show grossly; the optimum itself may be degenerate, with states a few
    1e-5 apart)."""
    same = status == reference and (dual is None) == (reference_dual is None)
    if same and dual is not None:
        scale = max(float(np.abs(reference_dual).max()), 1.0)
        same = (abs(objective - reference_objective) <= rtol * max(abs(objective), 1.0)
                and float(np.abs(dual - reference_dual).max()) <= 1e-3 * scale)
    return same


def expression_value(expression) -> float:
    """An expression's value, NaN where the last solve left none (an infeasible problem)."""
    return np.nan if expression.value is None else float(expression.value)


def _first_hourly(model, hour_model, options: dict):
    """A window of several hours: the one-hour model's solver run hour by hour (`HourlyClarabel`),
    its first solve checked against the one-hour model solved through its own parameters hour by
    hour (the same solver on the same numbers: what the check catches is a parameter or variable
    put in the wrong place). (status, dual, solver), a string saying why not, or (status, None, None)
    when neither side has a solution (an infeasible day: the check waits for the next solve)."""
    try:
        hour = hour_model()
        direct = HourlyClarabel(model, hour)
        status, dual = direct.solve(options)
        objective = expression_value(model.objective) if dual is not None else np.nan
        ref_status, ref_duals, ref_objective = cp.OPTIMAL, [], 0.0
        pairs = [(par, next(p for p in hour.problem.parameters() if p.name() == par.name()))
                 for par in model.problem.parameters()]
        for t in range(model.hours):
            for par, hour_par in pairs:
                hour_par.value = np.asarray(par.value)[..., t:t + 1]
            st, dual_t = hour._run(options)
            if st not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                ref_status = st
                break
            ref_status = st if st != cp.OPTIMAL else ref_status
            ref_duals.append(dual_t)
            ref_objective += expression_value(hour.objective)
    except Exception as err:  # noqa: BLE001 - any incompatibility means: compile this model itself
        return f"the hourly path cannot be built ({type(err).__name__}: {err})"
    ref_dual = np.concatenate(ref_duals, axis=-1) if len(ref_duals) == model.hours else None
    if dual is None and ref_dual is None and status == ref_status:
        return status, None, None  # no solution on either side: nothing to compare yet
    if not same_solution(status, dual, objective, ref_status, ref_dual, ref_objective, rtol=1e-9):
        return "the hourly path disagrees with the one-hour model solved by cvxpy"
    return status, dual, direct


def first_solve(model, options: dict, hour_model=None, candidate=None):
    """The first solve of a `DispatchModel` (its parameters hold the data): the fastest path that
    agrees with cvxpy. A model of several hours first tries the one-hour model's solver hour by hour
    (`hour_model()` builds that model; no compilation of its own), then its own compiled problem
    (`DirectClarabel`; `candidate`: one compiled at an earlier, undecided solve), then cvxpy's path.
    Returns (status, dual of the P balance, solver, path): path "hourly" / "direct" / "cvxpy" with the
    fast solver (None for "cvxpy"), or path None when the check could not decide because neither side
    found a solution (an infeasible day), solver then the compiled candidate to check at the next
    solve. A path given up is reported by a `SlowPathWarning` naming why. The answer returned is the
    chosen path's, as every later solve's."""
    check_cvxpy_version()
    reasons = []
    if hour_model is not None and candidate is None:
        first = _first_hourly(model, hour_model, options)
        if not isinstance(first, str) and first[2] is None:
            return first[0], None, None, None
        if not isinstance(first, str):
            return (*first, "hourly")
        reasons.append(first)
    try:
        direct = candidate or DirectClarabel(model.problem, model.balance_p, model._canonical)
        status, dual = direct.solve(options)
    except Exception as err:  # noqa: BLE001 - any incompatibility means: use cvxpy's own path
        reasons.append(f"the direct path cannot be built ({type(err).__name__}: {err})")
        _report(model, reasons, "cvxpy")
        return (*model._run_cvxpy(options), None, "cvxpy")
    objective = float(model.objective.value) if dual is not None else np.nan
    reference, reference_dual = model._run_cvxpy(options)
    reference_objective = expression_value(model.objective)
    if dual is None and status == reference and reference not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return reference, None, direct, None  # no solution on either side: decided at the next solve
    if same_solution(status, dual, objective, reference, reference_dual, reference_objective):
        _report(model, reasons, "direct")
        return (*direct.solve(options), direct, "direct")  # the variables hold cvxpy's values now: again
    reasons.append("the direct path disagrees with cvxpy")
    _report(model, reasons, "cvxpy")
    return reference, reference_dual, None, "cvxpy"


def _report(model, reasons: list[str], path: str) -> None:
    if reasons:
        warnings.warn(f"dispatch model of {model.hours} hour(s) {model.options}: {'; '.join(reasons)}: "
                      f"solved by the slower {path} path", SlowPathWarning, stacklevel=4)
