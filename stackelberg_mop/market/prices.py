"""The price rules as maps: from an agent's action to admissible clearing prices.

The DNO may post λ_min <= λ_t <= λ_max with a daily mean at most the cap (MODEL.md). `project_prices`
is the Euclidean projection onto that set, deterministic and exact:

    λ* = argmin ‖λ − p‖²  s.t.  λ_min <= λ_t <= λ_max,  mean(λ) <= cap
       = clip(p − τ, λ_min, λ_max),  with τ = 0 if clip(p) keeps the cap, else the τ >= 0 at which
         mean(clip(p − τ)) = cap (a piecewise-linear equation, solved on its breakpoints)

(KKT: a single multiplier τ/24 of the mean constraint shifts every hour by the same amount.)
"""

from __future__ import annotations

import numpy as np

from ..cases import Case


def project_prices(case: Case, prices, lower=None, upper=None) -> np.ndarray:
    """The admissible price vector (24,) or batch (S, 24) closest to `prices` (¥/MWh) in the 2-norm.

    lower, upper: optional per-hour bounds (24,) that narrow the case's [λ_min, λ_max] (e.g. hours
    whose price is fixed); ValueError if no price vector fits them and the mean cap.
    """
    rules = case.price_rules
    p = np.asarray(prices, dtype=float)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"prices: must be finite (¥/MWh), got {p}")
    lo = rules.price_min if lower is None else np.maximum(rules.price_min, np.asarray(lower, dtype=float))
    hi = rules.price_max if upper is None else np.minimum(rules.price_max, np.asarray(upper, dtype=float))
    if np.any(np.asarray(lo) > hi) or np.mean(np.broadcast_to(lo, p.shape[-1:])) > rules.mean_cap + 1e-9:
        raise ValueError("lower/upper: no price vector fits these bounds and the mean cap")
    flat = np.atleast_2d(p)
    out = np.clip(flat, lo, hi)
    over = out.mean(axis=1) > rules.mean_cap
    for s in np.flatnonzero(over):
        out[s] = _shift_to_cap(flat[s], lo, hi, rules.mean_cap)
    return out.reshape(p.shape)


def _shift_to_cap(p: np.ndarray, lo, hi, cap: float) -> np.ndarray:
    """clip(p − τ, lo, hi) with the τ >= 0 that puts its mean on `cap` (mean is non-increasing in τ)."""
    mean = lambda tau: float(np.clip(p - tau, lo, hi).mean())
    # breakpoints where an hour enters or leaves a bound; the mean is linear between them
    taus = np.unique(np.concatenate([[0.0], np.broadcast_to(p - hi, p.shape), np.broadcast_to(p - lo, p.shape)]))
    taus = taus[taus >= 0]
    values = np.array([mean(t) for t in taus])
    k = int(np.searchsorted(-values, -cap))  # first breakpoint with mean <= cap
    t0, t1, m0, m1 = taus[k - 1], taus[k], values[k - 1], values[k]
    tau = t1 if m0 == m1 else t0 + (m0 - cap) * (t1 - t0) / (m0 - m1)
    return np.clip(p - tau, lo, hi)


def action_to_prices(case: Case, action) -> tuple[np.ndarray, np.ndarray]:
    """An action in [-1, 1]^24 → (admissible prices, prices before the mean-cap projection), ¥/MWh.

    Affine map of [-1, 1] onto [λ_min, λ_max] (values outside [-1, 1] are clipped), then `project_prices`.
    """
    rules = case.price_rules
    a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
    raw = rules.price_min + 0.5 * (a + 1.0) * (rules.price_max - rules.price_min)
    return project_prices(case, raw), raw


def prices_to_action(case: Case, prices) -> np.ndarray:
    """The inverse of the affine map in `action_to_prices` (float32): the action that posts `prices`."""
    rules = case.price_rules
    a = 2.0 * (np.asarray(prices, dtype=float) - rules.price_min) / (rules.price_max - rules.price_min) - 1.0
    return a.astype(np.float32)
