"""Boyd et al. (2011) ADMM bookkeeping shared by every ADMM in the package (P2P sharing, market clearing):
the §3.3.1 stopping rule and §3.4.1 residual balancing of ρ."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class ResidualLog:
    """One ADMM run's residuals (Euclidean norms) and ρ per iteration, with the §3.3.1 stopping test and
    §3.4.1 balancing. `record` takes the iteration's primal residual r, the change of the consensus
    side Δz (s = ρ‖Δz‖) and the norms for the relative tolerances."""

    dim: int
    eps_abs: float
    eps_rel: float
    balance: bool = True
    primal: list = field(default_factory=list)
    dual: list = field(default_factory=list)
    rho: list = field(default_factory=list)
    eps: tuple = (np.nan, np.nan)

    def record(self, rho: float, r, z_change, x_norm: float, z_norm: float, y_norm: float) -> tuple[bool, float]:
        """(converged, ρ for the next iteration)."""
        r_norm, s_norm = float(np.linalg.norm(r)), float(rho * np.linalg.norm(z_change))
        self.primal.append(r_norm)
        self.dual.append(s_norm)
        self.rho.append(rho)
        self.eps = tolerances(self.dim, self.eps_abs, self.eps_rel, x_norm, z_norm, y_norm)
        if r_norm <= self.eps[0] and s_norm <= self.eps[1]:
            return True, rho
        return False, balanced_rho(rho, r_norm, s_norm, *self.eps) if self.balance else rho
