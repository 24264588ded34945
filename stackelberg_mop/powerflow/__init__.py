"""The DNO's network: SOCP / linear DistFlow dispatch with the MOP, LMPs, and AC power-flow checks."""

from .distflow import (
    FORMULATIONS,
    DispatchModel,
    DispatchResult,
    dispatch,
    dispatch_model,
    dispatch_threads,
    join_windows,
    set_dispatch_threads,
)
from .network import Feeder, feeder

__all__ = ["FORMULATIONS", "DispatchModel", "DispatchResult", "Feeder", "dispatch", "dispatch_model", "dispatch_threads", "feeder",
           "join_windows", "set_dispatch_threads"]
