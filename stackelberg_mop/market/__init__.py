"""The prosumer (follower) model: exact and batched best response, standard form, KKT residuals."""

from .follower import BestResponse, best_response, best_response_batch, check_prices
from .kkt import FollowerQP, follower_qp, kkt_residuals, qp_kkt_residuals, standard_solution

__all__ = ["BestResponse", "FollowerQP", "best_response", "best_response_batch", "check_prices", "follower_qp",
           "kkt_residuals", "qp_kkt_residuals", "standard_solution"]
