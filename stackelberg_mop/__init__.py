"""stackelberg-mop: Gymnasium environments and exact baselines for the DNO-prosumer Stackelberg market
with a multi-terminal soft open point (MOP) on a radial distribution feeder.

Units everywhere: MW, Mvar, MWh, hours, ¥ (CNY), ¥/MWh, per-unit voltage.
"""

from .cases import Case, CaseError, available_cases, load_case
from .data import Day, days, reference_day, simbench_day
from .evaluate import Outcome, evaluate
from .market import BestResponse, best_response, best_response_batch, kkt_residuals

__version__ = "0.1.0"

__all__ = [
           "BestResponse",
           "Case",
           "CaseError",
           "Day",
           "Outcome",
           "available_cases",
           "best_response",
           "best_response_batch",
           "days",
           "evaluate",
           "kkt_residuals",
           "load_case",
           "reference_day",
           "simbench_day",
]
