"""The DNO's 24-hour dispatch: grid exchange, MOP set-points and the network state.

Given the prosumers' exchange power, the DNO minimises (MODEL.md, "Upper level", all in ¥)

    F = ω_1 · (grid cost + DG cost + c_loss · (line + MOP losses) − revenue) + ω_2 · c_V · Σ_t Σ_i |v_i,t − 1|

subject to DistFlow on the radial tree, the MOP's converter model, the DNO's distributed generators
(quadratic cost, written as an epigraph cone so that the problem stays a linear-objective SOCP), the
substation's import/export limits and the voltage/current limits. Each device family is a hook of
`DispatchModel` (`_mop`, `_generators`, `_voltages`, ...): a new device adds one hook, its variables'
values in `variable_values` and its ranges in the misocp master's `_ranges`. The
problem (what is optimised) is written once; the network formulation is a separate, swappable object
(PowerModels' problem/formulation split): `SOCP` (branch flow with the second-order-cone relaxation
ℓ v >= P² + Q²) or `LinDistFlow` (lossless, ℓ = 0). Each model is built once with cvxpy Parameters
and re-solved (DPP): only the loads and tariff change between calls.

Hours are independent given the exchange power (no storage on the DNO side): the same definition
builds a model of any window of consecutive hours (``hours``, default the whole day), and a one-hour
model (``hours=1``, solved for hour t with ``solve(..., start=t)``) gives that hour's block of the
day's optimum, which is what the hourly game needs. Only the one-hour problem is compiled: a window
of several hours is solved hour by hour with the one-hour model's solver (`_HourlyClarabel`), each
hour stopping at its own iteration count, and its solution written into the window's variables;
the hours are shared among `dispatch_threads()` identical solvers, one per thread.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from .. import _validate
from .._system import available_cpus, threads_from_env
from ..cache import cached
from ..cases import HOURS, Case
from ..data import Day, check_day
from ..options import FORMULATION_NAMES, MOP_MODES, VOLTAGE_MODES
from .network import Feeder, feeder

#: ¥ per p.u. (of v = |V|²) per bus-hour outside the limits in "soft" mode; reported separately
SOFT_VOLTAGE_PENALTY = 1e4


def soft_limit_penalty(excess):
    """¥ of voltage excess (p.u. of v per bus-hour, summed: a number, array or cvxpy/SCIP expression)
    in "soft" mode, the one place its price is applied (the dispatch model and the KKT master)."""
    return SOFT_VOLTAGE_PENALTY * excess


def voltage_excess(case: Case, v: np.ndarray) -> np.ndarray:
    """How far squared voltages v (p.u.², any shape) lie outside [v_min², v_max²]: the soft limits'
    excess at its tightest value (0 inside the limits)."""
    return np.maximum(np.maximum(case.v_min**2 - v, v - case.v_max**2), 0.0)


#: Clarabel re-uses its solver between days (warm_start = a data update, which needs presolve off).
#: Iterative refinement doubles the time per iteration for ~1e-2 ¥/MWh in the LMPs and ~1e-6 relative
#: in the constraints (benchmarks/dispatch.py), so the first attempt runs without it; a solve that ends
#: inaccurate (seen on some soft-limit days with the MOP off) is repeated with it (ACCURATE_OPTIONS).
CLARABEL_OPTIONS = {"warm_start": True, "presolve_enable": False, "iterative_refinement_enable": False}
ACCURATE_OPTIONS = {"warm_start": True, "presolve_enable": False, "iterative_refinement_enable": True}


def _flat(e):
    """A cvxpy expression as a vector, column by column (hour by hour for (·, H) arrays)."""
    return cp.reshape(e, (e.size,), order="F")


class SOCP:
    """Branch flow with the second-order-cone relaxation of ℓ_ij v_i = P_ij² + Q_ij² (exact when gap ≈ 0)."""

    name = "socp"

    def current(self, nb: int, hours: int = HOURS):
        return cp.Variable((nb, hours), name="current_sq")  # ℓ >= 0 follows from the cone

    def constraints(self, fd: Feeder, v_from, p, q, current) -> list:
        return [cp.SOC(_flat(current + v_from), cp.vstack([_flat(2 * p), _flat(2 * q), _flat(current - v_from)]),
                       axis=0)]

    def branch_limits(self, p, q, current, limited: np.ndarray, i_max: np.ndarray) -> list:
        """The current ratings (p.u.) of the branches `limited`: ℓ <= I_max²."""
        return [current[limited] <= (i_max[limited] ** 2)[:, None]]


class LinDistFlow:
    """Linearised DistFlow: lossless branches (ℓ = 0), voltage drop linear in the flows."""

    name = "lindistflow"

    def current(self, nb: int, hours: int = HOURS):
        return None

    def constraints(self, fd: Feeder, v_from, p, q, current) -> list:
        return []

    def branch_limits(self, p, q, current, limited: np.ndarray, i_max: np.ndarray) -> list:
        """The current ratings (p.u.) of the branches `limited` at 1 p.u. voltage (LinDistFlow's own
        approximation): the apparent flow ||(P, Q)|| <= I_max, one cone per branch-hour."""
        bound = np.repeat(i_max[limited][:, None], p.shape[1], axis=1)
        return [cp.SOC(_flat(cp.Constant(bound)), cp.vstack([_flat(p[limited]), _flat(q[limited])]), axis=0)]


FORMULATIONS = {"socp": SOCP, "lindistflow": LinDistFlow}
assert tuple(FORMULATIONS) == FORMULATION_NAMES


@dataclass(frozen=True, eq=False)
class DispatchResult:
    """The DNO's dispatch for one day. Powers in MW/Mvar, costs in ¥ per day, voltages in p.u.
    From a model of a shorter window (``DispatchModel(hours=H)``) every (·, 24) array below has H
    columns, hours start, ..., start + H − 1 of the day, and the costs are the window's.

    status: "optimal", "infeasible" or "solver_error: ..." (then the numbers are NaN).
    grid_power: (24,) MW drawn from the HV grid (> 0: the DNO buys). mop_p, mop_q, mop_loss: (K, 24)
    injections into the AC buses and converter losses. dg_p, dg_q: (G, 24) MW/Mvar of the case's
    generators (G = 0 rows for a case without any); dg_cost: their cost Σ a P² + b P + c, ¥. branch_p, branch_q: (nb, 24) sending-end flows;
    current_sq: (nb, 24) ℓ in p.u.; v: (B, 24) squared voltage magnitude, p.u.; line_loss: (24,) MW.
    Costs: grid_cost, line_loss_cost, mop_loss_cost, voltage_deviation_cost (c_V Σ|v − 1|, before ω_2),
    voltage_penalty (soft mode only; not part of the DNO objective): the model's own objective terms,
    whose auxiliary variables are tight only where their weight is > 0 (e.g. not the deviation when
    ω_2 = 0); `evaluate` prices the state itself with `network_costs`.
    relaxation_gap: (24,) max over branches of ℓ v_i − P² − Q² (p.u.², MODEL.md Eq. 41; 0 for LinDistFlow).
    lmp: (B, 24) ¥/MWh, the dual of each bus's active-power balance: the DNO objective's increase per
    MWh of extra load at that bus, divided by ω_1 to read as operating cost.
    """

    status: str
    grid_power: np.ndarray
    grid_q: np.ndarray
    mop_p: np.ndarray
    mop_q: np.ndarray
    mop_loss: np.ndarray
    branch_p: np.ndarray
    branch_q: np.ndarray
    current_sq: np.ndarray
    v: np.ndarray
    line_loss: np.ndarray
    grid_cost: float
    line_loss_cost: float
    mop_loss_cost: float
    voltage_deviation_cost: float
    voltage_penalty: float
    relaxation_gap: np.ndarray
    lmp: np.ndarray
    dg_p: np.ndarray
    dg_q: np.ndarray
    dg_cost: float
    solve_time: float
    start: int = 0

    @property
    def voltage(self) -> np.ndarray:
        """(B, 24) voltage magnitude √v, p.u."""
        return np.sqrt(np.maximum(self.v, 0.0))


def _nan_result(status: str, fd: Feeder, k: int, g: int, elapsed: float, hours: int = HOURS) -> DispatchResult:
    nan = lambda *shape: np.full(shape, np.nan)
    h = hours
    return DispatchResult(status=status, grid_power=nan(h), grid_q=nan(h), mop_p=nan(k, h),
                          mop_q=nan(k, h), mop_loss=nan(k, h), branch_p=nan(fd.n_branch, h),
                          branch_q=nan(fd.n_branch, h), current_sq=nan(fd.n_branch, h),
                          v=nan(fd.n_bus, h), line_loss=nan(h), grid_cost=np.nan, line_loss_cost=np.nan, mop_loss_cost=np.nan,
                          voltage_deviation_cost=np.nan, voltage_penalty=np.nan, relaxation_gap=nan(h),
                          lmp=nan(fd.n_bus, h), dg_p=nan(g, h), dg_q=nan(g, h), dg_cost=np.nan, solve_time=elapsed)


def _value(expression) -> float:
    """An expression's value, NaN where the last solve left none (an infeasible problem)."""
    return np.nan if expression.value is None else float(expression.value)


