"""The `Case`: network, prosumers, batteries, MOP, tariff, price rules and objective weights.

Every field is validated when the case is built; a field that cannot work raises `CaseError` naming it.
Units: MW, MWh, MVA, ¥ (CNY), ¥/MWh, per-unit voltage. Bus numbers are the pandapower bus indices.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from .. import _validate
from ..options import HOURS
from .schema import CaseError, check_layout


def _values(label: str, raw, dtype=float, length: int | None = None, allow_inf: bool = False) -> np.ndarray:
    """`raw` as a read-only 1-D array (of `length` if given) of finite numbers (`_validate.array`); with
    dtype int, of whole numbers (bus 6.5 is an error, not bus 6). Strings, booleans and nested lists
    are refused with a `CaseError` naming the field."""
    try:
        value = _validate.array(label, raw, allow_inf=allow_inf)
    except ValueError as err:
        raise CaseError(str(err)) from None
    if value.ndim > 1:
        raise CaseError(f"{label}: expected a flat list of numbers, got shape {value.shape}")
    value = value.reshape(-1)
    if dtype is int:
        if not np.all(value == np.round(value)):
            raise CaseError(f"{label}: expected whole numbers, got {value.tolist()}")
        value = value.astype(int)
    if length is not None and value.shape != (length,):
        raise CaseError(f"{label}: expected {length} values, got {value.size}")
    value.setflags(write=False)
    return value


def _array(owner, name: str, dtype=float, length: int | None = None, allow_inf: bool = False) -> np.ndarray:
    """The dataclass field `owner.name` replaced by its checked array (`_values`), which is returned."""
    value = _values(f"{type(owner).__name__.lower()}.{name}", getattr(owner, name), dtype, length, allow_inf)
    object.__setattr__(owner, name, value)
    return value


def _number(label: str, value, **limits) -> float:
    """A finite number (`_validate.number`), its error a `CaseError` naming the field."""
    try:
        return _validate.number(label, value, **limits)
    except ValueError as err:
        raise CaseError(str(err)) from None


def _flags(label: str, raw, length: int | None = None) -> np.ndarray:
    """`raw` as a read-only bool array (of `length` if given) from true/false or 0/1 values; CaseError
    naming the field otherwise."""
    try:
        value = np.asarray(raw)
    except ValueError:  # ragged nesting
        value = np.asarray(raw, dtype=object)
    shape_ok = value.ndim == 1 and value.dtype != object and (length is None or value.shape == (length,))
    if not shape_ok or not (value.dtype == bool or np.isin(value, (0, 1)).all()):
        want = f"{length} values" if length is not None else "values"
        raise CaseError(f"{label}: expected {want} true or false, got {value.tolist()}")
    value = value.astype(bool)
    value.setflags(write=False)
    return value


def _require(ok, label: str, what: str, value) -> None:
    if not np.all(ok):
        raise CaseError(f"{label}: {what}, got {np.asarray(value).tolist()}")


@dataclass(frozen=True, eq=False)
class Prosumers:
    """The followers. Arrays of length N (number of prosumers).

    bus: pandapower bus index of each prosumer. pv_capacity: MW (peak of the PV profile).
    kappa: discomfort cost of shifting load, ¥/(MW²h), > 0. shift_fraction: the transferable load may
    move ±shift_fraction × the hour's fixed load, with the daily sum of the shift zero.

    Optional (seeds/003's prosumers; absent = not present):
    wind_capacity: MW (peak of the wind profile), default 0.
    fixed_load_peak: MW, the fixed load's scale (× the load profile: the reference day's peak is
    fixed_load_peak × max(reference_load), a SimBench day's yearly peak hour the same); default None:
    the bus's nominal active load × the profile.
    elastic_max d̄ (MW, default 0: none), utility_quadratic a (¥/(MW²h), > 0 where d̄ > 0),
    utility_linear b (¥/MWh): an elastic load 0 <= d <= d̄ of utility b·d − a·d² per hour.
    bid_min, bid_max: MW, limits on the exchange P_n,t (the bid limit); default None: none.
    curtailable: whether the renewables (PV and wind) may be curtailed at no cost, default False.
    A prosumer with an elastic load, a bid limit or curtailment has no shiftable load
    (shift_fraction 0) and no battery: its best response is then hour by hour (`market.follower`).
    """

    bus: np.ndarray
    pv_capacity: np.ndarray
    kappa: np.ndarray
    shift_fraction: np.ndarray
    wind_capacity: np.ndarray | None = None
    fixed_load_peak: np.ndarray | None = None
    elastic_max: np.ndarray | None = None
    utility_quadratic: np.ndarray | None = None
    utility_linear: np.ndarray | None = None
    bid_min: np.ndarray | None = None
    bid_max: np.ndarray | None = None
    curtailable: np.ndarray | None = None

    def __post_init__(self):
        bus = _array(self, "bus", int)
        n = bus.size
        _require(n > 0, "prosumers.bus", "at least one prosumer is needed", bus)
        _require(len(set(bus.tolist())) == n, "prosumers.bus", "one prosumer per bus", bus)
        _require(_array(self, "pv_capacity", length=n) >= 0, "prosumers.pv_capacity", "must be >= 0 MW",
                 self.pv_capacity)
        _require(_array(self, "kappa", length=n) > 0, "prosumers.kappa", "must be > 0 ¥/(MW²h)", self.kappa)
        frac = _array(self, "shift_fraction", length=n)
        _require((frac >= 0) & (frac <= 1), "prosumers.shift_fraction", "must lie in [0, 1]", frac)
        object.__setattr__(self, "curtailable", _flags("prosumers.curtailable", np.zeros(n, dtype=bool)
                                                       if self.curtailable is None else self.curtailable, n))
        defaults = {"wind_capacity": 0.0, "elastic_max": 0.0, "utility_quadratic": 1.0, "utility_linear": 0.0}
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(n, default))
            _array(self, name, length=n)
        _require(self.wind_capacity >= 0, "prosumers.wind_capacity", "must be >= 0 MW", self.wind_capacity)
        _require(self.elastic_max >= 0, "prosumers.elastic_max", "must be >= 0 MW", self.elastic_max)
        _require(self.utility_quadratic > 0, "prosumers.utility_quadratic",
                 "must be > 0 ¥/(MW²h) (a concave utility)", self.utility_quadratic)
        if self.fixed_load_peak is not None:
            _require(_array(self, "fixed_load_peak", length=n) >= 0, "prosumers.fixed_load_peak", "must be >= 0 MW",
                     self.fixed_load_peak)
        for name, default in (("bid_min", -np.inf), ("bid_max", np.inf)):  # absent: ∓inf, none
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(n, default))
            _array(self, name, length=n, allow_inf=True)
        _require((self.bid_min <= self.bid_max) & (self.bid_min < np.inf) & (self.bid_max > -np.inf),
                 "prosumers.bid_max", "need bid_min <= bid_max MW", np.c_[self.bid_min, self.bid_max])
        hourly = self.hourly
        _require(~hourly | (frac == 0), "prosumers.shift_fraction",
                 "must be 0 for a prosumer with an elastic load, a bid limit or curtailment", frac)

    def __len__(self) -> int:
        return self.bus.size

    @property
    def hourly(self) -> np.ndarray:
        """(N,) bool: the prosumers with an elastic load, a bid limit or curtailment (seeds/003's kind),
        whose problem separates by hour."""
        return ((self.elastic_max > 0) | np.isfinite(self.bid_min) | np.isfinite(self.bid_max) | self.curtailable)

    @property
    def bid_limited(self) -> bool:
        """Whether any prosumer has a finite bid limit."""
        return bool(np.isfinite(self.bid_min).any() or np.isfinite(self.bid_max).any())

    @property
    def extended(self) -> bool:
        """Whether any of the optional parts is present (wind, own fixed-load peaks, hourly prosumers)."""
        return bool(self.hourly.any() or (self.wind_capacity > 0).any() or self.fixed_load_peak is not None)


@dataclass(frozen=True, eq=False)
class Batteries:
    """Energy storage (ESS), at most one per prosumer. Arrays of length M.

    owner: index of the owning prosumer (0..N-1). p_charge_max, p_discharge_max: MW. capacity: MWh.
    soc_min, soc_max, soc_init: state of charge as a share of capacity; the day ends at soc_init.
    eta_charge, eta_discharge: efficiencies in (0, 1]. degradation_cost δ: ¥/MWh charged or discharged.
    regularisation ε: ¥/(MW²h) on charge² + discharge²; > 0 makes the response unique (MODEL.md).
    """

    owner: np.ndarray
    p_charge_max: np.ndarray
    p_discharge_max: np.ndarray
    capacity: np.ndarray
    soc_min: np.ndarray
    soc_max: np.ndarray
    soc_init: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    degradation_cost: np.ndarray
    regularisation: np.ndarray

    def __post_init__(self):
        owner = _array(self, "owner", int)
        m = owner.size
        _require(len(set(owner.tolist())) == m, "batteries.owner", "at most one battery per prosumer", owner)
        for name in ("p_charge_max", "p_discharge_max", "degradation_cost"):
            _require(_array(self, name, length=m) >= 0, f"batteries.{name}", "must be >= 0", getattr(self, name))
        _require(_array(self, "capacity", length=m) > 0, "batteries.capacity", "must be > 0 MWh", self.capacity)
        lo, hi, init = (_array(self, name, length=m) for name in ("soc_min", "soc_max", "soc_init"))
        _require((0 <= lo) & (lo <= init) & (init <= hi) & (hi <= 1), "batteries.soc_init",
                 "need 0 <= soc_min <= soc_init <= soc_max <= 1", np.c_[lo, init, hi])
        for name in ("eta_charge", "eta_discharge"):
            eta = _array(self, name, length=m)
            _require((eta > 0) & (eta <= 1), f"batteries.{name}", "must lie in (0, 1]", eta)
        _require(_array(self, "regularisation", length=m) > 0, "batteries.regularisation",
                 "must be > 0 ¥/(MW²h) (it makes the best response unique)", self.regularisation)

    def __len__(self) -> int:
        return self.owner.size

    @property
    def e_min(self) -> np.ndarray:
        """Lowest stored energy, MWh."""
        return self.soc_min * self.capacity

    @property
    def e_max(self) -> np.ndarray:
        """Highest stored energy, MWh."""
        return self.soc_max * self.capacity

    @property
    def e_init(self) -> np.ndarray:
        """Stored energy at the start and (required) at the end of the day, MWh."""
        return self.soc_init * self.capacity


@dataclass(frozen=True, eq=False)
class MOP:
    """Multi-terminal soft open point: K voltage-source converters on one DC bus.

    bus: pandapower bus of each terminal. s_max: converter rating, MVA. loss_coefficient A_k:
    converter loss = A_k × apparent power (MW per MVA). An empty MOP (no terminals) is allowed.
    """

    bus: np.ndarray
    s_max: np.ndarray
    loss_coefficient: np.ndarray

    def __post_init__(self):
        k = _array(self, "bus", int).size
        _require(k != 1, "mop.bus", "a MOP needs at least two terminals (or none)", self.bus)
        _require(len(set(self.bus.tolist())) == k, "mop.bus", "one terminal per bus", self.bus)
        _require(_array(self, "s_max", length=k) >= 0, "mop.s_max", "must be >= 0 MVA", self.s_max)
        loss = _array(self, "loss_coefficient", length=k)
        _require((loss >= 0) & (loss < 1), "mop.loss_coefficient",
                 "must lie in [0, 1) MW per MVA (at 1 a converter would lose all it carries)", loss)

    def __len__(self) -> int:
        return self.bus.size


@dataclass(frozen=True, eq=False)
class Generators:
    """Dispatchable distributed generators (DGs) of the DNO. Arrays of length G (none by default).

    bus: pandapower bus of each DG (one per bus, not the substation). p_min, p_max: MW, 0 <= p_min <=
    p_max, p_max > 0. q_min, q_max: Mvar, q_min <= q_max. Cost per hour of output P (MW) in ¥:
    cost_quadratic·P² + cost_linear·P + cost_fixed, with cost_quadratic a (¥/(MW²h)) >= 0, cost_linear b
    (¥/MWh) and cost_fixed c (¥/h, paid every hour whatever the output: no unit commitment). The DNO
    dispatches them with its network (`powerflow.DispatchModel`); a DG at an interior output runs at
    marginal cost 2aP + b = its bus's LMP.
    """

    bus: np.ndarray = ()
    p_min: np.ndarray = ()
    p_max: np.ndarray = ()
    q_min: np.ndarray = ()
    q_max: np.ndarray = ()
    cost_quadratic: np.ndarray = ()
    cost_linear: np.ndarray = ()
    cost_fixed: np.ndarray = ()

    def __post_init__(self):
        g = _array(self, "bus", int).size
        _require(len(set(self.bus.tolist())) == g, "generators.bus", "one generator per bus", self.bus)
        p_lo, p_hi = _array(self, "p_min", length=g), _array(self, "p_max", length=g)
        _require((p_lo >= 0) & (p_lo <= p_hi) & (p_hi > 0), "generators.p_max",
                 "need 0 <= p_min <= p_max and p_max > 0 MW", np.c_[p_lo, p_hi])
        q_lo, q_hi = _array(self, "q_min", length=g), _array(self, "q_max", length=g)
        _require(q_lo <= q_hi, "generators.q_max", "need q_min <= q_max Mvar", np.c_[q_lo, q_hi])
        _require(_array(self, "cost_quadratic", length=g) >= 0, "generators.cost_quadratic",
                 "must be >= 0 ¥/(MW²h) (a convex cost)", self.cost_quadratic)
        _array(self, "cost_linear", length=g)
        _array(self, "cost_fixed", length=g)

    def __len__(self) -> int:
        return self.bus.size

    def cost(self, p) -> np.ndarray:
        """¥ per hour of each DG at outputs p (G, ...) MW: a·p² + b·p + c, elementwise."""
        p = np.asarray(p, dtype=float)
        shape = (-1,) + (1,) * (p.ndim - 1)
        a, b, c = (x.reshape(shape) for x in (self.cost_quadratic, self.cost_linear, self.cost_fixed))
        return a * p**2 + b * p + c


@dataclass(frozen=True, eq=False)
class Sharing:
    """The prosumers' peer-to-peer sharing platform (seeds/003), optional.

    cap: (N, N) MW, symmetric, zero diagonal: the largest trade |p_nm| between prosumers n and m
    (0: the pair cannot trade). trade_cost γ: ¥/(MW²h), > 0, each side of a trade pays (γ/2)·p² (a
    platform fee that makes the trades unique). `market.p2p.p2p_market(case)` builds the market from
    it, with the prosumers' bid limits as limits on their exchange with the DNO after trades.
    """

    cap: np.ndarray
    trade_cost: float = 10.0

    def __post_init__(self):
        try:
            cap = _validate.array("sharing.cap", self.cap, "MW")
        except ValueError as err:
            raise CaseError(str(err)) from None
        if cap.ndim != 2 or cap.shape[0] != cap.shape[1]:
            raise CaseError(f"sharing.cap: expected a square (N, N) matrix in MW, got shape {cap.shape}")
        _require((cap >= 0) & (cap == cap.T), "sharing.cap", "must be >= 0 MW and symmetric", cap)
        np.fill_diagonal(cap, 0.0)
        cap.setflags(write=False)
        object.__setattr__(self, "cap", cap)
        object.__setattr__(self, "trade_cost", _number("sharing.trade_cost", self.trade_cost, lo=0, lo_open=True))

    @classmethod
    def from_pairs(cls, buses: np.ndarray, pairs, caps, trade_cost: float) -> Sharing:
        """From pairs of prosumer buses and their caps (MW), as the JSON section ``p2p`` gives them."""
        if not isinstance(pairs, list | tuple) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in pairs):
            raise CaseError(f"p2p.pairs_bus: expected a list of [bus, bus] pairs, got {pairs!r:.80}")
        pairs = _values("p2p.pairs_bus", [b for p in pairs for b in p], int)
        caps = _values("p2p.caps_mw", caps)
        if pairs.size != 2 * caps.size:
            raise CaseError(f"p2p.pairs_bus: expected {caps.size} pairs of buses (one per cap), got {pairs.size} buses")
        index = {int(b): i for i, b in enumerate(buses)}
        cap = np.zeros((len(buses), len(buses)))
        seen = set()
        for (a, b), c in zip(pairs.reshape(-1, 2), caps):
            if int(a) not in index or int(b) not in index or a == b:
                raise CaseError(f"p2p.pairs_bus: [{a}, {b}] is not a pair of two prosumer buses "
                                f"(prosumers at {sorted(index)})")
            if frozenset((int(a), int(b))) in seen:
                raise CaseError(f"p2p.pairs_bus: the pair [{a}, {b}] is given twice (one cap per pair)")
            seen.add(frozenset((int(a), int(b))))
            cap[index[int(a)], index[int(b)]] = cap[index[int(b)], index[int(a)]] = c
        return cls(cap=cap, trade_cost=trade_cost)


@dataclass(frozen=True, eq=False)
class DSAMarket:
    """seeds/001's market of distribution substation areas (DSAs), optional: the prosumers are the DSAs
    (their loads, PV/wind, shiftable load and batteries), each trading with the network at the tariff
    and, cooperating, with the others over the `Sharing` platform's pairs (`market.dsa`). Arrays of N.

    comfort_cost: ¥/MWh on |shifted load| (demand response's comfort penalty, seeds/001 Eq. 1k).
    import_max, export_max: MW, each DSA's purchase and sale limits with the network (Eqs. 1c–1d).
    curtailable: whether its renewables may be curtailed at no cost. admm_penalty: ρ_n, ¥/(MW²h), > 0,
    each DSA's own penalty in the decentralised ADMM (Algorithm 1).
    """

    comfort_cost: np.ndarray
    import_max: np.ndarray
    export_max: np.ndarray
    curtailable: np.ndarray
    admm_penalty: np.ndarray

    def __post_init__(self):  # lengths are the case's to check (one value per DSA)
        for name in ("comfort_cost", "import_max", "export_max", "admm_penalty"):
            value = _values(f"dsa.{name}", getattr(self, name))
            object.__setattr__(self, name, value)
            _require(value > 0 if name == "admm_penalty" else value >= 0, f"dsa.{name}",
                     "must be > 0 ¥/(MW²h)" if name == "admm_penalty" else "must be >= 0", value)
        object.__setattr__(self, "curtailable", _flags("dsa.curtailable", self.curtailable))


@dataclass(frozen=True, eq=False)
class Grid:
    """The substation's exchange with the HV grid: import_limit, export_limit MW (>= 0; inf = none, the
    default). A finite import limit (a contract or transformer capacity) makes the DGs marginal in the
    hours it binds, so the LMPs then follow their costs rather than the tariff."""

    import_limit: float = np.inf
    export_limit: float = np.inf

    def __post_init__(self):
        for name in ("import_limit", "export_limit"):
            value = getattr(self, name)
            value = np.inf if value is None else value
            if not (isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
                    and value >= 0):
                raise CaseError(f"grid.{name}: must be a number >= 0 MW (or absent for none), got {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def limited(self) -> bool:
        return bool(np.isfinite(self.import_limit) or np.isfinite(self.export_limit))


@dataclass(frozen=True, eq=False)
class Tariff:
    """The HV grid's prices, ¥/MWh per hour: the DNO buys at buy_price, sells at sell_price."""

    buy_price: np.ndarray
    sell_price: np.ndarray

    def __post_init__(self):
        buy = _array(self, "buy_price", length=HOURS)
        sell = _array(self, "sell_price", length=HOURS)
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
    (`hourly_bounds`). The default case follows seeds/000: ρ^sell_t <= λ_t <= ρ^buy_t.
    """

    price_min: float
    price_max: float
    mean_cap: float
    lower: object = None
    upper: object = None

    def __post_init__(self):
        for name in ("price_min", "price_max", "mean_cap"):
            object.__setattr__(self, name, _number(f"price_rules.{name}", getattr(self, name), unit="¥/MWh"))
        if self.price_min > self.price_max:
            raise CaseError(f"price_rules.price_min: {self.price_min} exceeds price_max {self.price_max}")
        for name in ("lower", "upper"):
            object.__setattr__(self, name, _hourly_bound(name, getattr(self, name)))
        lo, hi = self.hourly_bounds(None)
        _check_bounds(lo, hi, self.mean_cap, "price_rules")

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


def _check_bounds(lo: np.ndarray, hi: np.ndarray, mean_cap: float, label: str) -> None:
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
            object.__setattr__(self, f.name, _number(f"objective.{f.name}", getattr(self, f.name), lo=0))

    def weigh(self, economic, voltage_deviation):
        """F = ω_1·economic + ω_2·voltage_deviation, the one weighting of the objective's parts:
        economic the operating cost C_op (¥), voltage_deviation c_V·Σ|v − 1| (¥). Numbers, arrays (per
        hour), cvxpy or SCIP expressions alike; `evaluate`, the dispatch model, the KKT master and
        ADMM all weigh through it."""
        return self.omega_economic * economic + self.omega_voltage * voltage_deviation


@dataclass(frozen=True, eq=False)
class Case:
    """A validated market case on a radial pandapower network.

    net: pandapower network (radial in service, one ext_grid = the substation). Buses are referred to
    by their pandapower index; bus-indexed arrays (``Day.base_p`` ...) follow ``case.buses`` order.
    s_base: MVA, per-unit base inside the network models. v_min, v_max, v_slack: p.u.
    reference_load, reference_pv: 24-hour profiles (× nominal load, × PV capacity) of the reference day;
    reference_wind (× wind capacity) where a prosumer has wind (default: none, zeros).
    """

    name: str
    net: object = field(repr=False)
    prosumers: Prosumers
    batteries: Batteries
    mop: MOP
    tariff: Tariff
    price_rules: PriceRules
    objective: Objective
    reference_load: np.ndarray = field(repr=False)
    reference_pv: np.ndarray = field(repr=False)
    reference_wind: np.ndarray | None = field(default=None, repr=False)
    generators: Generators = field(default_factory=Generators)
    grid: Grid = field(default_factory=Grid)
    sharing: Sharing | None = None
    dsa: DSAMarket | None = None
    s_base: float = 10.0
    v_min: float = 0.95
    v_max: float = 1.05
    v_slack: float = 1.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise CaseError(f"case.name: expected a non-empty string, got {self.name!r}")
        for name in ("s_base", "v_min", "v_max", "v_slack"):
            object.__setattr__(self, name, _number(f"case.{name}", getattr(self, name)))
        parts = {"prosumers": Prosumers, "batteries": Batteries, "mop": MOP, "tariff": Tariff,
                 "price_rules": PriceRules, "objective": Objective, "generators": Generators, "grid": Grid}
        if self.sharing is not None and not isinstance(self.sharing, Sharing):
            raise CaseError(f"case.sharing: expected a Sharing or None, got {type(self.sharing).__name__}")
        if self.sharing is not None and self.sharing.cap.shape != (len(self.prosumers),) * 2:
            raise CaseError(f"sharing.cap: shape {self.sharing.cap.shape} does not fit {len(self.prosumers)} prosumers")
        if self.dsa is not None:
            if not isinstance(self.dsa, DSAMarket):
                raise CaseError(f"case.dsa: expected a DSAMarket or None, got {type(self.dsa).__name__}")
            for f in dataclasses.fields(self.dsa):
                size = np.size(getattr(self.dsa, f.name))
                if size != len(self.prosumers):
                    raise CaseError(f"dsa.{f.name}: expected {len(self.prosumers)} values (one per DSA), got {size}")
            if self.sharing is None:
                raise CaseError("dsa: needs the section p2p (the pairs that may trade and their fee)")
        for name, kind in parts.items():
            if not isinstance(getattr(self, name), kind):
                raise CaseError(f"case.{name}: expected a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if self.reference_wind is None:
            if (self.prosumers.wind_capacity > 0).any():
                raise CaseError("reference_profiles.wind: needed, some prosumers have wind_capacity > 0")
            object.__setattr__(self, "reference_wind", np.zeros(HOURS))
        for name in ("reference_load", "reference_pv", "reference_wind"):
            _require(_array(self, name, length=HOURS) >= 0, f"case.{name}", "must be >= 0", getattr(self, name))
        if not (0 < self.v_min < self.v_slack < self.v_max):
            raise CaseError(f"case.v_min: need 0 < v_min < v_slack < v_max, got "
                            f"{self.v_min}, {self.v_slack}, {self.v_max}")
        if not self.s_base > 0:
            raise CaseError(f"case.s_base: must be > 0 MVA, got {self.s_base}")
        _check_radial(self.net)
        buses = set(self.buses.tolist())
        for label, bus in (("prosumers.bus", self.prosumers.bus), ("mop.bus", self.mop.bus),
                           ("generators.bus", self.generators.bus)):
            missing = sorted(set(bus.tolist()) - buses)
            if missing:
                raise CaseError(f"{label}: bus {missing} does not exist in the network "
                                f"(in-service buses are {min(buses)}..{max(buses)})")
            if self.slack_bus in bus:
                raise CaseError(f"{label}: bus {self.slack_bus} is the substation (slack) bus")
        lo, hi = self.price_rules.hourly_bounds(self.tariff)
        _check_bounds(lo, hi, self.price_rules.mean_cap, "price_rules")
        bad_owner = self.batteries.owner[(self.batteries.owner < 0) | (self.batteries.owner >= len(self.prosumers))]
        if bad_owner.size:
            raise CaseError(f"batteries.owner: prosumer index {bad_owner.tolist()} does not exist "
                            f"(there are {len(self.prosumers)} prosumers)")
        hourly_owner = self.prosumers.bus[self.batteries.owner[self.prosumers.hourly[self.batteries.owner]]]
        if hourly_owner.size:
            raise CaseError(f"batteries.owner: the prosumer(s) at bus {hourly_owner.tolist()} have an elastic load, "
                            "a bid limit or curtailment, which is not supported together with a battery")

    # --- derived network data -------------------------------------------------------------------
    @cached_property
    def buses(self) -> np.ndarray:
        """In-service pandapower bus indices, sorted; the row order of bus-indexed arrays."""
        return np.sort(self.net.bus.index[self.net.bus.in_service].to_numpy())

    @cached_property
    def slack_bus(self) -> int:
        return int(self.net.ext_grid.bus.iloc[0])

    @cached_property
    def nominal_load(self) -> tuple[np.ndarray, np.ndarray]:
        """(P MW, Q Mvar) of the network's in-service loads, summed per bus, in ``buses`` order."""
        loads = self.net.load[self.net.load.in_service]
        p = np.zeros(self.buses.size)
        q = np.zeros(self.buses.size)
        pos = np.searchsorted(self.buses, loads.bus.to_numpy())
        np.add.at(p, pos, (loads.p_mw * loads.scaling).to_numpy())
        np.add.at(q, pos, (loads.q_mvar * loads.scaling).to_numpy())
        return p, q

    def bus_position(self, bus) -> np.ndarray:
        """Row of each pandapower bus index in bus-indexed arrays."""
        return np.searchsorted(self.buses, np.asarray(bus))

    def placement(self, bus) -> np.ndarray:
        """(B, K) 0/1 matrix placing K devices at their pandapower buses `bus` (rows in ``buses`` order):
        bus-indexed = placement @ device-indexed."""
        bus = np.asarray(bus)
        out = np.zeros((self.buses.size, bus.size))
        out[self.bus_position(bus), np.arange(bus.size)] = 1.0
        return out

    @cached_property
    def battery_of(self) -> np.ndarray:
        """For each prosumer, the index of its battery or -1."""
        out = np.full(len(self.prosumers), -1)
        out[self.batteries.owner] = np.arange(len(self.batteries))
        return out

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of everything that defines the market (network tables, participants, tariff,
        rules, objective, profiles, limits; not the name): data computed for a case, such as the shipped
        optimum table, records it and is refused for a case with other data."""
        parts = {"s_base": self.s_base, "v": [self.v_min, self.v_max, self.v_slack],
                 "reference": [self.reference_load.tolist(), self.reference_pv.tolist()]}
        if self.prosumers.extended:
            parts["reference"].append(self.reference_wind.tolist())
        if self.sharing is not None:
            parts["sharing"] = [self.sharing.cap.tolist(), self.sharing.trade_cost]
        if self.dsa is not None:
            parts["dsa"] = {f.name: _plain(getattr(self.dsa, f.name)) for f in dataclasses.fields(self.dsa)}
        for name in ("prosumers", "batteries", "mop", "tariff", "price_rules", "objective", "generators", "grid"):
            part = getattr(self, name)
            if name in ("generators", "grid") and not (len(part) if name == "generators" else part.limited):
                continue  # absent parts leave the fingerprints of cases without them unchanged
            fields = dataclasses.fields(part)
            if name == "prosumers" and not part.extended:
                fields = [f for f in fields if f.name in _BASE_PROSUMER_FIELDS]
            parts[name] = {f.name: _plain(getattr(part, f.name)) for f in fields}
        net = self.net
        tables = {"bus": ["vn_kv", "in_service"], "line": ["from_bus", "to_bus", "length_km", "r_ohm_per_km",
                  "x_ohm_per_km", "max_i_ka", "df", "parallel", "in_service"],
                  "load": ["bus", "p_mw", "q_mvar", "scaling", "in_service"], "ext_grid": ["bus", "in_service"]}
        for table, cols in tables.items():
            df = getattr(net, table)
            parts[table] = [df.index.tolist()] + [df[c].astype(float).tolist() for c in cols]
        text = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def replace(self, **changes) -> Case:
        """A copy with some fields changed (validated again), e.g. ``case.replace(objective=...)``."""
        return dataclasses.replace(self, **changes)

    def __getstate__(self) -> dict:
        """Pickled without the private caches (built solvers, the feeder's matrices): a used case can
        be sent to a worker process, which rebuilds them."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


#: the prosumer fields of every case (the others are optional and leave fingerprints alone when absent)
_BASE_PROSUMER_FIELDS = ("bus", "pv_capacity", "kappa", "shift_fraction")


def _plain(value):
    """A JSON-able form of a field: arrays as lists, numbers as floats, strings and None as they are."""
    if isinstance(value, np.ndarray):
        return value.astype(float).tolist()
    return value if value is None or isinstance(value, str) else float(value)


def _check_radial(net) -> None:
    """A case network must be a tree of in-service lines rooted at its single ext_grid."""
    if net is None or not hasattr(net, "bus"):
        raise CaseError("case.net: expected a pandapower network")
    if len(net.ext_grid[net.ext_grid.in_service]) != 1:
        raise CaseError(f"case.net: needs exactly one in-service ext_grid (substation), "
                        f"found {int(net.ext_grid.in_service.sum())}")
    if len(net.trafo[net.trafo.in_service]) or len(net.trafo3w[net.trafo3w.in_service]):
        raise CaseError("case.net: transformers are not supported; model the feeder below the substation")
    buses = net.bus.index[net.bus.in_service]
    lines = net.line[net.line.in_service]
    if len(lines) != len(buses) - 1:
        kind = "meshed" if len(lines) > len(buses) - 1 else "disconnected"
        raise CaseError(f"case.net: the network is {kind}: {len(lines)} in-service lines for "
                        f"{len(buses)} buses (a radial feeder has buses - 1)")
    parent = {int(b): int(b) for b in buses}

    def root(b):
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    for f, t in zip(lines.from_bus.to_numpy(), lines.to_bus.to_numpy()):
        if int(f) not in parent or int(t) not in parent:
            raise CaseError(f"case.net: line {f}-{t} ends at an out-of-service or unknown bus")
        a, b = root(int(f)), root(int(t))
        if a == b:
            raise CaseError(f"case.net: the network is meshed: line {f}-{t} closes a loop")
        parent[a] = b


# --- loading ------------------------------------------------------------------------------------
def case_from_dict(spec: dict, net=None) -> Case:
    """Build a `Case` from the JSON layout of ``cases/ieee33-mop.json`` (units in the key names).

    ``net`` overrides ``spec["network"]["pandapower_case"]`` (a function of ``pandapower.networks``).
    Batteries name their owner by bus (``owner_bus``). The sections ``batteries``, ``mop``,
    ``generators`` (DGs: ``bus``, ``p_min_mw`` (default 0), ``p_max_mw``, ``q_min_mvar``, ``q_max_mvar``,
    ``cost_quadratic_cny_per_mw2h``, ``cost_linear_cny_per_mwh``, ``cost_fixed_cny_per_h`` (default 0)) and
    ``grid`` (``import_limit_mw``, ``export_limit_mw``, absent = none) and ``p2p`` (the sharing
    platform: ``pairs_bus`` [[bus, bus], ...], ``caps_mw`` one per pair, ``trade_cost_cny_per_mw2h``,
    default 10), ``dsa`` (seeds/001's substation areas, `DSAMarket`: ``comfort_cost_cny_per_mwh``,
    ``import_max_mw``, ``export_max_mw``, ``curtailable``, ``admm_penalty_cny_per_mw2h``; needs ``p2p``)
    are optional. ``network.load_scale`` (default 1) scales the network's own loads. ``price_rules`` may give each hour's own
    bounds, ``lower_cny_per_mwh`` / ``upper_cny_per_mwh``: a number, 24 numbers, or "sell" / "buy"
    (the day's HV tariff). ``"extends": "<shipped case>"`` starts from that case's layout and
    replaces the top-level sections given (``cases/ieee33-mop-flatcap.json``). A missing section or
    field, or one of the wrong type, raises `CaseError` naming it.
    """
    if not isinstance(spec, dict):
        raise CaseError(f"the case: expected a JSON object of sections, got {type(spec).__name__}")
    if "extends" in spec:
        check_layout(spec)  # the file's own sections first: an error names what the user wrote
    spec = _resolve_extends(spec)
    check_layout(spec)
    try:
        optional = ("batteries", "mop", "generators", "grid", "p2p", "dsa")
        sections = {k: _section(spec, k, optional=k in optional)
                    for k in ("network", "prosumers", "batteries", "mop", "tariff", "price_rules", "objective",
                              "voltage", "reference_profiles", *optional[2:])}
        pros, bat, mop = sections["prosumers"], sections["batteries"], sections["mop"]
        shift = pros["shift_fraction"]
        kappa = pros.get("kappa_cny_per_mw2h")
        if kappa is None and isinstance(shift, list) and not any(shift):  # no shiftable load: κ unused
            kappa = [1.0] * len(shift)
        optional = {"wind_capacity": "wind_capacity_mw", "fixed_load_peak": "fixed_load_peak_mw",
                    "elastic_max": "elastic_max_mw", "utility_quadratic": "utility_quadratic_cny_per_mw2h",
                    "utility_linear": "utility_linear_cny_per_mwh", "bid_min": "bid_min_mw",
                    "bid_max": "bid_max_mw", "curtailable": "curtailable"}
        prosumers = Prosumers(bus=pros["bus"], pv_capacity=pros["pv_capacity_mw"],
                              kappa=kappa if kappa is not None else pros["kappa_cny_per_mw2h"], shift_fraction=shift,
                              **{k: pros.get(key) for k, key in optional.items()})
        owner_bus = _values("batteries.owner_bus", bat.get("owner_bus", []), int)
        unknown = [int(b) for b in owner_bus if b not in prosumers.bus]
        if unknown:
            raise CaseError(f"batteries.owner_bus: no prosumer at bus {unknown}")
        owner = [int(np.flatnonzero(prosumers.bus == b)[0]) for b in owner_bus]
        power = bat.get("power_mw", [])
        batteries = Batteries(
            owner=owner, p_charge_max=bat.get("p_charge_max_mw", power),
            p_discharge_max=bat.get("p_discharge_max_mw", power), capacity=bat.get("capacity_mwh", []),
            soc_min=bat.get("soc_min", []), soc_max=bat.get("soc_max", []), soc_init=bat.get("soc_init", []),
            eta_charge=bat.get("eta_charge", []), eta_discharge=bat.get("eta_discharge", []),
            degradation_cost=bat.get("degradation_cny_per_mwh", []),
            regularisation=bat.get("regularisation_cny_per_mw2h", []))
        tar = sections["tariff"]
        tariff = Tariff(buy_price=tar["buy_price_cny_per_mwh"], sell_price=tar["sell_price_cny_per_mwh"])
        rules = sections["price_rules"]
        cap = rules["mean_cap"]
        cap = float(np.mean(tariff.buy_price)) if cap == "mean_buy_price" else cap
        obj, volt, ref = sections["objective"], sections["voltage"], sections["reference_profiles"]
        objective = Objective(obj["omega_economic"], obj["omega_voltage"], obj["voltage_cost_cny_per_pu"],
                              obj["loss_cost_cny_per_mwh"])
        mop = MOP(bus=mop.get("bus", []), s_max=mop.get("s_max_mva", []), loss_coefficient=mop.get("loss_coefficient", []))
        gen, grid = sections["generators"], sections["grid"]
        n_gen = len(_values("generators.bus", gen.get("bus", []), int))
        generators = Generators(
            bus=gen.get("bus", []), p_min=gen.get("p_min_mw", [0.0] * n_gen),
            p_max=gen.get("p_max_mw", []), q_min=gen.get("q_min_mvar", []), q_max=gen.get("q_max_mvar", []),
            cost_quadratic=gen.get("cost_quadratic_cny_per_mw2h", []),
            cost_linear=gen.get("cost_linear_cny_per_mwh", []),
            cost_fixed=gen.get("cost_fixed_cny_per_h", [0.0] * n_gen))
        grid = Grid(import_limit=grid.get("import_limit_mw"), export_limit=grid.get("export_limit_mw"))
        p2p = sections["p2p"]
        sharing = None if "p2p" not in spec else Sharing.from_pairs(prosumers.bus, p2p["pairs_bus"], p2p["caps_mw"],
                                                         p2p.get("trade_cost_cny_per_mw2h", 10.0))
        dsa = sections["dsa"]
        dsa = None if "dsa" not in spec else DSAMarket(
            comfort_cost=dsa["comfort_cost_cny_per_mwh"], import_max=dsa["import_max_mw"],
            export_max=dsa["export_max_mw"], curtailable=dsa.get("curtailable", [False] * len(prosumers)),
            admm_penalty=dsa["admm_penalty_cny_per_mw2h"])
        price_rules = PriceRules(rules["price_min_cny_per_mwh"], rules["price_max_cny_per_mwh"], cap,
                                 lower=rules.get("lower_cny_per_mwh"), upper=rules.get("upper_cny_per_mwh"))
        profiles = {f"reference_{k}": _values(f"reference_profiles.{k}", ref[k]) for k in ("load", "pv")}
        if "wind" in ref:
            profiles["reference_wind"] = _values("reference_profiles.wind", ref["wind"])
        for k in ("pv", "wind"):  # shares of an installed capacity
            share = profiles.get(f"reference_{k}")
            if share is not None and (np.any(share < 0) or np.any(share > 1)):
                raise CaseError(f"reference_profiles.{k}: shares of the capacity lie in [0, 1], got max "
                                f"{share.max():g}, min {share.min():g}")
        limits = {f"v_{k}": _number(f"voltage.v_{k}_pu", volt[f"v_{k}_pu"]) for k in ("min", "max", "slack")}
        s_base = _number("network.s_base_mva", sections["network"].get("s_base_mva", 10.0))
        load_scale = _number("network.load_scale", sections["network"].get("load_scale", 1.0), lo=0)
        if net is None:  # last: the other fields are checked without building the network
            net = _pandapower_network(sections["network"].get("pandapower_case"))
        if load_scale != 1.0:  # the network's own loads scaled (0: a feeder that carries only the case's parties)
            net = copy.deepcopy(net)
            net.load["scaling"] = net.load["scaling"] * load_scale
        return Case(name=spec.get("name"), net=net, prosumers=prosumers, batteries=batteries, mop=mop, tariff=tariff,
                    price_rules=price_rules, objective=objective, generators=generators, grid=grid, sharing=sharing,
                    dsa=dsa, s_base=s_base,
                    **profiles, **limits)
    except _MissingField as err:
        raise CaseError(f"{err.args[0]}: missing field {err.args[1]!r}") from None


class _MissingField(KeyError):
    """A required key of a section: (section, key)."""


class _Section(dict):
    """A section of a case file whose missing keys raise `_MissingField` naming the section."""

    def __init__(self, name: str, data: dict):
        super().__init__(data)
        self.name = name

    def __missing__(self, key):
        raise _MissingField(self.name, key)


def _section(spec: dict, key: str, optional: bool = False) -> _Section:
    if key not in spec:
        if optional:
            return _Section(key, {})
        raise CaseError(f"missing section {key!r}")
    if not isinstance(spec[key], dict):
        raise CaseError(f"{key}: expected a JSON object of fields, got {type(spec[key]).__name__}")
    return _Section(key, spec[key])


def _pandapower_network(name):
    """A fresh copy of the feeder ``pandapower.networks.<name>()``; CaseError naming the field for an
    unknown name. Built once per process (pandapower takes ~1.4 s for case33bw, a copy ~0.05 s)."""
    import pandapower.networks as pn

    if not isinstance(name, str) or not name.isidentifier() or not callable(getattr(pn, name, None)):
        raise CaseError(f"network.pandapower_case: {name!r} is not a network of pandapower.networks "
                        "(e.g. 'case33bw')")
    return copy.deepcopy(_built_network(name))


@functools.lru_cache(maxsize=8)
def _built_network(name: str):
    import pandapower.networks as pn

    try:
        return getattr(pn, name)()
    except TypeError as err:
        raise CaseError(f"network.pandapower_case: {name!r} could not be built without arguments ({err})") from None


def _resolve_extends(spec: dict, seen: tuple = ()) -> dict:
    """The layout with its ``extends`` chain applied: top-level sections of `spec` replace the parent's."""
    parent = spec.get("extends")
    if parent is None:
        return spec
    if parent in seen or parent not in available_cases():
        why = "extends itself" if parent in seen else f"is not a shipped case ({available_cases()})"
        raise CaseError(f"extends: {parent!r}, which {why}")
    base = _resolve_extends(json.loads(resources.files(__package__).joinpath(f"{parent}.json").read_text()),
                            seen + (parent,))
    return {**base, **{k: v for k, v in spec.items() if k != "extends"}}


def _unique_keys(pairs: list) -> dict:
    """A JSON object whose keys are all different: a key given twice (the second silently winning in
    plain JSON) is a CaseError naming it."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise CaseError(f"{key}: given twice in one JSON object (which value is meant?)")
        seen[key] = value
    return seen


def available_cases() -> list[str]:
    """Names of the cases shipped with the package."""
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))


def load_case(name: str = "ieee33-mop") -> Case:
    """Load a shipped case by name, or a case JSON file by path. A file that does not exist, is not
    valid JSON or holds a bad field raises `CaseError` naming the file (and the field)."""
    if not isinstance(name, str | Path):
        raise CaseError(f"case name: expected a shipped case name or a .json path, got {name!r}")
    path = Path(name)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise CaseError(f"case file {str(path)!r}: " + ("is a directory, not a file" if path.is_dir() else "no such file"))
        try:
            where, text = str(path), path.read_text()
        except UnicodeDecodeError:
            raise CaseError(f"case file {str(path)!r}: not a text (UTF-8) file") from None
    else:
        if name not in available_cases():
            raise CaseError(f"case name: unknown case {name!r}; shipped cases are {available_cases()} "
                            "(or pass the path of a .json file)")
        where, text = f"{name}.json", resources.files(__package__).joinpath(f"{name}.json").read_text()
    try:
        spec = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise CaseError(f"case file {where!r}: not valid JSON: {err}") from None
    except CaseError as err:
        raise CaseError(f"case file {where!r}: {err}") from None
    try:
        return case_from_dict(spec)
    except CaseError as err:
        raise CaseError(f"case file {where!r}: {err}") from None


def check_case(case, name: str = "case") -> Case:
    """`case` if it is a `Case`; ValueError otherwise (where a name is not accepted: see `as_case`)."""
    return _validate.instance(name, case, Case, "a Case (load_case)")


def as_case(case, name: str = "case") -> Case:
    """A `Case` given as itself or as a shipped name / case file path (`load_case`)."""
    if isinstance(case, Case):
        return case
    _validate.instance(name, case, str, "a Case or a case name (load_case)")
    return load_case(case)
