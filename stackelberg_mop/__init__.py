"""stackelberg-mop: Gymnasium environments and exact baselines for the DNO-prosumer Stackelberg market
with a multi-terminal soft open point (MOP) on a radial distribution feeder.

Units everywhere: MW, Mvar, MWh, hours, ¥ (CNY), ¥/MWh, per-unit voltage.
"""

from .cases import Case, CaseError, available_cases, load_case
from .data import Day, Optimum, OptimumError, days, optimum, reference_day, simbench_day
from .envs import StackelbergMOPEnv, StackelbergMOPHourlyEnv  # registers the Gymnasium IDs
from .evaluate import Outcome, evaluate
from .market import BestResponse, best_response, best_response_batch, kkt_residuals, project_prices

__version__ = "0.1.0"

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
