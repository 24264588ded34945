"""One prosumer's KKT conditions as SCIP rows, with the Big-Ms of `bigm.py`, and its revenue by strong duality.

For prosumer n in standard form (`market.follower_qp`: min ½xᵀQx + cᵀx + λᵀ(Gx + h) s.t. Ex = d,
l <= x <= u), given the price variables λ of the model:

    Qx + c + Gᵀλ + Eᵀν − μ_l + μ_u = 0                      stationarity
    Ex = d,  l <= x <= u                                    primal feasibility
    0 <= μ_l <= M_l z_l,   x − l <= (u − l)(1 − z_l)          complementarity by binaries z
    0 <= μ_u <= M_u z_u,   u − x <= (u − l)(1 − z_u),  z_l + z_u <= 1

The DNO's revenue λᵀP_n is bilinear; at a KKT point it equals
λᵀh − xᵀQx − cᵀx − dᵀν + lᵀμ_l − uᵀμ_u (MODEL.md, "Single level"), which is linear but for the
convex xᵀQx, so the leader's −λᵀP_n is convex. `FollowerKKT` is used by the bi-level master
(`KKTModel`, every prosumer) and by the Lagrangian decomposition (`lagrangian.py`, one prosumer each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...cases import HOURS, Case
from ...market import FollowerQP, standard_solution
from ..bigm import MultiplierBounds

#: x within this of a bound counts as "at the bound" when a follower solution is turned into binaries
AT_BOUND_TOL = 1e-9


@dataclass
class FollowerKKT:
    """Prosumer n's KKT variables in a SCIP model (lists indexed like the standard form's x).

    x: primal variables (MW, MWh); nu: equality multipliers ν; mu_l, mu_u, z_l, z_u: bound multipliers
    and their binaries (None where that bound never carries a multiplier); net: fixed variable index ->
    its free net multiplier μ_u − μ_l; sq: (index, aux >= Q_i x_i²). exchange: (24,) linear expressions
    of P_n,t (MW); neg_revenue: −λᵀP_n by strong duality (¥, unweighted).
    """

    n: int
    qp: FollowerQP
    bounds: MultiplierBounds
    x: list
    nu: list
    mu_l: list
    mu_u: list
    z_l: list
    z_u: list
    net: dict
    sq: list
    exchange: list
    neg_revenue: object

    @classmethod
    def add(cls, m, lam: list, n: int, qp: FollowerQP, b: MultiplierBounds) -> FollowerKKT:
        """Add prosumer n's KKT rows to the SCIP model `m`, with the price variables `lam` (24)."""
        from pyscipopt import quicksum

        x = [m.addVar(f"x_{n}_{i}", lb=qp.lower[i], ub=qp.upper[i]) for i in range(qp.size)]
        nu = [m.addVar(f"nu_{n}_{j}", lb=b.nu_lo[j], ub=b.nu_hi[j]) for j in range(qp.d.size)]
        f = cls(n=n, qp=qp, bounds=b, x=x, nu=nu, mu_l=[None] * qp.size, mu_u=[None] * qp.size,
                z_l=[None] * qp.size, z_u=[None] * qp.size, net={}, sq=[], exchange=[], neg_revenue=None)
        for j in range(qp.d.size):
            m.addCons(quicksum(qp.E[j, i] * x[i] for i in np.flatnonzero(qp.E[j])) == qp.d[j], f"eq_{n}_{j}")
        for i in range(qp.size):
            f._add_stationarity(m, lam, i)
        if qp.has_battery:
            # charge and discharge are never both positive (checked on every solution): one of them
            # sits at zero, where its lower-bound binary may be 1
            for t in range(HOURS):
                zc, zd = f.z_l[HOURS + t], f.z_l[2 * HOURS + t]
                if zc is not None and zd is not None:
                    m.addCons(zc + zd >= 1, f"nosim_{n}_{t}")
        f.exchange = [quicksum(qp.G[t, i] * x[i] for i in np.flatnonzero(qp.G[t])) + qp.h[t] for t in range(HOURS)]
        f.neg_revenue = f._neg_revenue(lam)
        return f

    def _add_stationarity(self, m, lam: list, i: int) -> None:
        """Stationarity of x_i and the complementarity of its bounds (binaries with Big-Ms)."""
        from pyscipopt import quicksum

        qp, b, n, x = self.qp, self.bounds, self.n, self.x
        if qp.Q[i] > 0:
            aux = m.addVar(f"sq_{n}_{i}", lb=0.0, ub=qp.Q[i] * max(qp.lower[i] ** 2, qp.upper[i] ** 2))
            m.addCons(qp.Q[i] * x[i] * x[i] <= aux, f"sq_{n}_{i}")
            self.sq.append((i, aux))
        rest = qp.Q[i] * x[i] + qp.c[i] + quicksum(qp.G[t, i] * lam[t] for t in np.flatnonzero(qp.G[:, i]))
        rest += quicksum(qp.E[j, i] * self.nu[j] for j in np.flatnonzero(qp.E[:, i]))
        if qp.lower[i] == qp.upper[i]:
            net = m.addVar(f"net_{n}_{i}", lb=b.net_lo[i], ub=b.net_hi[i])
            self.net[i] = net
            m.addCons(rest + net == 0, f"stat_{n}_{i}")
            return
        parts = []
        for side, big, mus, zs in (("l", b.mu_l_max[i], self.mu_l, self.z_l), ("u", b.mu_u_max[i], self.mu_u, self.z_u)):
            if big <= 0:
                continue
            mu = m.addVar(f"mu{side}_{n}_{i}", lb=0.0, ub=big)
            z = m.addVar(f"z{side}_{n}_{i}", vtype="B")
            m.addCons(mu <= big * z, f"cm{side}_{n}_{i}")
            slack = x[i] - qp.lower[i] if side == "l" else qp.upper[i] - x[i]
            m.addCons(slack <= b.slack[i] * (1 - z), f"cx{side}_{n}_{i}")
            mus[i], zs[i] = mu, z
            parts.append(-mu if side == "l" else mu)
        if self.z_l[i] is not None and self.z_u[i] is not None:
            m.addCons(self.z_l[i] + self.z_u[i] <= 1, f"zz_{n}_{i}")
        m.addCons(rest + quicksum(parts) == 0, f"stat_{n}_{i}")

    def _neg_revenue(self, lam: list):
        """−λᵀP_n by strong duality: −λᵀh + xᵀQx + cᵀx + dᵀν − lᵀμ_l + uᵀμ_u (fixed x: u·net)."""
        from pyscipopt import quicksum

        qp, x = self.qp, self.x
        terms = [quicksum(-qp.h[t] * lam[t] for t in range(HOURS))]
        terms += [aux for _, aux in self.sq]
        terms += [qp.c[i] * x[i] for i in range(qp.size) if qp.c[i] != 0]
        terms += [qp.d[j] * self.nu[j] for j in range(qp.d.size) if qp.d[j] != 0]
        terms += [-qp.lower[i] * mu for i, mu in enumerate(self.mu_l) if mu is not None and qp.lower[i] != 0]
        terms += [qp.upper[i] * mu for i, mu in enumerate(self.mu_u) if mu is not None and qp.upper[i] != 0]
        terms += [qp.upper[i] * v for i, v in self.net.items()]
        return quicksum(terms)

    def values(self, case: Case, prices: np.ndarray, response) -> dict:
        """Values of this follower's variables (by name) at the exact best response to `prices`.

        The multipliers are moved into their derived boxes (bigm.py: clipping ν keeps a KKT point)
        and the bound multipliers recomputed from stationarity.
        """
        qp, b, vals = self.qp, self.bounds, {}
        x, nu, _, _ = standard_solution(case, response, self.n)
        nu = np.clip(nu, b.nu_lo, b.nu_hi)
        # where Q_i > 0, x_i is the clipped solution of its stationarity row at these multipliers, so
        # that the row holds exactly: the response's x and ν agree to ~1e-11, which a Q_i of up to
        # 7,000 ¥/MW²h turns into residuals above SCIP's tolerance (1e-7), and at a kink (x_i just at
        # its bound, multiplier 0) into a multiplier of the wrong sign
        rest = qp.c + qp.G.T @ prices + qp.E.T @ nu
        smooth = qp.Q > 0
        x_row = -rest / np.where(smooth, qp.Q, 1.0)
        x = np.where(smooth, np.clip(x_row, qp.lower, qp.upper), np.clip(x, qp.lower, qp.upper))
        net = -(qp.Q * x + rest)  # μ_u − μ_l
        at_l = np.where(smooth, x_row <= qp.lower, x - qp.lower <= AT_BOUND_TOL)
        at_u = np.where(smooth, x_row >= qp.upper, qp.upper - x <= AT_BOUND_TOL) & ~at_l
        x = np.where(at_l, qp.lower, np.where(at_u, qp.upper, x))
        for i in range(qp.size):
            vals[self.x[i].name] = float(x[i])
        for j in range(qp.d.size):
            vals[self.nu[j].name] = float(nu[j])
        for i, var in self.net.items():
            vals[var.name] = float(net[i])
        for i in range(qp.size):
            if self.mu_l[i] is not None:
                vals[self.mu_l[i].name] = float(max(-net[i], 0.0)) if at_l[i] else 0.0
                vals[self.z_l[i].name] = 1.0 if at_l[i] else 0.0
            if self.mu_u[i] is not None:
                vals[self.mu_u[i].name] = float(max(net[i], 0.0)) if at_u[i] else 0.0
                vals[self.z_u[i].name] = 1.0 if at_u[i] else 0.0
        for i, aux in self.sq:
            vals[aux.name] = float(qp.Q[i] * vals[self.x[i].name] ** 2)
        return vals

    def solution(self, m, sol) -> dict:
        """The follower's part of a SCIP solution: x, ν, μ_l, μ_u (0 where absent), net_fixed."""
        get = lambda v: 0.0 if v is None else m.getSolVal(sol, v)
        net = np.zeros(self.qp.size)
        for i, v in self.net.items():
            net[i] = get(v)
        return {"x": np.array([get(v) for v in self.x]), "nu": np.array([get(v) for v in self.nu]),
                "mu_l": np.array([get(v) for v in self.mu_l]), "mu_u": np.array([get(v) for v in self.mu_u]),
                "net_fixed": net}
