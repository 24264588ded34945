"""Scoring: prices → the followers' best response → the DNO's dispatch → the AC check → `Outcome`.

`evaluate` (the one scorer of a day, of one hour, and over HV price scenarios), `outcome` (what it
returns), `costs` (the one place a network state is priced), `yardstick` (a day's score against the
bi-level optimum and the tariff, and its aggregate over days).
"""

from .costs import (
    COST_ROWS,
    check_mop_setpoints,
    economic_costs,
    hourly_network_costs,
    network_costs,
    price_violation,
    weigh_hours,
)
from .evaluate import evaluate, evaluate_expected, evaluate_hour
from .outcome import ExpectedOutcome, HourOutcome, Outcome

__all__ = ["COST_ROWS", "ExpectedOutcome", "HourOutcome", "Outcome", "check_mop_setpoints", "economic_costs", "evaluate",
           "evaluate_expected", "evaluate_hour", "hourly_network_costs", "network_costs", "price_violation", "weigh_hours"]