_threads: int | None = None
_pools: dict = {}


def dispatch_threads() -> int:
    """How many threads solve the hours of a day's dispatch: `set_dispatch_threads`'s value, else the
    environment variable STACKELBERG_MOP_THREADS (which sets SCIP's threads too), else 2 where this
    process may use two or more cores (1 otherwise). Two threads take the day's 24 hour solves from
    ~13 to ~7 ms (the lab notebook); set 1 where every core already runs a process of its own
    (AsyncVectorEnv, SubprocVecEnv; the benchmark's and `optima`'s workers set their share themselves).
    The answer does not depend on it."""
    if _threads is not None:
        return _threads
    env = threads_from_env()
    return env if env is not None else min(2, available_cpus())


def set_dispatch_threads(threads: int | None) -> None:
    """Set the number of threads of the day's dispatch for this process (None: back to the default)."""
    global _threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads: expected a whole number >= 1 or None, got {threads!r}")
    _threads = threads


def _pool(k: int):
    """The process's pool of k threads (made on first use; a forked child makes its own)."""
    from concurrent.futures import ThreadPoolExecutor

    key = (k, os.getpid())
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(k, thread_name_prefix="dispatch")
    return _pools[key]


def _settings(options: dict):
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
    refinement is repeated with it ({**options, **ACCURATE_OPTIONS})."""
    return status == cp.OPTIMAL_INACCURATE and not options.get("iterative_refinement_enable", True)


class _DirectClarabel:
    """A DPP cvxpy problem whose parameters enter only the objective vector c and the right-hand side b,
    re-solved by one Clarabel solver without cvxpy's per-solve work.

    cvxpy re-applies every parameter to the whole constraint matrix, hands Clarabel new P, q, A and b
    (re-equilibrating and refilling the KKT matrix) and inverts its reduction chain: about 15 ms of a
    50 ms dispatch. Here the affine maps parameters → (c, b) are read once from cvxpy's own compiled
    problem, and each solve is `update(q=c, b=b)` and `solve()`; primal values go straight back into the
    cvxpy Variables, so every expression of the model still evaluates. `DispatchModel._first_direct`
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
        # where each parameter sits in the parameter vector (for `_HourlyClarabel`)
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

    def twin(self, options: dict) -> _DirectClarabel:
        """A second solver of the same problem, set up on the same data as this one (so that it
        returns what this one returns, bit for bit), to solve other hours on another thread. It is
        set up here, on the caller's thread, because `setup_data` touches the cvxpy parameters."""
        if self.canonical is None:
            raise ValueError("a twin needs the canonical set-up data (the model's `canonical`)")
        other = copy.copy(self)
        other.solver = self._new_solver(_settings(options), *self.setup_data())
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
        settings = _settings(options)
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


