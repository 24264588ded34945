"""AC power flow at given injections: pandapower (the reference) and a vectorised sweep (fast).

Injections: each bus draws its base load, each prosumer its exchange power P_n,t (reactive: none
beyond the bus's base Q), each MOP terminal injects (P^M, Q^M) and each DG its output (P^DG, Q^DG). The substation holds v_slack.
Both functions return voltages (B, 24) in p.u. and a per-hour convergence flag.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..cache import cached
from ..cases import HOURS, Case
from ..data import Day
from .network import feeder


def bus_demand(case: Case, day: Day, exchange_power, mop_p=None, mop_q=None, dg_p=None,
               dg_q=None) -> tuple[np.ndarray, np.ndarray]:
    """Net (P MW, Q Mvar) drawn at every bus and hour, (B, 24) each: loads + exchange − MOP injection −
    DG output. A case with generators needs their output (dg_p, dg_q (G, 24))."""
    p, q = day.base_p.copy(), day.base_q.copy()
    np.add.at(p, case.bus_position(case.prosumers.bus), np.asarray(exchange_power, dtype=float))
    for bus, inj_p, inj_q in ((case.mop.bus, mop_p, mop_q), (case.generators.bus, dg_p, dg_q)):
        if len(bus) and inj_p is not None:
            pos = case.bus_position(bus)
            np.add.at(p, pos, -np.asarray(inj_p, dtype=float))
            np.add.at(q, pos, -np.asarray(inj_q, dtype=float))
    if len(case.generators) and dg_p is None:
        raise ValueError(f"dg_p: the case has {len(case.generators)} generators; their output (G, 24) MW is needed")
    return p, q


@dataclass(frozen=True, eq=False)
class ACState:
    """The AC operating point of a day. vm: (B, 24) p.u.; branch_p, branch_q: (nb, 24) MW/Mvar at the
    sending end; line_loss: (24,) MW; grid_power, grid_q: (24,) drawn from the HV grid; converged: (24,)."""

    vm: np.ndarray
    branch_p: np.ndarray
    branch_q: np.ndarray
    line_loss: np.ndarray
    grid_power: np.ndarray
    grid_q: np.ndarray
    converged: np.ndarray
    iterations: int


def sweep_power_flow(case: Case, day: Day, exchange_power, mop_p=None, mop_q=None, dg_p=None, dg_q=None,
                     tol: float = 1e-10, max_iter: int = 100) -> ACState:
    """Backward/forward sweep on the radial tree, all 24 hours at once (constant-power loads).

    Backward: branch currents are the sums of the load currents below them; forward: voltages are the
    slack voltage minus the impedance drops along the path. Stops when max |ΔV| < tol (p.u.).
    """
    fd = feeder(case)
    p, q = bus_demand(case, day, exchange_power, mop_p, mop_q, dg_p, dg_q)
    s_load = (p + 1j * q) / case.s_base
    s_load[fd.root] = 0.0
    z = (fd.r + 1j * fd.x)[:, None]
    v0 = case.v_slack
    v = np.full((fd.n_bus, HOURS), v0, dtype=complex)
    down, path = fd.downstream, fd.path
    converged = np.zeros(HOURS, dtype=bool)
    for it in range(1, max_iter + 1):
        current = _times(down, np.conj(s_load / v))
        v_new = v0 - _times(path, z * current)
        change = np.abs(v_new - v).max(axis=0)
        v = v_new
        converged = change < tol
        if converged.all():
            break
    if not np.all(np.isfinite(v)):
        converged[:] = False
    s_send = v[fd.from_pos] * np.conj(current)
    loss = (fd.r[:, None] * np.abs(current) ** 2).sum(0) * case.s_base
    s_grid = (s_send[fd.from_pos == fd.root].sum(0) + (p[fd.root] + 1j * q[fd.root]) / case.s_base) * case.s_base
    return ACState(vm=np.abs(v), branch_p=s_send.real * case.s_base, branch_q=s_send.imag * case.s_base,
                   line_loss=loss, grid_power=s_grid.real, grid_q=s_grid.imag, converged=converged, iterations=it)


def _times(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """a @ x for a real matrix and a complex one, as two real products: NumPy's mixed real-complex
    product takes a path without BLAS, ~100× slower from ~70 buses on."""
    return a @ x.real + 1j * (a @ x.imag)


def _pandapower_net(case: Case):
    """A copy of the case's network whose loads are one per bus (the net demand of `bus_demand`: loads,
    exchange, MOP and DG injections), built once per case (`stackelberg_mop.cache`)."""
    return cached(case, "ac_net", lambda: _build_pandapower_net(case))


def _build_pandapower_net(case: Case):
    import pandapower as pp

    net = copy.deepcopy(case.net)
    net.load.drop(net.load.index, inplace=True)
    net.sgen.drop(net.sgen.index, inplace=True)
    for bus in case.buses:
        pp.create_load(net, bus=int(bus), p_mw=0.0, q_mvar=0.0)
    net.ext_grid.loc[:, "vm_pu"] = case.v_slack
    return net


def pandapower_power_flow(case: Case, day: Day, exchange_power, mop_p=None, mop_q=None,
                          hours=range(HOURS), dg_p=None, dg_q=None) -> tuple[np.ndarray, np.ndarray]:
    """pandapower's Newton-Raphson AC power flow, hour by hour. Returns vm (B, 24) and converged (24,).

    Hours not in `hours` are NaN. A non-converged hour is reported, not raised.
    """
    import pandapower as pp

    net = _pandapower_net(case)
    p, q = bus_demand(case, day, exchange_power, mop_p, mop_q, dg_p, dg_q)
    vm = np.full((case.buses.size, HOURS), np.nan)
    converged = np.zeros(HOURS, dtype=bool)
    for t in hours:
        net.load["p_mw"] = p[:, t]
        net.load["q_mvar"] = q[:, t]
        try:
            pp.runpp(net, numba=False, tolerance_mva=1e-10)
        except pp.LoadflowNotConverged:
            continue
        vm[:, t] = net.res_bus.vm_pu.loc[case.buses].to_numpy()
        converged[t] = True
    return vm, converged
