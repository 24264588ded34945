"""stackelberg-mop: Gymnasium environments and exact baselines for the DNO-prosumer Stackelberg market
with a multi-terminal soft open point (MOP) on a radial distribution feeder.

Units everywhere: MW, Mvar, MWh, hours, ¥ (CNY), ¥/MWh, per-unit voltage.
"""

from ._version import __version__ as __version__
from .cases import Case, CaseError, available_cases, load_case
from .data import Day, Optimum, OptimumError, days, optimum, reference_day, simbench_day
from .envs import StackelbergMOPEnv, StackelbergMOPHourlyEnv  # registers the Gymnasium IDs
from .market import BestResponse, best_response, best_response_batch, kkt_residuals, project_prices
from .scoring import Outcome, evaluate

__all__ = [
           "BestResponse",
           "Case",
           "CaseError",
           "Day",
           "Optimum",
           "OptimumError",
           "Outcome",
           "StackelbergMOPEnv",
           "StackelbergMOPHourlyEnv",
           "available_cases",
           "best_response",
           "best_response_batch",
           "days",
           "evaluate",
           "kkt_residuals",
           "load_case",
           "optimum",
           "project_prices",
           "reference_day",
           "simbench_day",
]
