"""The market's parties: prosumers, batteries, the MOP, the DNO's generators, P2P sharing, the DSA
market and the substation's grid limits. Each validates its fields when built (`CaseError` naming
the field). Units: MW, MWh, MVA, ¥ (CNY), ¥/MWh; buses are pandapower bus indices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate
from .fields import field_array, field_flags, field_number, field_values, require
from .schema import CaseError


@dataclass(frozen=True, eq=False)
class Prosumers:
    """The followers. Arrays of length N (number of prosumers).

    bus: pandapower bus index of each prosumer. pv_capacity: MW (peak of the PV profile).
    kappa: discomfort cost of shifting load, ¥/(MW²h), > 0. shift_fraction: the transferable load may
    move ±shift_fraction × the hour's fixed load, with the daily sum of the shift zero.

    Optional (Song et al.'s (2024) prosumers; absent = not present):
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
        bus = field_array(self, "bus", int)
        n = bus.size
        require(n > 0, "prosumers.bus", "at least one prosumer is needed", bus)
        require(len(set(bus.tolist())) == n, "prosumers.bus", "one prosumer per bus", bus)
        require(field_array(self, "pv_capacity", length=n) >= 0, "prosumers.pv_capacity", "must be >= 0 MW",
                 self.pv_capacity)
        require(field_array(self, "kappa", length=n) > 0, "prosumers.kappa", "must be > 0 ¥/(MW²h)", self.kappa)
        frac = field_array(self, "shift_fraction", length=n)
        require((frac >= 0) & (frac <= 1), "prosumers.shift_fraction", "must lie in [0, 1]", frac)
        object.__setattr__(self, "curtailable", field_flags("prosumers.curtailable", np.zeros(n, dtype=bool)
                                                       if self.curtailable is None else self.curtailable, n))
        defaults = {"wind_capacity": 0.0, "elastic_max": 0.0, "utility_quadratic": 1.0, "utility_linear": 0.0}
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(n, default))
            field_array(self, name, length=n)
        require(self.wind_capacity >= 0, "prosumers.wind_capacity", "must be >= 0 MW", self.wind_capacity)
        require(self.elastic_max >= 0, "prosumers.elastic_max", "must be >= 0 MW", self.elastic_max)
        require(self.utility_quadratic > 0, "prosumers.utility_quadratic",
                 "must be > 0 ¥/(MW²h) (a concave utility)", self.utility_quadratic)
        if self.fixed_load_peak is not None:
            require(field_array(self, "fixed_load_peak", length=n) >= 0, "prosumers.fixed_load_peak", "must be >= 0 MW",
                     self.fixed_load_peak)
        for name, default in (("bid_min", -np.inf), ("bid_max", np.inf)):  # absent: ∓inf, none
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(n, default))
            field_array(self, name, length=n, allow_inf=True)
        require((self.bid_min <= self.bid_max) & (self.bid_min < np.inf) & (self.bid_max > -np.inf),
                 "prosumers.bid_max", "need bid_min <= bid_max MW", np.c_[self.bid_min, self.bid_max])
        hourly = self.hourly
        require(~hourly | (frac == 0), "prosumers.shift_fraction",
                 "must be 0 for a prosumer with an elastic load, a bid limit or curtailment", frac)

    def __len__(self) -> int:
        return self.bus.size

    @property
    def hourly(self) -> np.ndarray:
        """(N,) bool: the prosumers with an elastic load, a bid limit or curtailment (Song et al.'s (2024) kind),
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
        owner = field_array(self, "owner", int)
        m = owner.size
        require(len(set(owner.tolist())) == m, "batteries.owner", "at most one battery per prosumer", owner)
        for name in ("p_charge_max", "p_discharge_max", "degradation_cost"):
            require(field_array(self, name, length=m) >= 0, f"batteries.{name}", "must be >= 0", getattr(self, name))
        require(field_array(self, "capacity", length=m) > 0, "batteries.capacity", "must be > 0 MWh", self.capacity)
        lo, hi, init = (field_array(self, name, length=m) for name in ("soc_min", "soc_max", "soc_init"))
        require((0 <= lo) & (lo <= init) & (init <= hi) & (hi <= 1), "batteries.soc_init",
                 "need 0 <= soc_min <= soc_init <= soc_max <= 1", np.c_[lo, init, hi])
        for name in ("eta_charge", "eta_discharge"):
            eta = field_array(self, name, length=m)
            require((eta > 0) & (eta <= 1), f"batteries.{name}", "must lie in (0, 1]", eta)
        require(field_array(self, "regularisation", length=m) > 0, "batteries.regularisation",
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
        k = field_array(self, "bus", int).size
        require(k != 1, "mop.bus", "a MOP needs at least two terminals (or none)", self.bus)
        require(len(set(self.bus.tolist())) == k, "mop.bus", "one terminal per bus", self.bus)
        require(field_array(self, "s_max", length=k) >= 0, "mop.s_max", "must be >= 0 MVA", self.s_max)
        loss = field_array(self, "loss_coefficient", length=k)
        require((loss >= 0) & (loss < 1), "mop.loss_coefficient",
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
        g = field_array(self, "bus", int).size
        require(len(set(self.bus.tolist())) == g, "generators.bus", "one generator per bus", self.bus)
        p_lo, p_hi = field_array(self, "p_min", length=g), field_array(self, "p_max", length=g)
        require((p_lo >= 0) & (p_lo <= p_hi) & (p_hi > 0), "generators.p_max",
                 "need 0 <= p_min <= p_max and p_max > 0 MW", np.c_[p_lo, p_hi])
        q_lo, q_hi = field_array(self, "q_min", length=g), field_array(self, "q_max", length=g)
        require(q_lo <= q_hi, "generators.q_max", "need q_min <= q_max Mvar", np.c_[q_lo, q_hi])
        require(field_array(self, "cost_quadratic", length=g) >= 0, "generators.cost_quadratic",
                 "must be >= 0 ¥/(MW²h) (a convex cost)", self.cost_quadratic)
        field_array(self, "cost_linear", length=g)
        field_array(self, "cost_fixed", length=g)

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
    """The prosumers' peer-to-peer sharing platform (Song et al. 2024), optional.

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
        require((cap >= 0) & (cap == cap.T), "sharing.cap", "must be >= 0 MW and symmetric", cap)
        np.fill_diagonal(cap, 0.0)
        cap.setflags(write=False)
        object.__setattr__(self, "cap", cap)
        object.__setattr__(self, "trade_cost", field_number("sharing.trade_cost", self.trade_cost, lo=0, lo_open=True))

    @classmethod
    def from_pairs(cls, buses: np.ndarray, pairs, caps, trade_cost: float) -> Sharing:
        """From pairs of prosumer buses and their caps (MW), as the JSON section ``p2p`` gives them."""
        if not isinstance(pairs, list | tuple) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in pairs):
            raise CaseError(f"p2p.pairs_bus: expected a list of [bus, bus] pairs, got {pairs!r:.80}")
        pairs = field_values("p2p.pairs_bus", [b for p in pairs for b in p], int)
        caps = field_values("p2p.caps_mw", caps)
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
    """Wang et al.'s (2024) market of distribution substation areas (DSAs), optional: the prosumers are the DSAs
    (their loads, PV/wind, shiftable load and batteries), each trading with the network at the tariff
    and, cooperating, with the others over the `Sharing` platform's pairs (`papers.dsa_market`). Arrays of N.

    comfort_cost: ¥/MWh on |shifted load| (demand response's comfort penalty, Wang et al. (2024) Eq. 1k).
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
            value = field_values(f"dsa.{name}", getattr(self, name))
            object.__setattr__(self, name, value)
            require(value > 0 if name == "admm_penalty" else value >= 0, f"dsa.{name}",
                     "must be > 0 ¥/(MW²h)" if name == "admm_penalty" else "must be >= 0", value)
        object.__setattr__(self, "curtailable", field_flags("dsa.curtailable", self.curtailable))


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
