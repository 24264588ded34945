"""From an agent's action to MOP set-points that keep the converters' limits and the DC balance.

The MOP's terminals are voltage-source converters on one DC bus: Σ_k (P_k + A_k |S_k|) = 0 and
|S_k| <= S_k each hour (MODEL.md). As in a real multi-terminal converter, one terminal (the case's
last, "DC-voltage control") balances the DC bus; the others follow P/Q set-points:

1. terminals k < K take (P_k, Q_k) = S_k · (a_P, a_Q), with (a_P, a_Q) clipped to [-1, 1] and then
   into the unit disk; terminal K takes Q_K = S_K · a_Q,K (its a_P is ignored);
2. terminal K's P solves P_K + A_K √(P_K² + Q_K²) = R := −Σ_{k<K} (P_k + A_k |S_k|), in closed form
   P_K = (R − A_K √(R² + (1 − A_K²) Q_K²)) / (1 − A_K²);
3. if that overloads terminal K (|S_K| > S_K), every set-point of the hour is scaled by
   α = S_K / |S_K| < 1: P_K is homogeneous of degree one in the other set-points and Q_K (losses are
   A|S|), so the scaled hour is balanced and terminal K lands exactly on its rating.
"""

from __future__ import annotations

import numpy as np

from ..cases import HOURS, Case


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
    p_last = _balance_slack(p[:-1], q[:-1], q[-1], coef[:-1], coef[-1])
    # P_K is homogeneous of degree one in the others' set-points and Q_K, so scaling the hour by α
    # scales |S_K| by α: the largest admissible α is S_K / |S_K| (capped at 1)
    apparent = np.hypot(p_last, q[-1])
    alpha = np.minimum(1.0, mop.s_max[-1] / np.maximum(apparent, 1e-300))
    p[:-1] *= alpha
    q *= alpha
    p[-1] = alpha * p_last
    return np.stack([p, q])


def mop_action_size(case: Case, hours: int = HOURS) -> int:
    """Number of action entries the MOP adds: [P; Q] for each terminal and hour."""
    return 2 * len(case.mop) * hours
