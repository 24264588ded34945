"""Derive the compact hourly profile file shipped with the package from SimBench.

Run once by a maintainer (needs the `data` extra: `pip install simbench`, ~380 MB):

    python scripts/make_profiles.py

Writes ``stackelberg_mop/data/simbench_profiles.npz``: for each of the 366 days of SimBench's
reference year 2016, hourly means (of the 15-min values) of
- ``aggregate``: the active-power profiles of SimBench's six LV grids (lv_rural1-3, lv_semiurb4-5,
  lv_urban6), each the aggregate of one LV grid's loads, mostly H0 households: the shape a 12.66 kV
  bus sees (mean/peak ~0.4);
- ``household``: the single-household profiles H0-A, H0-B, H0-C, H0-G, H0-L (mean/peak ~0.17; H0-H,
  an electrically heated household whose reactive profile exceeds its active one, is left out);
- ``pv``: the PV profiles PV1-PV8;
- ``wind``: the wind-power profiles WP1-WP12,
each divided by its own yearly maximum hourly value, as float32. Scaling to a case happens at run
time (``stackelberg_mop.data.days``).

SimBench data: simbench.de, licence ODbL 1.0 (Open Database License); see data/PROFILES.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HOUSEHOLD_PROFILES = ("H0-A", "H0-B", "H0-C", "H0-G", "H0-L")
AGGREGATE_PROFILES = ("lv_rural1", "lv_rural2", "lv_rural3", "lv_semiurb4", "lv_semiurb5", "lv_urban6")
PV_PROFILES = tuple(f"PV{i}" for i in range(1, 9))
WIND_PROFILES = tuple(f"WP{i}" for i in range(1, 13))
OUT = Path(__file__).resolve().parents[1] / "stackelberg_mop" / "data" / "simbench_profiles.npz"


def hourly(values: np.ndarray) -> np.ndarray:
    """(35136,) quarter-hour values -> (366, 24) hourly means, normalised to the yearly max."""
    days = values.reshape(-1, 24, 4).mean(axis=2)
    return (days / days.max()).astype(np.float32)


def main() -> None:
    import simbench

    profiles = simbench.get_all_simbench_profiles(0)  # scenario 0 (today's installed capacities)
    load, renewables = profiles["load"], profiles["renewables"]
    first = str(load["time"].iloc[0])
    assert first.startswith("01.01.2016"), first
    np.savez_compressed(
        OUT,
        aggregate=np.stack([hourly(load[f"{name}_pload"].to_numpy(float)) for name in AGGREGATE_PROFILES]),
        household=np.stack([hourly(load[f"{name}_pload"].to_numpy(float)) for name in HOUSEHOLD_PROFILES]),
        pv=np.stack([hourly(renewables[name].to_numpy(float)) for name in PV_PROFILES]),
        wind=np.stack([hourly(renewables[name].to_numpy(float)) for name in WIND_PROFILES]),
        aggregate_names=np.array(AGGREGATE_PROFILES),
        household_names=np.array(HOUSEHOLD_PROFILES),
        pv_names=np.array(PV_PROFILES),
        wind_names=np.array(WIND_PROFILES),
        first_date=np.array("2016-01-01"),
        source=np.array(f"simbench {simbench.__version__}, get_all_simbench_profiles(0)"),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
