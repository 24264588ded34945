"""What the DNO knows about a day, as a flat float32 vector with a named layout.

Every block is scaled to order one so that agents need no extra normalisation (units in brackets):

| block        | size   | value                                                              |
|--------------|--------|--------------------------------------------------------------------|
| fixed_load   | N × 24 | each prosumer's inflexible demand forecast / its nominal load (or its fixed_load_peak) [MW/MW] |
| pv           | N × 24 | each prosumer's PV forecast / its PV capacity [MW/MW]              |
| wind         | N × 24 | each prosumer's wind forecast / its wind capacity (only in a case with wind) [MW/MW] |
| base_p       | 24     | active load of the rest of the feeder / its nominal total [MW/MW]  |
| base_q       | 24     | reactive load of the feeder / its nominal total [Mvar/Mvar]         |
| buy_price    | 24     | HV buy price / λ_max [(¥/MWh)/(¥/MWh)]                             |
| sell_price   | 24     | HV sell price / λ_max                                              |
| battery_soc  | E      | each battery's initial state of energy / its capacity [MWh/MWh]    |
| calendar     | 4      | sin, cos of 2π·day_of_year/366; sin, cos of 2π·weekday/7           |

Rows are in the case's prosumer (and battery) order; blocks of N × 24 are flattened row by row.
The space is Box(−10, 10): values are clipped there (no shipped day comes near it).
`day_layout(case)` gives each block's slice; `day_features(case, day)` the vector.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from ..cache import cached
from ..cases import HOURS, Case
from ..data import Day

#: observations are clipped to ±OBS_BOUND (every block is O(1) by construction)
OBS_BOUND = 10.0


def observation_box(size: int) -> gym.spaces.Box:
    return gym.spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(size,), dtype=np.float32)


def day_blocks(case: Case) -> dict[str, int]:
    n, e = len(case.prosumers), len(case.batteries)
    wind = {"wind": n * HOURS} if (case.prosumers.wind_capacity > 0).any() else {}
    return {"fixed_load": n * HOURS, "pv": n * HOURS, **wind, "base_p": HOURS, "base_q": HOURS,
            "buy_price": HOURS, "sell_price": HOURS, "battery_soc": e, "calendar": 4}


def layout(blocks: dict[str, int]) -> dict[str, slice]:
    """Consecutive slices for blocks given as {name: size}."""
    out, start = {}, 0
    for name, size in blocks.items():
        out[name] = slice(start, start + size)
        start += size
    return out


def day_layout(case: Case) -> dict[str, slice]:
    """{block name: slice} of `day_features`."""
    return layout(day_blocks(case))


def _scales(case: Case) -> dict[str, np.ndarray]:
    return cached(case, "observation_scales", lambda: _build_scales(case))


def _build_scales(case: Case) -> dict[str, np.ndarray]:
    p_nom, q_nom = case.nominal_load
    pros = case.bus_position(case.prosumers.bus)
    others = np.ones(case.buses.size, dtype=bool)
    others[pros] = False
    pros_nom = p_nom[pros] if case.prosumers.fixed_load_peak is None else case.prosumers.fixed_load_peak
    wind = case.prosumers.wind_capacity
    return {"fixed_load": np.where(pros_nom > 0, pros_nom, 1.0),
            "pv": np.where(case.prosumers.pv_capacity > 0, case.prosumers.pv_capacity, 1.0),
            "wind": np.where(wind > 0, wind, 1.0),
            "base_p": max(float(p_nom[others].sum()), 1e-9), "base_q": max(float(q_nom.sum()), 1e-9)}


def day_features(case: Case, day: Day) -> np.ndarray:
    """The day's observation vector (float32), laid out as `day_layout(case)`."""
    sc = _scales(case)
    cal = day.calendar or {}
    doy, wd = float(cal.get("day_of_year", 0)), float(cal.get("weekday", 0))
    price = case.price_rules.price_max
    parts = [
        (day.fixed_load / sc["fixed_load"][:, None]).ravel(),
        (day.pv / sc["pv"][:, None]).ravel(),
        *([(day.wind / sc["wind"][:, None]).ravel()] if "wind" in day_blocks(case) else []),
        day.base_p.sum(axis=0) / sc["base_p"],
        day.base_q.sum(axis=0) / sc["base_q"],
        day.buy_price / price,
        day.sell_price / price,
        case.batteries.e_init / case.batteries.capacity,
        np.array([np.sin(2 * np.pi * doy / 366), np.cos(2 * np.pi * doy / 366),
                  np.sin(2 * np.pi * wd / 7), np.cos(2 * np.pi * wd / 7)]),
    ]
    return np.concatenate(parts).astype(np.float32)
