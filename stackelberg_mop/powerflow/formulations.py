"""The network formulations of the dispatch (PowerModels' problem/formulation split): the problem is
written once in `dispatch.DispatchModel`; a formulation supplies the branch-current variable, its
constraints and the branch ratings. `SOCP`: branch flow with the second-order-cone relaxation
ℓ v >= P² + Q²; `LinDistFlow`: lossless (ℓ = 0). Also the price of soft voltage limits, shared with the
bi-level master.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ..cases import HOURS, Case
from ..options import FORMULATION_NAMES
from .network import Feeder

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


def flat(e):
    """A cvxpy expression as a vector, column by column (hour by hour for (·, H) arrays)."""
    return cp.reshape(e, (e.size,), order="F")


class SOCP:
    """Branch flow with the second-order-cone relaxation of ℓ_ij v_i = P_ij² + Q_ij² (exact when gap ≈ 0)."""

    name = "socp"

    def current(self, nb: int, hours: int = HOURS):
        return cp.Variable((nb, hours), name="current_sq")  # ℓ >= 0 follows from the cone

    def constraints(self, fd: Feeder, v_from, p, q, current) -> list:
        return [cp.SOC(flat(current + v_from), cp.vstack([flat(2 * p), flat(2 * q), flat(current - v_from)]),
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
        return [cp.SOC(flat(cp.Constant(bound)), cp.vstack([flat(p[limited]), flat(q[limited])]), axis=0)]


FORMULATIONS = {"socp": SOCP, "lindistflow": LinDistFlow}
assert tuple(FORMULATIONS) == FORMULATION_NAMES
assert tuple(FORMULATIONS) == FORMULATION_NAMES
