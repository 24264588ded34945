"""The prices and the objective: the HV tariff, the DNO's price rules (bounds and daily-mean cap) and
the objective's weights."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..options import HOURS
from .fields import field_array, field_number
from .schema import CaseError


@dataclass(frozen=True, eq=False)
class Tariff:
    """The HV grid's prices, ¥/MWh per hour: the DNO buys at buy_price, sells at sell_price."""

    buy_price: np.ndarray
    sell_price: np.ndarray

    def __post_init__(self):
        buy = field_array(self, "buy_price", length=HOURS)
        sell = field_array(self, "sell_price", length=HOURS)
        hours = np.flatnonzero(buy < sell)
        if hours.size:
            raise CaseError(f"tariff.buy_price: below tariff.sell_price at hours {hours.tolist()} "
                            "(the DNO's grid cost would not be convex)")


#: an hourly price bound given as the day's own HV tariff: "sell" = ρ^sell_t, "buy" = ρ^buy_t
TARIFF_BOUNDS = ("sell", "buy")


@dataclass(frozen=True, eq=False)
class PriceRules:
    """What the DNO may post, ¥/MWh: lo_t <= λ_t <= hi_t in every hour t and mean(λ) <= mean_cap.

    price_min, price_max: the box every hour's price stays in. lower, upper: each hour's own bound
    inside that box, given as None (the box alone), one number, 24 numbers, or "sell" / "buy": the
    day's HV tariff (ρ^sell_t, ρ^buy_t), so that sampled HV prices move the bounds with them. The
    hour's bounds are lo_t = max(price_min, lower_t), hi_t = min(price_max, upper_t)
    (`hourly_bounds`). The default case follows Lou et al. (2025): ρ^sell_t <= λ_t <= ρ^buy_t.
    """

    price_min: float
    price_max: float
    mean_cap: float
    lower: object = None
    upper: object = None

    def __post_init__(self):
        for name in ("price_min", "price_max", "mean_cap"):
            object.__setattr__(self, name, field_number(f"price_rules.{name}", getattr(self, name), unit="¥/MWh"))
        if self.price_min > self.price_max:
            raise CaseError(f"price_rules.price_min: {self.price_min} exceeds price_max {self.price_max}")
        for name in ("lower", "upper"):
            object.__setattr__(self, name, _hourly_bound(name, getattr(self, name)))
        lo, hi = self.hourly_bounds(None)
        check_bounds(lo, hi, self.mean_cap, "price_rules")

    @property
    def follows_tariff(self) -> bool:
        """Whether an hour's bound is the day's HV tariff (then the bounds differ from day to day)."""
        return isinstance(self.lower, str) or isinstance(self.upper, str)

    def hourly_bounds(self, tariff) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each (24,) ¥/MWh, for a day whose HV tariff is `tariff` (anything with
        ``buy_price`` and ``sell_price``: a `Day`, a `Tariff`); None where no bound follows the
        tariff. Not checked here: `market.price_bounds` is the checked entry point."""
        lo = np.maximum(self.price_min, self._resolve(self.lower, tariff, -np.inf))
        hi = np.minimum(self.price_max, self._resolve(self.upper, tariff, np.inf))
        return lo, hi

    def describe(self) -> str:
        """The rules in one line, e.g. for ``stackelberg-mop case``."""
        def side(bound, word):
            if bound is None:
                return None
            if isinstance(bound, str):
                return f"{word} the HV {bound} price"
            return f"{word} {bound[0]:g}" if np.all(bound == bound[0]) else f"{word} per-hour values"
        parts = [p for p in (side(self.lower, "at least"), side(self.upper, "at most")) if p]
        hourly = f"each hour {' and '.join(parts)}, " if parts else ""
        return (f"clearing price: {hourly}within [{self.price_min:g}, {self.price_max:g}] ¥/MWh; "
                f"daily mean <= {self.mean_cap:.2f}")

    @staticmethod
    def _resolve(bound, tariff, default: float) -> np.ndarray:
        if bound is None:
            return np.full(HOURS, default)
        if isinstance(bound, str):
            if tariff is None:  # checked against the case's own tariff by `Case`
                return np.full(HOURS, default)
            return np.asarray(getattr(tariff, f"{bound}_price"), dtype=float)
        return bound


def _hourly_bound(name: str, value):
    """None, "sell"/"buy", or a read-only (24,) array from one number or 24 numbers."""
    label = f"price_rules.{name}"
    if value is None:
        return None
    if isinstance(value, str):
        if value not in TARIFF_BOUNDS:
            raise CaseError(f"{label}: a tariff bound must be one of {TARIFF_BOUNDS}, got {value!r}")
        return value
    flat = value if isinstance(value, list) else [value]
    if any(isinstance(v, bool) or not isinstance(v, int | float | np.number) for v in flat):
        raise CaseError(f"{label}: expected a number, a flat list of 24 numbers or one of {TARIFF_BOUNDS}, "
                        f"got {value!r:.80}")
    arr = np.array(flat, dtype=float)
    if arr.size == 1:
        arr = np.full(HOURS, arr[0])
    if arr.shape != (HOURS,):
        raise CaseError(f"{label}: expected one number or {HOURS}, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise CaseError(f"{label}: must be finite, got {arr.tolist()}")
    arr.setflags(write=False)
    return arr


def check_bounds(lo: np.ndarray, hi: np.ndarray, mean_cap: float, label: str) -> None:
    """CaseError naming the first hour whose lower bound exceeds its upper one, or a cap below Σlo/24."""
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        t = int(bad[0])
        raise CaseError(f"{label}.lower/upper: hour {t}'s lower bound {lo[t]:g} exceeds its upper bound {hi[t]:g} ¥/MWh"
                        + (f" (also hours {bad[1:].tolist()})" if bad.size > 1 else ""))
    if np.mean(lo) > mean_cap + 1e-9:
        raise CaseError(f"{label}.mean_cap: {mean_cap:g} is below the mean of the hours' lower bounds "
                        f"{np.mean(lo):g} ¥/MWh: no price vector satisfies both")


@dataclass(frozen=True, eq=False)
class Objective:
    """The DNO's objective F = ω_1·C_op + ω_2·c_V·Σ|v − 1| (MODEL.md).

    omega_economic ω_1, omega_voltage ω_2: weights (dimensionless, >= 0). voltage_cost c_V: ¥ per
    p.u. per bus-hour. loss_cost c_loss: ¥/MWh of line and MOP losses.
    """

    omega_economic: float
    omega_voltage: float
    voltage_cost: float
    loss_cost: float

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, field_number(f"objective.{f.name}", getattr(self, f.name), lo=0))

    def weigh(self, economic, voltage_deviation):
        """F = ω_1·economic + ω_2·voltage_deviation, the one weighting of the objective's parts:
        economic the operating cost C_op (¥), voltage_deviation c_V·Σ|v − 1| (¥). Numbers, arrays (per
        hour), cvxpy or SCIP expressions alike; `evaluate`, the dispatch model, the KKT master and
        ADMM all weigh through it."""
        return self.omega_economic * economic + self.omega_voltage * voltage_deviation
