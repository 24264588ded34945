"""The exact gradient of the day's DNO objective with respect to the clearing prices, dJ/dλ.

With P(λ) the prosumers' best response and Φ(P) the DNO's optimal dispatch cost of that exchange
(everything `evaluate` prices except the revenue), the objective is

    J(λ) = Φ(P(λ)) − ω_1 Σ_n,t λ_n,t P_n,t(λ)

so that, by the chain rule,

    ∂J/∂λ_n,t = −ω_1 P_n,t + Σ_s (∂Φ/∂P_n,s − ω_1 λ_n,s) · ∂P_n,s/∂λ_n,t.

**The network's part.** P_n,s enters the dispatch as load at prosumer n's bus in hour s, so by the
envelope theorem ∂Φ/∂P_n,s is the dual of that bus's active-power balance: ω_1 × the LMP the
dispatch reports (`DispatchResult.lmp`, ¥/MWh), exact where the dual is unique.

**The followers' part.** Prosumer n solves the QP of `market.follower_qp`, min ½xᵀQx + cᵀx + λᵀ(Gx + h)
s.t. Ex = d, l <= x <= u, and P_n = Gx + h. Where its active set does not change (every variable at a
bound has a positive multiplier, the others are strictly inside), the optimal x is affine in λ: with
F the free variables and N a basis of the null space of E_F, dx_F = −N (NᵀQ_FF N)⁻¹ NᵀG_Fᵀ dλ, hence

    ∂P_n/∂λ_n = −G_F N (NᵀQ_FF N)⁻¹ NᵀG_Fᵀ        (24 × 24, symmetric negative semi-definite).

**Kinks.** J is piecewise smooth. It has a kink where a variable sits at a bound with a zero
multiplier (the active set changes with the direction of dλ), where NᵀQ_FF N is singular (the best
response is not unique: a linear part, e.g. curtailment priced at zero), or where the LMPs are not
unique. There the value returned is the derivative of the active set the solve ended in, one element
of the generalised gradient, and `GradientResult.kinks` flags the hours concerned (the hours of the
degenerate variables; every hour of a prosumer whose response is not unique). Non-unique LMPs are
not detected.

Defined for the dispatch's MOP modes "opf" and "off" with voltage limits "hard" or "none" and the
followers' own best response; refused by name with MOP set-points (the network is then given by the
AC power flow, not an optimiser), with "soft" limits (the dispatch also minimises a voltage penalty
that J leaves out) and with the peer-to-peer sharing market's response.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..cases import HOURS, Case
from ..data import Day
from ..market import BestResponse, follower_qp, standard_solution
from ..powerflow import DispatchResult

#: ¥/MWh: a bound multiplier at most this counts as zero (the variable sits degenerately at its bound)
MULTIPLIER_TOL = 1e-7
#: MW or MWh: a variable within this of a bound sits at it
BOUND_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class GradientResult:
    """dJ/dλ of one scored day. gradient: ¥ per ¥/MWh, the shape of the prices that were scored
    ((24,) for one price for all prosumers, the sum over them; (N, 24) one row per prosumer).
    kinks: (24,) bool, the hours where J may not be differentiable (module docstring)."""

    gradient: np.ndarray
    kinks: np.ndarray


def check_gradient_options(mop, voltage_limits: str, response) -> None:
    """ValueError naming what makes dJ/dλ undefined here (module docstring), before anything is solved."""
    if not isinstance(mop, str) or mop not in ("opf", "off"):
        raise ValueError("gradient: not defined with MOP set-points (the AC power flow, not an optimiser, then "
                         "gives the network's cost); use mop='opf' or 'off'")
    if voltage_limits == "soft":
        raise ValueError("gradient: not defined for voltage_limits='soft' (the dispatch also minimises a voltage "
                         "penalty that the DNO objective leaves out); use 'hard' or 'none'")
    if response is not None and not isinstance(response, BestResponse):
        raise ValueError(f"gradient: defined for the followers' own best response, not a {type(response).__name__} "
                         "(the sharing market's)")


def response_jacobian(case: Case, day: Day, response: BestResponse, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(∂P_n/∂λ_n (24, 24) MW per ¥/MWh, kinks (24,) bool) of prosumer n at its best response."""
    qp = follower_qp(case, day, n)
    x, _, mu_l, mu_u = standard_solution(case, response, n)
    size = np.maximum(1.0, np.abs(np.concatenate([qp.lower, qp.upper])).reshape(2, -1).max(axis=0))
    at_lower = np.abs(x - qp.lower) <= BOUND_TOL * size
    at_upper = np.abs(qp.upper - x) <= BOUND_TOL * size
    pinned = qp.lower == qp.upper
    fixed = pinned | (at_lower & (mu_l > MULTIPLIER_TOL)) | (at_upper & (mu_u > MULTIPLIER_TOL))
    degenerate = (at_lower | at_upper) & ~fixed
    kinks = np.zeros(HOURS, dtype=bool)
    kinks[np.flatnonzero(degenerate) % HOURS] = True
    free = ~fixed
    if not free.any():
        return np.zeros((HOURS, HOURS)), kinks
    q, g, e = np.diag(qp.Q[free]), qp.G[:, free], qp.E[:, free]
    basis = scipy.linalg.null_space(e) if e.any() else np.eye(int(free.sum()))
    if basis.shape[1] == 0:
        return np.zeros((HOURS, HOURS)), kinks
    reduced = basis.T @ q @ basis
    eigval, eigvec = np.linalg.eigh(reduced)
    scale = max(float(np.abs(eigval).max()), 1.0)
    flat = eigval <= 1e-10 * scale
    gb = g @ basis
    if flat.any():  # a direction without curvature: the response is not unique along it
        loose = np.abs(gb @ eigvec[:, flat]).max(axis=1) > 1e-9
        kinks |= loose
        eigval = np.where(flat, np.inf, eigval)  # the pseudo-inverse: the solve's own choice along it
    inverse = (eigvec / eigval) @ eigvec.T
    return -gb @ inverse @ gb.T, kinks


def price_gradient(case: Case, day: Day, prices: np.ndarray, response: BestResponse,
                   dispatch: DispatchResult) -> GradientResult:
    """dJ/dλ (N, 24) ¥ per ¥/MWh and the kink hours, from a scored day: `prices` (N, 24), the
    followers' `response` to them and the `dispatch` of its exchange power (module docstring)."""
    omega = case.objective.omega_economic
    exchange = response.exchange_power
    marginal = dispatch.lmp[case.bus_position(case.prosumers.bus)] * (omega if omega > 0 else 1.0)  # ∂Φ/∂P, (N, 24)
    gradient = -omega * exchange
    kinks = np.zeros(HOURS, dtype=bool)
    for n in range(len(case.prosumers)):
        jacobian, kink = response_jacobian(case, day, response, n)
        gradient[n] += jacobian.T @ (marginal[n] - omega * prices[n])
        kinks |= kink
    return GradientResult(gradient=gradient, kinks=kinks)
