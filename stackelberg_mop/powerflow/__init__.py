"""The DNO's network: SOCP / linear DistFlow dispatch with the MOP, LMPs, and AC power-flow checks."""

from .distflow import FORMULATIONS, DispatchModel, DispatchResult, dispatch, dispatch_model, join_windows
from .network import Feeder, feeder

__all__ = ["FORMULATIONS", "DispatchModel", "DispatchResult", "Feeder", "dispatch", "dispatch_model", "feeder", "join_windows"]
