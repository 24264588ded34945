"""Cases: the network, the market participants and the rules, validated on construction.

`parties` (prosumers, batteries, MOP, generators, sharing, DSA market, grid), `rules` (tariff, price
rules, objective), `case` (the `Case` that holds them), `topology` (the radial-network check), `schema`
(the case file's keys), `loader` (case files and the shipped cases) and `generate` (new cases on any
radial feeder).
"""

from ..options import HOURS
from .case import Case, check_case
from .generate import generate_case, write_case
from .loader import as_case, available_cases, case_from_dict, load_case, shipped_networks
from .parties import MOP, Batteries, DSAMarket, Generators, Grid, Prosumers, Sharing
from .rules import Objective, PriceRules, Tariff
from .schema import CaseError

__all__ = ["HOURS", "MOP", "Batteries", "Case", "CaseError", "DSAMarket", "Generators", "Grid", "Objective", "PriceRules",
           "Prosumers", "Sharing", "Tariff", "as_case", "available_cases", "case_from_dict", "check_case", "generate_case",
           "load_case", "shipped_networks", "write_case"]
