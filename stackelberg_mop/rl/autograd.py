"""The day's DNO objective as a differentiable PyTorch function of the prices.

    prices = policy(features)                       # a torch tensor (24,) or (N, 24), ¥/MWh
    loss = day_objective(case, day, prices) / 1e3   # J(λ) in ¥, scaled
    loss.backward()                                 # prices.grad = dJ/dλ (`scoring.gradient`)

The forward pass is `evaluate` (in NumPy, on the CPU); the backward pass multiplies the incoming
gradient by its exact dJ/dλ. A day that does not solve gives NaN, so that an optimiser step on it is
visible (`torch.isfinite`) rather than silently wrong. Kinks are where `evaluate` flags them
(`Outcome.gradient_kinks`); there the gradient is one element of the generalised gradient.
"""

from __future__ import annotations

import torch

from ..cases import Case
from ..data import Day
from ..scoring import evaluate


class DayObjective(torch.autograd.Function):
    """J(λ) with its exact gradient; call through `day_objective`."""

    @staticmethod
    def forward(ctx, prices: torch.Tensor, case: Case, day: Day, options: dict) -> torch.Tensor:
        outcome = evaluate(case, day, prices.detach().cpu().double().numpy(), gradient=True, **options)
        ctx.save_for_backward(torch.as_tensor(outcome.price_gradient, dtype=prices.dtype, device=prices.device))
        return torch.tensor(outcome.dno_objective, dtype=prices.dtype, device=prices.device)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (gradient,) = ctx.saved_tensors
        return grad_output * gradient, None, None, None


def day_objective(case: Case, day: Day, prices: torch.Tensor, **options) -> torch.Tensor:
    """The DNO objective J (¥, a 0-d tensor) of `prices` ((24,) or (N, 24) ¥/MWh) on `day`, differentiable
    in the prices; `options` go to `evaluate` (mop "opf"/"off", voltage_limits "hard"/"none",
    formulation). The prices must keep the day's rules (`market.project_prices`, or
    `market.action_to_prices` from an action) for J to be the game's objective."""
    if not isinstance(prices, torch.Tensor):
        raise ValueError(f"prices: expected a torch tensor, got {type(prices).__name__}")  # noqa: TRY004
    return DayObjective.apply(prices, case, day, dict(options))

