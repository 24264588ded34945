"""What a dispatch returns: the network's state, its cost parts and the LMPs (`DispatchResult`), kept
apart from the model that solves it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..cases import HOURS
from .network import Feeder


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


def nan_result(status: str, fd: Feeder, k: int, g: int, elapsed: float, hours: int = HOURS) -> DispatchResult:
    nan = lambda *shape: np.full(shape, np.nan)
    h = hours
    return DispatchResult(status=status, grid_power=nan(h), grid_q=nan(h), mop_p=nan(k, h),
                          mop_q=nan(k, h), mop_loss=nan(k, h), branch_p=nan(fd.n_branch, h),
                          branch_q=nan(fd.n_branch, h), current_sq=nan(fd.n_branch, h),
                          v=nan(fd.n_bus, h), line_loss=nan(h), grid_cost=np.nan, line_loss_cost=np.nan, mop_loss_cost=np.nan,
                          voltage_deviation_cost=np.nan, voltage_penalty=np.nan, relaxation_gap=nan(h),
                          lmp=nan(fd.n_bus, h), dg_p=nan(g, h), dg_q=nan(g, h), dg_cost=np.nan, solve_time=elapsed)




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


def read_result(model, status: str, balance_dual: np.ndarray, elapsed: float) -> DispatchResult:
    """The `DispatchResult` of a solved `DispatchModel` (status cvxpy's "optimal" or
    "optimal_inaccurate"): the variables' values in MW/Mvar, the cost parts in ¥, the LMPs from the
    dual of the active-power balance."""
    fd, k, s, h = model.feeder, len(model.case.mop), model.case.s_base, model.hours
    gen = model.case.generators
    g = len(gen)
    val = lambda e: float(e.value) if hasattr(e, "value") else float(e)
    var = model.vars
    p, q, v = var["p"].value, var["q"].value, var["v"].value
    current = np.zeros_like(p) if var["current"] is None else var["current"].value
    if var["current"] is None:
        gap = np.zeros(h)
    else:
        gap = (current * v[fd.from_pos] - p**2 - q**2).max(axis=0)
    zeros = np.zeros((k, h))
    dg_p = var["dg_p"].value * gen.p_max[:, None] if g else np.zeros((0, h))
    dg_q = var["dg_q"].value * s if g else np.zeros((0, h))
    omega = model.case.objective.omega_economic
    # extra load at a bus lowers its balance row; cvxpy's dual y of "balance == 0" gives ∂F/∂load = −y
    lmp = -balance_dual / s / (omega if omega > 0 else 1.0)
    return DispatchResult(
        status="optimal" if status == "optimal" else "optimal_inaccurate",
        grid_power=var["pg"].value * s, grid_q=var["qg"].value * s,
        mop_p=var["pm"].value * s if "pm" in var else zeros, mop_q=var["qm"].value * s if "qm" in var else zeros,
        mop_loss=var["ploss"].value * s if "ploss" in var else zeros,
        branch_p=p * s, branch_q=q * s, current_sq=current, v=v, line_loss=(fd.r @ current) * s,
        grid_cost=val(model.grid_cost), line_loss_cost=val(model.line_loss_cost),
        mop_loss_cost=val(model.mop_loss_cost), voltage_deviation_cost=val(model.voltage_deviation_cost),
        voltage_penalty=val(model.voltage_penalty), relaxation_gap=gap, lmp=lmp, dg_p=dg_p, dg_q=dg_q,
        dg_cost=float(gen.cost(dg_p).sum()), solve_time=elapsed,
        start=model.window.start)