class _HourlyClarabel:
    """A window of H hours solved hour by hour with the one-hour model's direct Clarabel solver,
    without compiling the H-hour cvxpy problem (~1.5 s for the day, against ~0.04 s for one hour).

    Given the exchange power the hours are independent, so the H-hour problem is the one-hour
    problem H times, hour t's (c, b) being the one-hour affine maps applied to hour t's parameter
    values. Solving the hours one by one rather than as one block-diagonal problem lets each hour
    stop at its own iteration count (about 10 against 14 for the block; the lab notebook), and
    the day's solve of an hour is the one-hour model's solve of it. The solutions are written into
    the H-hour model's own cvxpy Variables (column t is hour t), so every expression of that model
    evaluates as on cvxpy's path. `DispatchModel._first_hourly` checks the first solve against the
    one-hour model solved hour by hour through cvxpy's parameters.
    """

    def __init__(self, model: DispatchModel, hour: DispatchModel):
        one = self.one = hour.direct_solver()
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
                    status, x_t, z_t = self.solvers[j].solve_data(c[:, t], b[:, t], {**options, **ACCURATE_OPTIONS})
                out.append((t, status, x_t, z_t))
                if x_t is None:
                    break
            return out

        others = [_pool(k - 1).submit(hours_of, j) for j in range(1, k)]  # solvers 1, ..., k − 1 on the pool
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


