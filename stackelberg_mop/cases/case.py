"""The `Case`: network, prosumers, batteries, MOP, tariff, price rules and objective weights.

Every field is validated when the case is built; a field that cannot work raises `CaseError` naming it.
Units: MW, MWh, MVA, ¥ (CNY), ¥/MWh, per-unit voltage. Bus numbers are the pandapower bus indices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .. import _validate
from ..options import HOURS
from .fields import field_array, field_number, require
from .parties import MOP, Batteries, DSAMarket, Generators, Grid, Prosumers, Sharing
from .rules import Objective, PriceRules, Tariff, check_bounds
from .schema import CaseError
from .topology import check_radial


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
            object.__setattr__(self, name, field_number(f"case.{name}", getattr(self, name)))
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
            require(field_array(self, name, length=HOURS) >= 0, f"case.{name}", "must be >= 0", getattr(self, name))
        if not (0 < self.v_min < self.v_slack < self.v_max):
            raise CaseError(f"case.v_min: need 0 < v_min < v_slack < v_max, got "
                            f"{self.v_min}, {self.v_slack}, {self.v_max}")
        if not self.s_base > 0:
            raise CaseError(f"case.s_base: must be > 0 MVA, got {self.s_base}")
        check_radial(self.net)
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
        check_bounds(lo, hi, self.price_rules.mean_cap, "price_rules")
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


def check_case(case, name: str = "case") -> Case:
    """`case` if it is a `Case`; ValueError otherwise (where a name is not accepted: see `as_case`)."""
    return _validate.instance(name, case, Case, "a Case (load_case)")
