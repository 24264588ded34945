"""The exact bi-level optimum: every prosumer replaced by its KKT conditions, solved with SCIP.

The single-level model (MODEL.md, "Single level"): the DNO's prices within the day's rules, each
follower's KKT conditions with binaries and derived Big-Ms (`followers`, `bigm.py`), the revenue
λᵀP_n by strong duality, so that the leader's objective

    ω_1 (grid cost + c_loss (line + MOP losses) − Σ_n λᵀP_n) + ω_2 c_V Σ|v − 1|  (+ soft-limit penalty)

is convex and the problem a convex mixed-integer SOCP. Two ways to solve it, both with SCIP:
- ``method="oa"`` (default, `outer`): outer approximation of the network's convex cost Φ(P) by
  cuts at exchange powers the solve has scored; the master is an MIQP;
- ``method="misocp"`` (`solve`): the DistFlow rows inside one SCIP tree (`network.add_network`,
  generated from the one-hour dispatch model's compiled conic data).

Every answer is verified (`verification`): the followers are re-solved at λ* by `best_response`,
multipliers are checked against their Big-Ms, and λ* is re-scored by `evaluate`.

Modules: `scip` (SCIP's settings and threads), `followers` (one prosumer's KKT rows), `network`
(Φ, its cuts, the DistFlow rows), `model` (the SCIP model), `heuristics` (start prices, local
search), `outer` (the OA loop), `verification` (the checks and the result), `solve` (entry point).
"""

from .followers import AT_BOUND_TOL, FollowerKKT
from .heuristics import local_search, start_prices
from .model import KKTModel, new_model, price_box
from .network import hourly_network_cost, network_cut
from .outer import OuterApproximation
from .scip import IPOPT_OPTIONS_FILE, MAX_DEFAULT_THREADS, SCIP_PARAMS, THREADS_ENV, default_threads
from .solve import METHODS, solve
from .verification import BIGM_TOL, OBJECTIVE_RTOL, KKTResult, Verification, scored_objective, verify

__all__ = [
           "AT_BOUND_TOL",
           "BIGM_TOL",
           "IPOPT_OPTIONS_FILE",
           "MAX_DEFAULT_THREADS",
           "METHODS",
           "OBJECTIVE_RTOL",
           "SCIP_PARAMS",
           "THREADS_ENV",
           "FollowerKKT",
           "KKTModel",
           "KKTResult",
           "OuterApproximation",
           "Verification",
           "default_threads",
           "hourly_network_cost",
           "local_search",
           "network_cut",
           "new_model",
           "price_box",
           "scored_objective",
           "solve",
           "start_prices",
           "verify",
]
