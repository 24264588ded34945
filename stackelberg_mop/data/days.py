"""One day's data (`Day`), the reference day of MODEL.md, and real days from SimBench profiles.

Real days: SimBench's reference year 2016 (366 days, hourly means of its 15-min profiles, shipped as
``simbench_profiles.npz``, made by ``scripts/make_profiles.py``). Days are split into whole weeks
(days 7w..7w+6 form week w, the last two days of the year form week 52): week w is a test week when
w % 8 == 3, a validation week when w % 8 == 7, otherwise training (49 test, 42 validation, 275
training days), so validation and test days are never neighbours of training days in the same week.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources

import numpy as np

from .. import _validate
from ..cache import cached
from ..cases import Case, check_case
from ..options import DAY_SOURCES, HOURS, SPLITS

LOAD_SETS = ("aggregate", "household")


@dataclass(frozen=True, eq=False)
class Day:
    """One day of data, hour t = 0..23 (Δt = 1 h). All arrays are float64 and read-only.

    fixed_load: (N, 24) MW, each prosumer's inflexible demand P^fix.
    pv: (N, 24) MW, each prosumer's PV output P^PV. wind: (N, 24) MW, its wind output (default zeros).
    base_p: (B, 24) MW, active load of the non-prosumer part of each bus (``case.buses`` order).
    base_q: (B, 24) Mvar, reactive load of each bus (prosumer buses included).
    buy_price: (24,) ¥/MWh the DNO pays the HV grid. sell_price: (24,) ¥/MWh the HV grid pays.
    name: "reference" or the ISO date; split: "reference", "train", "val" or "test".
    source: a hash of the case data the day was scaled from (`case_source`; set by `reference_day`,
    `simbench_day` and `days`, None for a day built by hand): `check` refuses the day for a case
    whose loads, buses or prosumers differ, even where the array shapes agree. The HV prices are not
    part of it (scenarios of them replace a day's prices on purpose).
    """

    fixed_load: np.ndarray
    pv: np.ndarray
    base_p: np.ndarray
    base_q: np.ndarray
    buy_price: np.ndarray
    sell_price: np.ndarray
    name: str = "reference"
    split: str = "reference"
    calendar: dict = field(default_factory=dict)
    wind: np.ndarray | None = None
    source: str | None = None

    def __post_init__(self):
        _validate.instance("day.name", self.name, str, "a name (a date 'YYYY-MM-DD' or 'reference')")
        _validate.choice("day.split", self.split, DAY_SOURCES)
        _validate.instance("day.calendar", self.calendar, dict, "a dict (day_of_year, weekday)")
        if self.wind is None:
            object.__setattr__(self, "wind", np.zeros(np.shape(self.pv)))
        for name in ("fixed_load", "pv", "wind", "base_p", "base_q", "buy_price", "sell_price"):
            value = _validate.array(f"day.{name}", getattr(self, name))
            if value.ndim != (1 if name.endswith("price") else 2) or value.shape[-1] != HOURS:
                want = f"({HOURS},)" if name.endswith("price") else f"(rows, {HOURS})"
                raise ValueError(f"day.{name}: expected shape {want}, got {value.shape}")
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        for name in ("fixed_load", "pv", "wind"):
            if np.any(getattr(self, name) < 0):
                raise ValueError(f"day.{name}: must be >= 0 MW")
        if np.any(self.buy_price < self.sell_price):
            raise ValueError("day.buy_price: below day.sell_price in some hour")

    def check(self, case: Case) -> Day:
        """Raise ValueError unless the array shapes fit `case`; returns self."""
        check_case(case)
        n, b = len(case.prosumers), case.buses.size
        for name, shape in (("fixed_load", (n, HOURS)), ("pv", (n, HOURS)), ("wind", (n, HOURS)), ("base_p", (b, HOURS)),
                            ("base_q", (b, HOURS))):
            if getattr(self, name).shape != shape:
                raise ValueError(f"day.{name}: shape {getattr(self, name).shape} does not fit case "
                                 f"{case.name!r}, expected {shape}")
        if self.source is not None and self.source != case_source(case):
            raise ValueError(f"day: {self.name} was made for another case than {case.name!r} (other loads, buses "
                             f"or prosumers); make it with this case (days, simbench_day, reference_day)")
        return self

    @property
    def net_load(self) -> np.ndarray:
        """(N, 24) MW, fixed load minus PV and wind: each prosumer's exchange before any flexibility."""
        return self.fixed_load - self.pv - self.wind

    @property
    def renewables(self) -> np.ndarray:
        """(N, 24) MW, PV plus wind output (what a curtailable prosumer may curtail)."""
        return self.pv + self.wind


def case_source(case: Case) -> str:
    """A short hash of what a day of `case` is scaled from: the buses and their nominal loads, the
    prosumers' buses, PV and wind capacities and fixed-load peaks, the reference profiles. Cases
    that differ only in anything else (tariff, rules, objective, batteries, MOP, ...) share days."""
    def build() -> str:
        pros = case.prosumers
        h = hashlib.sha256()
        for part in (case.buses, *case.nominal_load, pros.bus, pros.pv_capacity, pros.wind_capacity,
                     pros.fixed_load_peak if pros.fixed_load_peak is not None else np.zeros(0),
                     case.reference_load, case.reference_pv, case.reference_wind):
            h.update(np.ascontiguousarray(part, dtype=float).tobytes())
            h.update(b"|")
        return h.hexdigest()[:16]

    return cached(case, "day_source", build)


def _day_from_profiles(case: Case, bus_profile: np.ndarray, pv_profile: np.ndarray,
                       wind_profile: np.ndarray | None = None, **meta) -> Day:
    """bus_profile: (B, 24) × nominal bus load (× ``fixed_load_peak`` at a prosumer that has one);
    pv_profile, wind_profile: (N, 24) × PV, wind capacity."""
    p_nom, q_nom = case.nominal_load
    pros = case.prosumers
    pos = case.bus_position(pros.bus)
    base_p = p_nom[:, None] * bus_profile
    fixed_load = base_p[pos].copy()
    if pros.fixed_load_peak is not None:
        fixed_load = pros.fixed_load_peak[:, None] * bus_profile[pos]
    base_p[pos] = 0.0  # the prosumer's fixed load replaces the bus's base active load (MODEL.md)
    wind = None if wind_profile is None else pros.wind_capacity[:, None] * wind_profile
    return Day(fixed_load=fixed_load, pv=pros.pv_capacity[:, None] * pv_profile, base_p=base_p,
               base_q=q_nom[:, None] * bus_profile, buy_price=case.tariff.buy_price,
               sell_price=case.tariff.sell_price, wind=wind, source=case_source(case), **meta)


def reference_day(case: Case) -> Day:
    """MODEL.md's reference day: every bus follows ``case.reference_load``, every PV ``reference_pv``,
    every wind turbine ``reference_wind``."""
    check_case(case)
    b, n = case.buses.size, len(case.prosumers)
    return _day_from_profiles(case, np.tile(case.reference_load, (b, 1)), np.tile(case.reference_pv, (n, 1)),
                              np.tile(case.reference_wind, (n, 1)),
                              name="reference", split="reference", calendar={"day_of_year": 0, "weekday": 0})


@lru_cache(maxsize=1)
def _profiles() -> dict[str, np.ndarray]:
    with resources.files(__package__).joinpath("simbench_profiles.npz").open("rb") as fh:
        data = np.load(fh)
        return {k: data[k] for k in data.files}


def _week_split(day_of_year: np.ndarray) -> np.ndarray:
    week = day_of_year // 7
    return np.where(week % 8 == 3, "test", np.where(week % 8 == 7, "val", "train"))


def day_indices(split: str) -> np.ndarray:
    """Days of the year (0 = 2016-01-01) in `split`, ascending."""
    _validate.choice("split", split, SPLITS)
    n_days = _profiles()["pv"].shape[1]
    doy = np.arange(n_days)
    return doy[_week_split(doy) == split]


def simbench_day(case: Case, day_of_year: int, load_set: str = "aggregate") -> Day:
    """Day `day_of_year` (0 = 2016-01-01) of SimBench's year, scaled to `case`.

    Bus i follows load profile i mod (number of profiles) of `load_set` ("aggregate": SimBench's six
    LV-grid aggregates, default; "household": five single-household H0 profiles); prosumer n's PV
    follows PV profile n mod 8, its wind (if any) SimBench's wind profile n mod (their number). Each
    profile is scaled so that its yearly peak hour equals the case's peak: nominal bus load (or the
    prosumer's fixed_load_peak) × max(reference_load), PV capacity × max(reference_pv), wind
    capacity × max(reference_wind).
    """
    d = _validate.integer("day_of_year", day_of_year, lo=0, hi=_profiles()["pv"].shape[1] - 1)
    return mixed_day(case, d, d, load_set)


def mixed_day(case: Case, load_day: int, weather_day: int, load_set: str = "aggregate") -> Day:
    """A synthetic day: the loads of SimBench day `load_day` with the PV and wind of `weather_day`
    (days of the year, scaled as `simbench_day`; equal days give `simbench_day` itself). Both days
    must be of one split, which the mixed day keeps, so mixing training days never shows a
    validation or test day; its calendar is the load day's. Mixing makes more training days than
    the year has without labels (e.g. for `rl.apg`): 275 × 274 pairs of training days.
    """
    check_case(case)
    _validate.choice("load_set", load_set, LOAD_SETS)
    prof = _profiles()
    a = _validate.integer("load_day", load_day, lo=0, hi=prof["pv"].shape[1] - 1)
    w = _validate.integer("weather_day", weather_day, lo=0, hi=prof["pv"].shape[1] - 1)
    split = _week_split(np.array([a, w]))
    if split[0] != split[1]:
        raise ValueError(f"load_day {a} is a {split[0]} day and weather_day {w} a {split[1]} day: "
                         "a mixed day takes both from one split")
    loads, pvs = prof[load_set], prof["pv"]
    bus_profile = loads[np.arange(case.buses.size) % len(loads), a].astype(float) * case.reference_load.max()
    n = len(case.prosumers)
    pv_profile = pvs[np.arange(n) % len(pvs), w].astype(float) * case.reference_pv.max()
    wind_profile = None
    if (case.prosumers.wind_capacity > 0).any():
        if "wind" not in prof:
            raise ValueError(f"case {case.name!r} has wind, but the shipped profile file has no wind profiles "
                             "(regenerate it with scripts/make_profiles.py)")
        winds = prof["wind"]
        wind_profile = np.maximum(winds[np.arange(n) % len(winds), w].astype(float), 0.0) * case.reference_wind.max()
    when = date(2016, 1, 1) + timedelta(days=a)
    name = when.isoformat() if a == w else f"{when.isoformat()}+weather-{date(2016, 1, 1) + timedelta(days=w)}"
    return _day_from_profiles(case, bus_profile, pv_profile, wind_profile, name=name, split=str(split[0]),
                              calendar={"day_of_year": a, "weekday": when.weekday()})


def days(case: Case, split: str = "train", load_set: str = "aggregate") -> list[Day]:
    """All SimBench days of `split` ("train", "val" or "test") for `case`, in calendar order."""
    check_case(case)
    return [simbench_day(case, d, load_set) for d in day_indices(split)]


def check_day(case: Case, day, name: str = "day") -> Day:
    """`day` if it is a `Day` whose arrays fit `case` (`Day.check`); ValueError otherwise."""
    check_case(case)
    return _validate.instance(name, day, Day, "a Day (reference_day, simbench_day, days)").check(case)
