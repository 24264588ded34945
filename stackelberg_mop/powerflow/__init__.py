"""The DNO's network: SOCP / linear DistFlow dispatch with the MOP, LMPs, and AC power-flow checks.

`network` (the feeder as arrays), `formulations` (SOCP, LinDistFlow), `dispatch` (the model, built once
and re-solved), `result` (`DispatchResult`), `clarabel_backend` (the fast path through cvxpy's
internals), `threads`, `ac` (the AC check), `mop` (the agent's MOP set-points).
"""

from .clarabel_backend import SlowPathWarning
from .dispatch import DispatchModel, check_market_options, dispatch, dispatch_model
from .formulations import FORMULATIONS
from .network import Feeder, feeder
from .result import DispatchResult, join_windows
from .threads import dispatch_threads, set_dispatch_threads

__all__ = ["FORMULATIONS", "DispatchModel", "DispatchResult", "Feeder", "SlowPathWarning", "check_market_options", "dispatch",
           "dispatch_model", "dispatch_threads", "feeder", "join_windows", "set_dispatch_threads"]
