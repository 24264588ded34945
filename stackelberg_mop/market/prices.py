"""The price rules of one day as one object, and the maps from an agent's action to admissible prices.

The DNO may post lo_t <= λ_t <= hi_t in every hour with a daily mean at most the cap (MODEL.md; the
hour's bounds come from `PriceRules.hourly_bounds`, by default the day's HV sell and buy prices).
`price_bounds(case, day)` is the one place every consumer gets them from: the environments, the
baselines' projections, the KKT price box and its Big-Ms, the Lagrangian boxes, `evaluate`'s
`price_violation`.

`PriceBounds.project` is the Euclidean projection onto that set, deterministic and exact:

    λ* = argmin ‖λ − p‖²  s.t.  lo_t <= λ_t <= hi_t,  mean(λ) <= cap
       = clip(p − τ, lo, hi),  with τ = 0 if clip(p) keeps the cap, else the τ >= 0 at which
         mean(clip(p − τ, lo, hi)) = cap (a piecewise-linear equation, solved on its breakpoints)

(KKT: a single multiplier τ/24 of the mean constraint shifts every hour by the same amount.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate
from ..cases import HOURS, Case, check_case


@dataclass(frozen=True, eq=False)
class PriceBounds:
    """The admissible prices of one day: lower <= λ <= upper (each (24,) ¥/MWh), mean(λ) <= mean_cap."""

    lower: np.ndarray
    upper: np.ndarray
    mean_cap: float

    def violation(self, prices) -> float:
        """Largest breach of the rules, ¥/MWh (0 when kept): per-hour bounds and the daily-mean cap;
        `prices` (24,) or (S, 24), the largest over rows."""
        p = np.asarray(prices, dtype=float)
        bounds = max(float(np.max(self.lower - p)), float(np.max(p - self.upper)), 0.0)
        return max(bounds, float(np.max(p.mean(axis=-1))) - self.mean_cap, 0.0)

    def project(self, prices) -> np.ndarray:
        """The admissible price vector (24,) or batch (S, 24) closest to `prices` in the 2-norm."""
        p = _checked(prices)
        flat = np.atleast_2d(p)
        out = np.clip(flat, self.lower, self.upper)
        for s in np.flatnonzero(out.mean(axis=1) > self.mean_cap):
            out[s] = _shift_to_cap(flat[s], self.lower, self.upper, self.mean_cap)
        return out.reshape(p.shape)

    def project_jacobian(self, prices) -> np.ndarray:
        """(24, 24): the derivative of `project` at `prices` (24,). Hours clipped to a bound do not move;
        when the mean cap binds, the free hours F move together less their mean (I − 11ᵀ/|F| on F × F).
        At a point where an hour is exactly at a bound, the derivative of the side the projection
        took (an element of its generalised Jacobian)."""
        p = _checked(prices)
        if p.ndim != 1:
            raise ValueError(f"prices: expected one price vector ({HOURS},), got shape {p.shape}")
        out = self.project(p)
        free = (out > self.lower) & (out < self.upper)
        jac = np.diag(free.astype(float))
        if out.mean() >= self.mean_cap - 1e-9 and np.clip(p, self.lower, self.upper).mean() > self.mean_cap and free.any():
            f = np.flatnonzero(free)
            jac[np.ix_(f, f)] -= 1.0 / f.size
        return jac

    def from_action(self, action) -> np.ndarray:
        """Affine map of an action in [-1, 1] (clipped) onto [lo_t, hi_t], hour by hour (not projected)."""
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        return self.lower + 0.5 * (a + 1.0) * (self.upper - self.lower)

    def to_action(self, prices) -> np.ndarray:
        """The inverse of `from_action` (float32); an hour whose price is fixed (lo_t = hi_t) maps to 0."""
        span = self.upper - self.lower
        safe = np.where(span > 0, span, 1.0)
        a = np.where(span > 0, 2.0 * (np.asarray(prices, dtype=float) - self.lower) / safe - 1.0, 0.0)
        return a.astype(np.float32)


def price_bounds(case: Case, day, lower=None, upper=None) -> PriceBounds:
    """The price rules of `case` on `day` (a `Day`, or anything with ``buy_price`` and ``sell_price``
    (24,) ¥/MWh, e.g. ``case.tariff``), optionally narrowed by `lower`/`upper` ((24,) or a number,
    e.g. an hour fixed for a test or a node of branch and bound).

    ValueError naming the hour where the lower bound exceeds the upper one, or when the hours' lower
    bounds alone break the mean cap.
    """
    check_case(case)
    rules = case.price_rules
    if day is None or not hasattr(day, "buy_price"):
        raise ValueError(f"day: expected a Day (or the case's tariff) for the hour's price bounds, got {day!r}")
    for name in ("buy_price", "sell_price"):
        if np.shape(getattr(day, name, None)) != (24,):
            raise ValueError(f"day.{name}: expected 24 hourly prices (¥/MWh), got shape "
                             f"{np.shape(getattr(day, name, None))}")
    lo, hi = rules.hourly_bounds(day)
    if lower is not None:
        lo = np.maximum(lo, _narrowing("lower", lower))
    if upper is not None:
        hi = np.minimum(hi, _narrowing("upper", upper))
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        t = int(bad[0])
        raise ValueError(f"price bounds: at hour {t} the lower bound {lo[t]:g} exceeds the upper bound {hi[t]:g} "
                         f"¥/MWh{f' (also hours {bad[1:].tolist()})' if bad.size > 1 else ''}")
    if lo.mean() > rules.mean_cap + 1e-9:
        raise ValueError(f"price bounds: the hours' lower bounds average {lo.mean():g} ¥/MWh, above the mean cap "
                         f"{rules.mean_cap:g}: no price vector fits")
    for arr in (lo, hi):
        arr.setflags(write=False)
    return PriceBounds(lower=lo, upper=hi, mean_cap=rules.mean_cap)


_MISSING = object()


def project_prices(case: Case, day, prices=_MISSING, lower=None, upper=None) -> np.ndarray:
    """The admissible price vector (24,) or batch (S, 24) closest to `prices` (¥/MWh) in the 2-norm,
    under the rules of `case` on `day` (`price_bounds`, with its optional narrowing)."""
    if prices is _MISSING:  # the signature before the hourly rules took (case, prices)
        raise ValueError("project_prices(case, day, prices): the day is missing; the price rules depend on "
                         "the day's HV tariff")
    return price_bounds(case, day, lower, upper).project(prices)


def action_to_prices(case: Case, day, action) -> tuple[np.ndarray, np.ndarray]:
    """An action in [-1, 1]^24 → (admissible prices, prices before the mean-cap projection), ¥/MWh.

    a ↦ lo_t + (a + 1)/2 · (hi_t − lo_t) (values outside [-1, 1] are clipped), then the projection.
    """
    bounds = price_bounds(case, day)
    raw = bounds.from_action(_checked(action, "action"))
    return bounds.project(raw), raw


def action_jacobian(case: Case, day, action) -> np.ndarray:
    """(24, 24): dλ/da of `action_to_prices` at `action` (24,): the affine map's slopes (hi_t − lo_t)/2
    (zero where the action is clipped at ±1), then the projection's derivative
    (`PriceBounds.project_jacobian`)."""
    bounds = price_bounds(case, day)
    a = _checked(action, "action")
    if a.ndim != 1:
        raise ValueError(f"action: expected one action ({HOURS},), got shape {a.shape}")
    slope = np.where(np.abs(a) < 1.0, 0.5 * (bounds.upper - bounds.lower), 0.0)
    return bounds.project_jacobian(bounds.from_action(a)) * slope[None, :]


def prices_to_action(case: Case, day, prices) -> np.ndarray:
    """The inverse of the affine map in `action_to_prices` (float32): the action that posts `prices`."""
    return price_bounds(case, day).to_action(prices)


def _checked(prices, name: str = "prices") -> np.ndarray:
    p = _validate.array(name, prices, "¥/MWh")
    if p.ndim not in (1, 2) or p.shape[-1] != HOURS:
        raise ValueError(f"{name}: expected shape ({HOURS},) or (S, {HOURS}), got {p.shape}")
    return p


def _narrowing(name: str, value) -> np.ndarray:
    arr = _validate.array(name, value, "¥/MWh", allow_inf=True)  # ±inf: this side not narrowed
    if arr.shape not in ((), (HOURS,)):
        raise ValueError(f"{name}: expected one number or {HOURS} (¥/MWh), got shape {arr.shape}")
    return np.broadcast_to(arr, (HOURS,))


def _shift_to_cap(p: np.ndarray, lo, hi, cap: float) -> np.ndarray:
    """clip(p − τ, lo, hi) with the τ >= 0 that puts its mean on `cap` (mean is non-increasing in τ)."""
    mean = lambda tau: float(np.clip(p - tau, lo, hi).mean())
    # breakpoints where an hour enters or leaves a bound; the mean is linear between them
    taus = np.unique(np.concatenate([[0.0], p - hi, p - lo]))
    taus = taus[taus >= 0]
    values = np.array([mean(t) for t in taus])
    k = int(np.searchsorted(-values, -cap))  # first breakpoint with mean <= cap
    if k >= taus.size:  # even every hour at its floor is (by round-off) above the cap: the floor
        return np.broadcast_to(lo, p.shape).astype(float)
    t0, t1, m0, m1 = taus[k - 1], taus[k], values[k - 1], values[k]
    tau = t1 if m0 == m1 else t0 + (m0 - cap) * (t1 - t0) / (m0 - m1)
    return np.clip(p - tau, lo, hi)
