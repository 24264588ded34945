"""Daily profiles: the reference day and real SimBench days split into whole weeks."""

from ..options import SPLITS
from .days import LOAD_SETS, Day, check_day, day_indices, days, mixed_day, reference_day, simbench_day
from .optimum_table import Optimum, OptimumError, optimum

__all__ = [
           "LOAD_SETS",
           "SPLITS",
           "Day",
           "Optimum",
           "OptimumError",
           "check_day",
           "day_indices",
           "days",
           "mixed_day",
           "optimum",
           "reference_day",
           "simbench_day",
]
