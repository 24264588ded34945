"""The case's price rules as a projection: what a posted clearing price may be.

A clearing price vector must keep λ_min <= λ_t <= λ_max every hour and mean_t(λ_t) <= mean cap
(MODEL.md, "Price rules"). `project_prices` maps any price vector to the nearest one (Euclidean) that
keeps them; the fixed-point baseline and the environments use it wherever a raw price (an LMP, an
action) must become a posted price.
"""

from __future__ import annotations

import numpy as np

from ..cases import HOURS, Case


def project_prices(case: Case, prices) -> np.ndarray:
    """Euclidean projection of prices (..., 24) ¥/MWh onto the case's price rules, row by row.

    The feasible set {λ_min <= λ_t <= λ_max, mean(λ) <= mean_cap} is a box cut by one half-space, so
    the projection is λ_t = clip(p_t − θ, λ_min, λ_max) with the smallest θ >= 0 that meets the cap:
    θ = 0 when clipping alone keeps the mean, otherwise the root of the piecewise-linear, non-increasing
    mean(clip(p − θ)) − cap, found exactly on its breakpoints (no iteration, no tolerance). Rows that
    already keep the rules come back unchanged. Deterministic; NaN/inf or a last axis other than 24
    raises ValueError.
    """
    p = np.asarray(prices, dtype=float)
    if p.shape[-1:] != (HOURS,):
        raise ValueError(f"prices: last axis must have {HOURS} hours, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("prices: must be finite (¥/MWh)")
    rules = case.price_rules
    lo, hi, cap = rules.price_min, rules.price_max, rules.mean_cap
    flat = p.reshape(-1, HOURS)
    out = np.clip(flat, lo, hi)
    over = out.mean(axis=1) > cap
    if over.any():
        q = flat[over]
        # θ at which each hour leaves the upper bound / reaches the lower bound; the mean is linear between
        bps = np.sort(np.concatenate([q - hi, q - lo], axis=1), axis=1)  # (R, 48)
        bps = np.maximum(bps, 0.0)
        g = np.clip(q[:, None, :] - bps[:, :, None], lo, hi).mean(-1) - cap  # (R, 48), non-increasing
        k = np.clip((g > 0).sum(axis=1) - 1, 0, bps.shape[1] - 2)  # last breakpoint still above the cap
        rows = np.arange(q.shape[0])
        t0, t1, g0, g1 = bps[rows, k], bps[rows, k + 1], g[rows, k], g[rows, k + 1]
        theta = np.where(g0 != g1, t0 + g0 * (t1 - t0) / np.where(g0 != g1, g0 - g1, 1.0), t0)
        out[over] = np.clip(q - theta[:, None], lo, hi)
    return out.reshape(p.shape)


def price_rule_violation(case: Case, prices) -> float:
    """Largest breach of the price rules, ¥/MWh (0 when every row keeps them)."""
    p = np.asarray(prices, dtype=float)
    rules = case.price_rules
    return float(max(np.max(rules.price_min - p), np.max(p - rules.price_max),
                     np.max(p.mean(axis=-1)) - rules.mean_cap, 0.0))
