"""The DNO's 24-hour dispatch: grid exchange, MOP set-points and the network state.

Given the prosumers' exchange power, the DNO minimises (MODEL.md, "Upper level", all in ¥)

    F = ω_1 · (grid cost + DG cost + c_loss · (line + MOP losses) − revenue) + ω_2 · c_V · Σ_t Σ_i |v_i,t − 1|

subject to DistFlow on the radial tree, the MOP's converter model, the DNO's distributed generators
(quadratic cost, written as an epigraph cone so that the problem stays a linear-objective SOCP), the
substation's import/export limits and the voltage/current limits. Each device family is a hook of
`DispatchModel` (`_mop`, `_generators`, `_voltages`, ...): a new device adds one hook, its variables'
values in `variable_values` and its ranges in the misocp master's `_ranges`. The
problem (what is optimised) is written once; the network formulation is a separate, swappable object
(PowerModels' problem/formulation split, `formulations`): `SOCP` (branch flow with the second-order-cone relaxation
ℓ v >= P² + Q²) or `LinDistFlow` (lossless, ℓ = 0). Each model is built once with cvxpy Parameters
and re-solved (DPP): only the loads and tariff change between calls.

Hours are independent given the exchange power (no storage on the DNO side): the same definition
builds a model of any window of consecutive hours (``hours``, default the whole day), and a one-hour
model (``hours=1``, solved for hour t with ``solve(..., start=t)``) gives that hour's block of the
day's optimum, which is what the hourly game needs. Only the one-hour problem is compiled: a window
of several hours is solved hour by hour with the one-hour model's solver (`clarabel_backend`), each
hour stopping at its own iteration count, and its solution written into the window's variables;
the hours are shared among `dispatch_threads()` identical solvers, one per thread.
"""

from __future__ import annotations

import time
import warnings

import cvxpy as cp
import numpy as np

from .. import _validate
from ..cache import cached
from ..cases import HOURS, Case, check_case
from ..data import Day, check_day
from ..options import FORMULATION_NAMES, MOP_MODES, VOLTAGE_MODES
from .clarabel_backend import (
    ACCURATE_OPTIONS,
    CLARABEL_OPTIONS,
    DirectClarabel,
    HourlyClarabel,
    first_solve,
    needs_refinement,
    refined,
)
from .formulations import FORMULATIONS, flat, soft_limit_penalty, voltage_excess
from .network import feeder
from .result import DispatchResult, nan_result, read_result


class DispatchModel:
    """One day's DNO dispatch problem, built once and re-solved for new loads and exchange power.

    formulation: "socp" (default) or "lindistflow". mop: "opf" (the MOP is dispatched) or "off" (idle).
    voltage_limits: "hard" (V_min <= |V| <= V_max), "soft" (violations allowed at
    SOFT_VOLTAGE_PENALTY ¥ per p.u. per bus-hour, reported apart from the objective) or "none".
    Branch current limits come from the network's ``line.max_i_ka`` (values >= 1000 kA mean none), each
    formulation's `branch_limits` hook writing them (SOCP: ℓ <= I²; LinDistFlow: ||(P, Q)|| <= I at 1 p.u.).
    direct: re-solve by driving Clarabel directly (`DirectClarabel`, checked against cvxpy at the first
    solve; about 20 % faster; a model of several hours is solved hour by hour with the one-hour
    model's solver, `HourlyClarabel`); False keeps cvxpy's own path. After `solve`, ``objective.value`` and the
    variables in ``vars`` hold the solution (``problem.value``/``problem.status`` are cvxpy's and are
    not updated by direct solves). hours: the length of the window of consecutive hours the model
    dispatches (default the day; 1 for one hour at a time); `solve(..., start=t)` loads hours
    t, ..., t + hours − 1 of the day, and the result's arrays have `hours` columns.
    """

    def __init__(self, case: Case, formulation: str = "socp", mop: str = "opf", voltage_limits: str = "hard",
                 solver: str = "CLARABEL", exchange: str = "parameter", direct: bool = True, hours: int = HOURS):
        check_case(case)
        _validate.choice("solver", solver, tuple(cp.installed_solvers()))
        _validate.flag("direct", direct)
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
        # so every variable keeps its own column in the solver's data: see `DirectClarabel`)
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
        # Clarabel without cvxpy's per-solve work (`DirectClarabel`), compiled at the first solve
        self._direct, self._direct_possible = None, direct and solver == "CLARABEL" and exchange == "parameter"
        #: how the model is solved: "hourly" or "direct" (Clarabel driven directly, `clarabel_backend`) or
        #: "cvxpy"; chosen at the first solve (None until then)
        self.solve_path = None if self._direct_possible else "cvxpy"
        self._candidate = None  # a compiled direct solver whose check waits for a solve with a solution

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
                cp.SOC(flat(epi + 1), cp.vstack([flat(2 * p), flat(epi - 1)]), axis=0)]
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
        check_day(case, day)
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
        exchange = _validate.array("exchange_power", exchange_power, "MW")
        if exchange.shape != (len(case.prosumers), HOURS):
            raise ValueError(f"exchange_power: expected shape (N, 24) = ({len(case.prosumers)}, 24) MW, "
                             f"got {exchange.shape}")
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
        if needs_refinement(status, options) and not isinstance(self._direct, HourlyClarabel):
            return self._run(refined(options))
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

    def direct_solver(self) -> DirectClarabel | None:
        """The direct Clarabel path, compiled and checked (on the case's own data) if it was not yet;
        None where the model keeps cvxpy's path."""
        if self._direct is None and self._direct_possible:
            current = [(par, par.value) for par in self.problem.parameters()]
            self._canonical()
            self._first_direct(CLARABEL_OPTIONS)
            for par, value in current:
                par.value = value
        return self._direct

    def _first_direct(self, options: dict) -> tuple[str, np.ndarray | None]:
        """The first solve with a solution fixes the path: the fastest that agrees with cvxpy
        (`clarabel_backend.first_solve`); a solve without one (an infeasible day) leaves it open."""
        self._direct_possible = False
        hour = (lambda: dispatch_model(self.case, *self.options, hours=1)) if self.hours > 1 else None
        status, dual, solver, path = first_solve(self, options, hour, self._candidate)
        if path is None:
            self._direct_possible, self._candidate = True, solver
        else:
            self._direct, self.solve_path, self._candidate = solver, path, None
        return status, dual

    def solve(self, day: Day, exchange_power: np.ndarray, accurate: bool = False, start: int = 0) -> DispatchResult:
        """Dispatch the day (hours start, ..., start + hours − 1 of it for a shorter window); a solver
        failure is returned as a status, never raised.

        accurate: solve with iterative refinement from the start (duals to ~1e-6 ¥/MWh instead of
        ~1e-2), for callers that build cuts from the LMPs (the bi-level optimum).
        """
        _validate.flag("accurate", accurate)
        self.set_day(day, exchange_power, start)
        fd, k, h = self.feeder, len(self.case.mop), self.hours
        gen = self.case.generators
        g = len(gen)
        began = time.perf_counter()
        try:
            status, balance_dual = self._run(ACCURATE_OPTIONS if accurate else CLARABEL_OPTIONS)
        except cp.SolverError as err:
            return nan_result(f"solver_error: {err}", fd, k, g, time.perf_counter() - began, h)
        elapsed = time.perf_counter() - began
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return nan_result("infeasible" if "infeasible" in status else f"solver_error: {status}", fd, k, g, elapsed, h)
        return read_result(self, status, balance_dual, elapsed)

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
