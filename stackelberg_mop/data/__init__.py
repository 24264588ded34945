"""Daily profiles: the reference day and real SimBench days split into whole weeks."""

from .days import LOAD_SETS, SPLITS, Day, day_indices, days, reference_day, simbench_day

__all__ = ["LOAD_SETS", "SPLITS", "Day", "day_indices", "days", "reference_day", "simbench_day"]
