"""Cases: the network, the market participants and the rules, validated on construction."""

from .case import (
    HOURS,
    MOP,
    Batteries,
    Case,
    CaseError,
    DSAMarket,
    Generators,
    Grid,
    Objective,
    PriceRules,
    Prosumers,
    Sharing,
    Tariff,
    as_case,
    available_cases,
    case_from_dict,
    check_case,
    load_case,
)

__all__ = ["HOURS", "MOP", "Batteries", "Case", "CaseError", "DSAMarket", "Generators", "Grid", "Objective", "PriceRules", "Prosumers", "Sharing", "Tariff",
           "as_case", "available_cases", "case_from_dict", "check_case", "load_case"]
