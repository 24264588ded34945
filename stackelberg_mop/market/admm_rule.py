"""Boyd et al. (2011) ADMM bookkeeping shared by every ADMM in the package (P2P sharing, market clearing):
the §3.3.1 stopping rule and §3.4.1 residual balancing of ρ."""

from __future__ import annotations

import numpy as np

#: residual balancing: change ρ by τ when one residual exceeds μ times the other
BALANCE_MU, BALANCE_TAU = 10.0, 2.0


def tolerances(dim: int, eps_abs: float, eps_rel: float, x_norm: float, z_norm: float, y_norm: float):
    """(ε_pri, ε_dual) of §3.3.1 for `dim` coupled entries, ‖x‖, ‖z‖ of the two sides and ‖y‖ of the prices."""
    root = np.sqrt(dim) * eps_abs
    return root + eps_rel * max(x_norm, z_norm), root + eps_rel * y_norm


def balanced_rho(rho: float, r_norm: float, s_norm: float, eps_pri: float, eps_dual: float) -> float:
    """§3.4.1 on the residuals relative to their tolerances (r and s are in different units)."""
    ratio = (r_norm / eps_pri) / max(s_norm / eps_dual, 1e-300)
    if ratio > BALANCE_MU:
        return rho * BALANCE_TAU
    if ratio < 1 / BALANCE_MU:
        return rho / BALANCE_TAU
    return rho
