"""From an agent's action to MOP set-points that keep the converters' limits and the DC balance.

The MOP's terminals are voltage-source converters on one DC bus: Σ_k (P_k + A_k |S_k|) = 0 and
|S_k| <= S_k each hour (MODEL.md). As in a real multi-terminal converter, one terminal (the case's
last, "DC-voltage control") balances the DC bus; the others follow P/Q set-points:

1. terminals k < K take (P_k, Q_k) = S_k · (a_P, a_Q), with (a_P, a_Q) clipped to [-1, 1] and then
   into the unit disk; terminal K takes Q_K = S_K · a_Q,K (its a_P is ignored);
2. terminal K's P solves P_K + A_K √(P_K² + Q_K²) = R := −Σ_{k<K} (P_k + A_k |S_k|), in closed form
   P_K = (R − A_K √(R² + (1 − A_K²) Q_K²)) / (1 − A_K²);
3. if that overloads terminal K (|S_K| > S_K), every set-point of the hour is scaled by the largest
   factor α ∈ [0, 1] (bisection, 40 halvings, keeping the feasible end) that keeps it within rating;
   α = 0 (all idle) is always feasible.
"""

from __future__ import annotations

import numpy as np

from ..cases import HOURS, Case

BISECTION_STEPS = 40


def _balance_slack(p_others, q_others, q_last, a_others, a_last):
    """P of the DC-controlling terminal for each hour given the others' set-points."""
    r = -(p_others + a_others[:, None] * np.hypot(p_others, q_others)).sum(axis=0)
    return (r - a_last * np.sqrt(r**2 + (1 - a_last**2) * q_last**2)) / (1 - a_last**2)


def action_to_mop_setpoints(case: Case, action) -> np.ndarray:
    """An action (2, K, H) in [-1, 1] ([P; Q] per terminal and hour) → set-points (2, K, H) MW/Mvar.

    H is 24 for the day-ahead environment and 1 for one hour. See the module docstring for the map.
    """
    mop = case.mop
    k = len(mop)
    a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
    if a.ndim != 3 or a.shape[:2] != (2, k):
        raise ValueError(f"mop action: expected shape (2, K, H) with K = {k}, got {a.shape}")
    norm = np.maximum(np.hypot(a[0], a[1]), 1.0)
    p = mop.s_max[:, None] * a[0] / norm
    q = mop.s_max[:, None] * a[1] / norm
    q[-1] = mop.s_max[-1] * a[1, -1]
    coef = mop.loss_coefficient

    def balanced(alpha):
        pk, qk = alpha * p[:-1], alpha * q[:-1]
        qlast = alpha * q[-1]
        plast = _balance_slack(pk, qk, qlast, coef[:-1], coef[-1])
        return pk, qk, plast, qlast

    def fits(alpha):
        _, _, plast, qlast = balanced(alpha)
        return np.hypot(plast, qlast) <= mop.s_max[-1]

    alpha = np.ones(a.shape[2])
    bad = ~fits(alpha)
    if bad.any():
        lo, hi = np.zeros(bad.sum()), np.ones(bad.sum())
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            full = alpha.copy()
            full[bad] = mid
            ok = fits(full)[bad]
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        alpha[bad] = lo
    pk, qk, plast, qlast = balanced(alpha)
    return np.stack([np.vstack([pk, plast]), np.vstack([qk, qlast])])


def mop_action_size(case: Case, hours: int = HOURS) -> int:
    """Number of action entries the MOP adds: [P; Q] for each terminal and hour."""
    return 2 * len(case.mop) * hours
