"""The prosumer (follower) model: exact and batched best response, standard form, KKT residuals."""

from .follower import BestResponse, best_response, best_response_batch, check_prices, replan
from .prices import (
           PriceBounds,
           action_jacobian,
           action_to_prices,
           price_bounds,
           prices_to_action,
           project_prices,
)
from .standard_form import FollowerQP, follower_qp, kkt_residuals, qp_kkt_residuals, standard_solution

__all__ = [
           "BestResponse",
           "FollowerQP",
           "PriceBounds",
           "action_jacobian",
           "action_to_prices",
           "best_response",
           "best_response_batch",
           "check_prices",
           "follower_qp",
           "kkt_residuals",
           "price_bounds",
           "prices_to_action",
           "project_prices",
           "qp_kkt_residuals",
           "replan",
           "standard_solution",
]