class DispatchModel:
    """One day's DNO dispatch problem, built once and re-solved for new loads and exchange power.

    formulation: "socp" (default) or "lindistflow". mop: "opf" (the MOP is dispatched) or "off" (idle).
    voltage_limits: "hard" (V_min <= |V| <= V_max), "soft" (violations allowed at
    SOFT_VOLTAGE_PENALTY ¥ per p.u. per bus-hour, reported apart from the objective) or "none".
    Branch current limits come from the network's ``line.max_i_ka`` (values >= 1000 kA mean none), each
    formulation's `branch_limits` hook writing them (SOCP: ℓ <= I²; LinDistFlow: ||(P, Q)|| <= I at 1 p.u.).
    direct: re-solve by driving Clarabel directly (`_DirectClarabel`, checked against cvxpy at the first
    solve; about 20 % faster; a model of several hours is solved hour by hour with the one-hour
    model's solver, `_HourlyClarabel`); False keeps cvxpy's own path. After `solve`, ``objective.value`` and the
    variables in ``vars`` hold the solution (``problem.value``/``problem.status`` are cvxpy's and are
    not updated by direct solves). hours: the length of the window of consecutive hours the model
    dispatches (default the day; 1 for one hour at a time); `solve(..., start=t)` loads hours
    t, ..., t + hours − 1 of the day, and the result's arrays have `hours` columns.
    """

    def __init__(self, case: Case, formulation: str = "socp", mop: str = "opf", voltage_limits: str = "hard",
                 solver: str = "CLARABEL", exchange: str = "parameter", direct: bool = True, hours: int = HOURS):
        if formulation not in FORMULATIONS:
            raise ValueError(f"formulation: must be one of {tuple(FORMULATIONS)}, got {formulation!r}")
        if mop not in MOP_MODES:
            raise ValueError(f"mop: must be one of {MOP_MODES} for the dispatch, got {mop!r}")
        if voltage_limits not in VOLTAGE_MODES:
            raise ValueError(f"voltage_limits: must be one of {VOLTAGE_MODES}, got {voltage_limits!r}")
        if exchange not in ("parameter", "variable"):
            raise ValueError(f"exchange: must be 'parameter' or 'variable', got {exchange!r}")
        hours = _validate.integer("hours", hours, lo=1, hi=HOURS)
        self.case, self.solver, self.exchange_mode = case, solver, exchange
        self.options = (formulation, mop, voltage_limits)
        self.hours = H = int(hours)
        self.window = slice(0, H)
        self.formulation = FORMULATIONS[formulation]()
        fd = self.feeder = feeder(case)
        obj, s = case.objective, case.s_base
        nb, nbus, k = fd.n_branch, fd.n_bus, len(case.mop)
        demand_p = self._parameters(H, exchange)

        p = cp.Variable((nb, H), name="branch_p")
        q = cp.Variable((nb, H), name="branch_q")
        v = cp.Variable((nbus, H), name="v")
        pg = cp.Variable(H, name="grid_p")
        qg = cp.Variable(H, name="grid_q")
        buying = cp.Variable(H, name="grid_buying")  # max(P^G, 0) (its sign by a constraint, not an attribute,
        # so every variable keeps its own column in the solver's data: see `_DirectClarabel`)
        current = self.formulation.current(nb, H)
        self.vars = {"p": p, "q": q, "v": v, "pg": pg, "qg": qg, "current": current}

        mop_cons = self._mop(H) if k and mop == "opf" else []
        generator_cons, self.dg_cost = self._generators(H)
        cons = self._distflow(demand_p) + [buying >= pg, buying >= 0] + generator_cons + self._grid_limits(pg)
        cons += self.formulation.constraints(fd, v[fd.from_pos], p, q, current) + mop_cons
        limited = np.flatnonzero(np.isfinite(fd.i_max))
        if limited.size:
            cons += self.formulation.branch_limits(p, q, current, limited, fd.i_max)

        voltage_cons, deviation, penalty = self._voltages(v, voltage_limits)
        cons += voltage_cons

        # costs in ¥ (powers in p.u. × s MW × 1 h)
        self.grid_cost = s * (self.sell @ pg + self.premium @ buying)
        self.line_loss_cost = 0 if current is None else obj.loss_cost * s * cp.sum(fd.r @ current)
        self.mop_loss_cost = obj.loss_cost * s * cp.sum(self.vars["ploss"]) if "ploss" in self.vars else 0
        self.voltage_deviation_cost = obj.voltage_cost * (cp.sum(deviation) + H * abs(case.v_slack**2 - 1))
        self.voltage_penalty = penalty
        self.objective = obj.weigh(self.grid_cost + self.dg_cost + self.line_loss_cost + self.mop_loss_cost,
                                   self.voltage_deviation_cost) + penalty
        self.constraints = cons
        self.problem = cp.Problem(cp.Minimize(self.objective), cons)
        assert self.problem.is_dcp(dpp=True)
        # Clarabel without cvxpy's per-solve work (`_DirectClarabel`), compiled at the first solve
        self._direct, self._direct_possible = None, direct and solver == "CLARABEL" and exchange == "parameter"

    def _parameters(self, H: int, exchange: str):
        """The parameters: per-unit demand at every bus, and the tariff (¥/MWh); with exchange="variable"
        the prosumers' exchange is a variable `self.exchange` (MW) added to the base demand (ADMM's DNO).
        Returns the per-unit active demand (bus × hour) expression."""
        case, nbus = self.case, self.feeder.n_bus
        self.demand_q = cp.Parameter((nbus, H), name="demand_q")
        self.buy = cp.Parameter(H, name="buy_price")
        self.premium = cp.Parameter(H, nonneg=True, name="buy_minus_sell")
        self.sell = self.buy - self.premium
        if exchange == "parameter":
            self.demand_p = cp.Parameter((nbus, H), name="demand_p")
            return self.demand_p
        n = len(case.prosumers)
        self.base_p = cp.Parameter((nbus, H), name="base_p")
        self.exchange = cp.Variable((n, H), name="exchange")
        return self.base_p + case.placement(case.prosumers.bus) @ self.exchange / case.s_base

    def _distflow(self, demand_p) -> list:
        """DistFlow on the radial tree: active and reactive balance at every bus (the active one kept
        as ``balance_p``, whose dual gives the LMPs), the voltage drop along every branch, the slack."""
        fd, var = self.feeder, self.vars
        p, q, v, current = var["p"], var["q"], var["v"], var["current"]
        root = np.zeros(fd.n_bus)
        root[fd.root] = 1.0
        a_in, a_out = (fd.incidence > 0).astype(float), (fd.incidence < 0).astype(float)
        delivered_p = p if current is None else p - cp.multiply(fd.r[:, None], current)
        delivered_q = q if current is None else q - cp.multiply(fd.x[:, None], current)
        inj_p = cp.outer(root, var["pg"]) - demand_p
        inj_q = cp.outer(root, var["qg"]) - self.demand_q
        if "pm" in var:
            at_mop = self.case.placement(self.case.mop.bus)
            inj_p = inj_p + at_mop @ var["pm"]
            inj_q = inj_q + at_mop @ var["qm"]
        if "dg_p" in var:
            gen = self.case.generators
            at_dg = self.case.placement(gen.bus)
            inj_p = inj_p + (at_dg * (gen.p_max / self.case.s_base)) @ var["dg_p"]
            inj_q = inj_q + at_dg @ var["dg_q"]
        self.balance_p = a_in @ delivered_p - a_out @ p + inj_p == 0
        drop = 2 * (cp.multiply(fd.r[:, None], p) + cp.multiply(fd.x[:, None], q))
        if current is not None:
            drop = drop - cp.multiply((fd.r**2 + fd.x**2)[:, None], current)
        return [self.balance_p, a_in @ delivered_q - a_out @ q + inj_q == 0, v[fd.to_pos] == v[fd.from_pos] - drop,
                v[fd.root] == self.case.v_slack**2]

    def _mop(self, H: int) -> list:
        """The MOP's variables (into ``vars``) and constraints: injections at its buses, losses
        A_k |S_k| by a cone, capacity S_k, DC balance Σ_k (P_k + loss_k) = 0."""
        mop, s, k = self.case.mop, self.case.s_base, len(self.case.mop)
        pm, qm = cp.Variable((k, H), name="mop_p"), cp.Variable((k, H), name="mop_q")
        ploss = cp.Variable((k, H), name="mop_loss")  # >= A_k |S_k| >= 0 by its cone
        cons = []
        for i in range(k):
            cons += [cp.SOC(np.full(H, mop.s_max[i] / s), cp.vstack([pm[i], qm[i]]), axis=0)]
            if mop.loss_coefficient[i] > 0:
                cons += [cp.SOC(ploss[i] / mop.loss_coefficient[i], cp.vstack([pm[i], qm[i]]), axis=0)]
            else:
                cons += [ploss[i] == 0]
        cons += [cp.sum(pm + ploss, axis=0) == 0]
        self.vars.update(pm=pm, qm=qm, ploss=ploss)
        return cons

    def _generators(self, H: int) -> tuple[list, object]:
        """The DGs' variables (into ``vars``), constraints and cost (¥, cvxpy expression; 0 without DGs).

        Each DG's output is scaled to its own rating, p̃ = P / P_max ∈ [P_min/P_max, 1] (``dg_p``), so
        that every entry is O(1); its cost a P² + b P + c is a_i P_max² e + b_i P_max p̃ + c_i with the
        epigraph e >= p̃² (``dg_epi``) written as the cone ||(2p̃, e − 1)|| <= e + 1. A quadratic
        objective would leave the linear-objective direct Clarabel path, and the cone reaches the
        misocp master as the convex quadratic 4p̃² − 4e <= 0. Reactive output ``dg_q`` is per unit."""
        gen, s = self.case.generators, self.case.s_base
        g = len(gen)
        if g == 0:
            return [], 0
        p = cp.Variable((g, H), name="dg_p")
        q = cp.Variable((g, H), name="dg_q")
        epi = cp.Variable((g, H), name="dg_epi")
        cons = [p >= (gen.p_min / gen.p_max)[:, None], p <= 1, q >= (gen.q_min / s)[:, None], q <= (gen.q_max / s)[:, None],
                cp.SOC(_flat(epi + 1), cp.vstack([_flat(2 * p), _flat(epi - 1)]), axis=0)]
        cost = (cp.sum((gen.cost_quadratic * gen.p_max**2) @ epi) + cp.sum((gen.cost_linear * gen.p_max) @ p)
                + H * float(gen.cost_fixed.sum()))
        self.vars.update(dg_p=p, dg_q=q, dg_epi=epi)
        return cons, cost

    def _grid_limits(self, pg) -> list:
        """The substation's import (pg <= limit) and export (−pg <= limit) limits, where finite."""
        grid, s = self.case.grid, self.case.s_base
        cons = [pg <= grid.import_limit / s] if np.isfinite(grid.import_limit) else []
        return cons + ([pg >= -grid.export_limit / s] if np.isfinite(grid.export_limit) else [])

    def _voltages(self, v, voltage_limits: str):
        """(constraints, |v − 1| variable, soft-limit penalty expression or 0) for the buses but the
        root: hard limits, soft ones with an excess variable, or none."""
        case, H = self.case, v.shape[1]
        others = np.setdiff1d(np.arange(v.shape[0]), [self.feeder.root])
        cons, penalty = [], 0
        if voltage_limits == "hard":
            cons += [v[others] >= case.v_min**2, v[others] <= case.v_max**2]
        elif voltage_limits == "soft":
            excess = cp.Variable((others.size, H), name="voltage_excess")
            cons += [excess >= 0, v[others] >= case.v_min**2 - excess, v[others] <= case.v_max**2 + excess]
            penalty = soft_limit_penalty(cp.sum(excess))
        deviation = cp.Variable((others.size, H), name="voltage_deviation")  # |v − 1| (the root's is fixed)
        cons += [deviation >= v[others] - 1, deviation >= 1 - v[others]]
        return cons, deviation, penalty

    def set_day(self, day: Day, exchange_power: np.ndarray | None = None, start: int = 0) -> None:
        """Load hours start, ..., start + hours − 1 of the day's base loads and tariff and of the
        prosumers' exchange power (N, 24) MW into the parameters (exchange_power None with
        exchange="variable")."""
        case = self.case
        day.check(case)
        start = _validate.integer(f"start (the first hour of a {self.hours}-hour window)", start, lo=0,
                               hi=HOURS - self.hours)
        w = self.window = slice(start, start + self.hours)
        self.demand_q.value = day.base_q[:, w] / case.s_base
        self.buy.value = day.buy_price[w]
        self.premium.value = day.buy_price[w] - day.sell_price[w]
        if self.exchange_mode == "variable":
            if exchange_power is not None:
                raise ValueError("exchange_power: the model's exchange is a variable; pass None")
            self.base_p.value = day.base_p[:, w] / case.s_base
            return
        exchange = np.asarray(exchange_power, dtype=float)
        if exchange.shape != (len(case.prosumers), HOURS) or not np.all(np.isfinite(exchange)):
            raise ValueError(f"exchange_power: expected finite (N, 24) = ({len(case.prosumers)}, 24) MW, "
                             f"got shape {exchange.shape}")
        demand = day.base_p.copy()
        np.add.at(demand, case.bus_position(case.prosumers.bus), exchange)
        self.demand_p.value = demand[:, w] / case.s_base

    def variable_values(self, result: DispatchResult) -> dict[str, np.ndarray]:
        """This model's variables at `result` (a dispatch with the same options), by name, per unit,
        (size, hours) arrays: the state the result reports and the auxiliary variables at their
        tightest values (max(P^G, 0), |v − 1|, the voltage excess); ℓ, the MOP's set-points and its
        losses are moved onto their cones where the interior-point solution sits ~1e-7 on the wrong side, so that a
        solver with an absolute tolerance (SCIP, the misocp master) accepts the point."""
        case, fd, s = self.case, self.feeder, self.case.s_base
        p, q, v = result.branch_p / s, result.branch_q / s, result.v
        others = np.arange(fd.n_bus) != fd.root
        values = {"branch_p": p, "branch_q": q, "v": v, "grid_p": result.grid_power[None] / s,
                  "grid_q": result.grid_q[None] / s, "grid_buying": np.maximum(result.grid_power, 0.0)[None] / s,
                  "current_sq": np.maximum(result.current_sq, (p**2 + q**2) / v[fd.from_pos] * (1 + 1e-9)),
                  "voltage_deviation": np.abs(v[others] - 1),
                  "voltage_excess": voltage_excess(case, v[others])}
        pm, qm = result.mop_p / s, result.mop_q / s
        over = np.hypot(pm, qm) / (case.mop.s_max[:, None] / s)
        pm, qm = (x / np.maximum(over, 1.0) for x in (pm, qm))  # inside the rating (by ~1e-7 where outside)
        values.update(mop_p=pm, mop_q=qm, mop_loss=np.maximum(
            result.mop_loss / s, case.mop.loss_coefficient[:, None] * np.hypot(pm, qm)))
        gen = case.generators
        dg = np.clip(result.dg_p / gen.p_max[:, None], (gen.p_min / gen.p_max)[:, None], 1.0)
        values.update(dg_p=dg, dg_q=np.clip(result.dg_q, gen.q_min[:, None], gen.q_max[:, None]) / s, dg_epi=dg**2)
        missing = [var.name() for var in self.problem.variables() if var.name() not in values]
        if missing:
            raise ValueError(f"variable_values: no value for the variables {missing} from a DispatchResult")
        return {var.name(): values[var.name()] for var in self.problem.variables()}

    def _run(self, options: dict) -> tuple[str, np.ndarray | None]:
        """Solve with the parameters' current values: (cvxpy status, dual of the P balance); an
        inaccurate solve is repeated with iterative refinement (`needs_refinement`), which the hourly
        path does hour by hour itself, so that its hours stay those of the one-hour model."""
        if self._direct is None and self._direct_possible:
            status, dual = self._first_direct(options)
        elif self._direct is not None:
            status, dual = self._direct.solve(options)
        else:
            status, dual = self._run_cvxpy(options)
        if needs_refinement(status, options) and not isinstance(self._direct, _HourlyClarabel):
            return self._run({**options, **ACCURATE_OPTIONS})
        return status, dual

    def _run_cvxpy(self, options: dict) -> tuple[str, np.ndarray | None]:
        with warnings.catch_warnings():  # the status is reported; cvxpy's warning would repeat it
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            self.problem.solve(solver=self.solver, **(options if self.solver == "CLARABEL" else {}))
        return self.problem.status, self.balance_p.dual_value

    def _canonical(self) -> None:
        """Parameters at the case's own data (nominal loads, no exchange, its tariff): what the direct
        solver is set up on, whichever day is solved first."""
        case, w = self.case, slice(0, self.hours)
        p_nom, q_nom = case.nominal_load
        self.demand_q.value = np.tile(q_nom[:, None], (1, self.hours)) / case.s_base
        (self.demand_p if self.exchange_mode == "parameter" else self.base_p).value = (
            np.tile(p_nom[:, None], (1, self.hours)) / case.s_base)
        self.buy.value = case.tariff.buy_price[w]
        self.premium.value = case.tariff.buy_price[w] - case.tariff.sell_price[w]

    def direct_solver(self) -> _DirectClarabel | None:
        """The direct Clarabel path, compiled and checked (on the case's own data) if it was not yet;
        None where the model keeps cvxpy's path."""
        if self._direct is None and self._direct_possible:
            current = [(par, par.value) for par in self.problem.parameters()]
            self._canonical()
            self._first_direct(CLARABEL_OPTIONS)
            for par, value in current:
                par.value = value
        return self._direct

    def _same(self, status, dual, objective, reference, reference_dual, reference_objective,
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

    def _first_hourly(self, options: dict) -> tuple[str, np.ndarray | None] | None:
        """A window of several hours: the one-hour model's solver run hour by hour (`_HourlyClarabel`),
        its first solve checked against the one-hour model solved through its own parameters hour by
        hour (the same solver on the same numbers: what the check catches is a parameter or variable
        put in the wrong place); None if it cannot be built or disagrees."""
        try:
            hour = dispatch_model(self.case, *self.options, hours=1)
            direct = _HourlyClarabel(self, hour)
            status, dual = direct.solve(options)
            objective = _value(self.objective) if dual is not None else np.nan
            ref_status, ref_duals, ref_objective = cp.OPTIMAL, [], 0.0
            pairs = [(par, next(p for p in hour.problem.parameters() if p.name() == par.name()))
                     for par in self.problem.parameters()]
            for t in range(self.hours):
                for par, hour_par in pairs:
                    hour_par.value = np.asarray(par.value)[..., t:t + 1]
                st, dual_t = hour._run(options)
                if st not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                    ref_status = st
                    break
                ref_status = st if st != cp.OPTIMAL else ref_status
                ref_duals.append(dual_t)
                ref_objective += _value(hour.objective)
        except Exception:  # noqa: BLE001 - any incompatibility means: compile this model itself
            return None
        ref_dual = np.concatenate(ref_duals, axis=-1) if len(ref_duals) == self.hours else None
        if not self._same(status, dual, objective, ref_status, ref_dual, ref_objective, rtol=1e-9):
            return None
        self._direct = direct
        return status, dual

    def _first_direct(self, options: dict) -> tuple[str, np.ndarray | None]:
        """Compile the direct Clarabel path and check its first solve against cvxpy's; on any
        difference (or a cvxpy whose internals differ) the model keeps the cvxpy path. The answer
        returned is the direct path's, as for every later solve. A model of several hours first
        tries the one-hour model's solver hour by hour (no compilation of its own)."""
        self._direct_possible = False
        if self.hours > 1:
            first = self._first_hourly(options)
            if first is not None:
                return first
        try:
            direct = _DirectClarabel(self.problem, self.balance_p, self._canonical)
            status, dual = direct.solve(options)
        except Exception:  # noqa: BLE001 - any incompatibility means: use cvxpy's own path
            return self._run_cvxpy(options)
        objective = float(self.objective.value) if dual is not None else np.nan
        reference, reference_dual = self._run_cvxpy(options)
        reference_objective = _value(self.objective)
        if self._same(status, dual, objective, reference, reference_dual, reference_objective):
            self._direct = direct
            return direct.solve(options)  # the variables hold cvxpy's values now; the same solve again
        return reference, reference_dual

    def solve(self, day: Day, exchange_power: np.ndarray, accurate: bool = False, start: int = 0) -> DispatchResult:
        """Dispatch the day (hours start, ..., start + hours − 1 of it for a shorter window); a solver
        failure is returned as a status, never raised.

        accurate: solve with iterative refinement from the start (duals to ~1e-6 ¥/MWh instead of
        ~1e-2), for callers that build cuts from the LMPs (the bi-level optimum).
        """
        self.set_day(day, exchange_power, start)
        fd, k, s, h = self.feeder, len(self.case.mop), self.case.s_base, self.hours
        gen = self.case.generators
        g = len(gen)
        began = time.perf_counter()
        try:
            status, balance_dual = self._run(ACCURATE_OPTIONS if accurate else CLARABEL_OPTIONS)
        except cp.SolverError as err:
            return _nan_result(f"solver_error: {err}", fd, k, g, time.perf_counter() - began, h)
        elapsed = time.perf_counter() - began
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return _nan_result("infeasible" if "infeasible" in status else f"solver_error: {status}", fd, k, g, elapsed, h)
        val = lambda e: float(e.value) if isinstance(e, cp.Expression) else float(e)
        var = self.vars
        p, q, v = var["p"].value, var["q"].value, var["v"].value
        current = np.zeros_like(p) if var["current"] is None else var["current"].value
        if var["current"] is None:
            gap = np.zeros(h)
        else:
            gap = (current * v[fd.from_pos] - p**2 - q**2).max(axis=0)
        zeros = np.zeros((k, h))
        dg_p = var["dg_p"].value * gen.p_max[:, None] if g else np.zeros((0, h))
        dg_q = var["dg_q"].value * s if g else np.zeros((0, h))
        omega = self.case.objective.omega_economic
        # extra load at a bus lowers its balance row; cvxpy's dual y of "balance == 0" gives ∂F/∂load = −y
        lmp = -balance_dual / s / (omega if omega > 0 else 1.0)
        return DispatchResult(
            status="optimal" if status == cp.OPTIMAL else "optimal_inaccurate",
            grid_power=var["pg"].value * s, grid_q=var["qg"].value * s,
            mop_p=var["pm"].value * s if "pm" in var else zeros, mop_q=var["qm"].value * s if "qm" in var else zeros,
            mop_loss=var["ploss"].value * s if "ploss" in var else zeros,
            branch_p=p * s, branch_q=q * s, current_sq=current, v=v, line_loss=(fd.r @ current) * s,
            grid_cost=val(self.grid_cost), line_loss_cost=val(self.line_loss_cost),
            mop_loss_cost=val(self.mop_loss_cost), voltage_deviation_cost=val(self.voltage_deviation_cost),
            voltage_penalty=val(self.voltage_penalty), relaxation_gap=gap, lmp=lmp, dg_p=dg_p, dg_q=dg_q,
            dg_cost=float(gen.cost(dg_p).sum()), solve_time=elapsed,
            start=self.window.start)


def join_windows(results: list[DispatchResult]) -> DispatchResult:
    """One day's `DispatchResult` from the results of consecutive windows that cover it (e.g. the 24
    one-hour solves of the hourly game): arrays side by side, costs and solve times summed; the
    status is "optimal" only when every window's is (else the first other one)."""
    results = sorted(results, key=lambda r: r.start)
    hours = [r.start + r.grid_power.shape[-1] for r in results]
    if not results or results[0].start != 0 or hours[-1] != HOURS or any(
            r.start != end for r, end in zip(results[1:], hours[:-1])):
        raise ValueError(f"results: the windows must cover hours 0..{HOURS - 1} once, in order; got starts "
                         f"{[r.start for r in results]}")
    bad = [r.status for r in results if r.status != "optimal"]
    fields = {}
    for f in dataclasses.fields(DispatchResult):
        values = [getattr(r, f.name) for r in results]
        if f.name == "status":
            fields[f.name] = bad[0] if bad else "optimal"
        elif f.name == "start":
            fields[f.name] = 0
        elif isinstance(values[0], np.ndarray):
            fields[f.name] = np.concatenate(values, axis=-1)
        else:
            fields[f.name] = float(sum(values))
    return DispatchResult(**fields)


def dispatch_model(case: Case, formulation: str = "socp", mop: str = "opf", voltage_limits: str = "hard",
                   hours: int = HOURS) -> DispatchModel:
    """The cached `DispatchModel` of `case` for these options (built on first use); hours: its window
    (24 for the day, 1 for one hour at a time)."""
    cache = cached(case, "dispatch_models", dict)
    key = (formulation, mop, voltage_limits, hours)
    if key not in cache:
        cache[key] = DispatchModel(case, formulation, mop, voltage_limits, hours=hours)
    return cache[key]


def dispatch(case: Case, day: Day, exchange_power, formulation: str = "socp", mop: str = "opf",
             voltage_limits: str = "hard") -> DispatchResult:
    """Solve the DNO's dispatch of `day` for the prosumers' exchange power (N, 24) MW."""
    return dispatch_model(case, formulation, mop, voltage_limits).solve(day, exchange_power)


def check_market_options(case, day, mop="opf", voltage_limits: str = "hard", formulation: str = "socp") -> None:
    """The arguments every solver of the market takes, checked where it enters: a `Case`, a `Day` that
    fits it, mop "opf"/"off" (None: not a mode, e.g. `evaluate`'s set-points, checked by the caller),
    voltage_limits "hard"/"soft"/"none", formulation "socp"/"lindistflow"."""
    check_day(case, day)
    if mop is not None:
        _validate.choice("mop", mop, MOP_MODES)
    _validate.choice("voltage_limits", voltage_limits, VOLTAGE_MODES)
    _validate.choice("formulation", formulation, FORMULATION_NAMES)
