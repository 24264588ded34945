"""The radial feeder as arrays: branches directed away from the substation, per-unit impedances.

Per unit: S_base = case.s_base (MVA), V_base = the bus's nominal voltage (kV), Z_base = V_base²/S_base.
Branch k connects parent bus `from_pos[k]` to child bus `to_pos[k]` (positions in ``case.buses``);
every non-root bus is the child of exactly one branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..cache import cached
from ..cases import Case

NO_LIMIT_KA = 1e3  # pandapower's case files use 99999 kA for "no limit"


@dataclass(frozen=True, eq=False)
class Feeder:
    """Tree arrays of a case's network. Positions index ``case.buses``."""

    n_bus: int
    root: int
    from_pos: np.ndarray  # (nb,) parent bus of each branch
    to_pos: np.ndarray  # (nb,) child bus of each branch
    r: np.ndarray  # (nb,) p.u.
    x: np.ndarray  # (nb,) p.u.
    i_max: np.ndarray  # (nb,) p.u. current limit, inf where none
    line_index: np.ndarray  # (nb,) pandapower line index
    s_base: float
    i_base_ka: np.ndarray  # (nb,) kA per p.u. current

    @property
    def n_branch(self) -> int:
        return self.r.size

    @cached_property
    def branch_of(self) -> np.ndarray:
        """(n_bus,) the branch feeding each bus, -1 for the root."""
        out = np.full(self.n_bus, -1)
        out[self.to_pos] = np.arange(self.n_branch)
        return out

    @cached_property
    def incidence(self) -> np.ndarray:
        """(n_bus, nb): +1 where the branch enters the bus (child end), -1 where it leaves (parent end)."""
        a = np.zeros((self.n_bus, self.n_branch))
        a[self.to_pos, np.arange(self.n_branch)] = 1.0
        a[self.from_pos, np.arange(self.n_branch)] = -1.0
        return a

    @cached_property
    def path(self) -> np.ndarray:
        """(n_bus, nb): 1 where the branch lies on the path from the root to the bus."""
        p = np.zeros((self.n_bus, self.n_branch))
        for bus in range(self.n_bus):
            b = bus
            while b != self.root:
                k = self.branch_of[b]
                p[bus, k] = 1.0
                b = self.from_pos[k]
        return p

    @property
    def downstream(self) -> np.ndarray:
        """(nb, n_bus): 1 where the bus lies below the branch (the branch carries its load)."""
        return self.path.T


def feeder(case: Case) -> Feeder:
    """The case's network as a `Feeder` (built once per case: `stackelberg_mop.cache`)."""
    return cached(case, "feeder", lambda: _build_feeder(case))


def _build_feeder(case: Case) -> Feeder:
    net = case.net
    lines = net.line[net.line.in_service]
    pos = {int(b): i for i, b in enumerate(case.buses)}
    root = pos[case.slack_bus]
    neighbours: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(pos))}
    for idx, f, t in zip(lines.index, lines.from_bus, lines.to_bus):
        neighbours[pos[int(f)]].append((pos[int(t)], int(idx)))
        neighbours[pos[int(t)]].append((pos[int(f)], int(idx)))
    order, parent_of, line_of = [root], {root: -1}, {}
    for bus in order:  # breadth-first from the root orients every branch away from the substation
        for other, idx in neighbours[bus]:
            if other not in parent_of:
                parent_of[other], line_of[other] = bus, idx
                order.append(other)
    children = order[1:]
    idx = np.array([line_of[c] for c in children])
    ln = lines.loc[idx]
    vn_kv = net.bus.loc[case.buses[children], "vn_kv"].to_numpy()
    z_base = vn_kv**2 / case.s_base
    i_base_ka = case.s_base / (np.sqrt(3) * vn_kv)
    length = (ln.length_km / ln.parallel).to_numpy()
    i_max_ka = (ln.max_i_ka * ln.df * ln.parallel).to_numpy()
    out = Feeder(
        n_bus=len(pos), root=root, from_pos=np.array([parent_of[c] for c in children]), to_pos=np.array(children),
        r=ln.r_ohm_per_km.to_numpy() * length / z_base, x=ln.x_ohm_per_km.to_numpy() * length / z_base,
        i_max=np.where(i_max_ka < NO_LIMIT_KA, i_max_ka / i_base_ka, np.inf), line_index=idx, s_base=case.s_base,
        i_base_ka=i_base_ka)
    return out
