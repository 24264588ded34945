"""`StackelbergMOP-v1`: the day-ahead Stackelberg game, one decision per episode.

The DNO (the agent) sees a day's forecasts and posts 24 hourly clearing prices; the prosumers answer
with their exact best response, the DNO's SOCP dispatches the network (and the MOP), an AC power
flow checks the voltages (`evaluate`); the episode ends after that one step.

Action space
    Box(-1, 1, (24,), float32) with mop "opf" or "off"; with price_per_prosumer=True the first block
    is N·24 (one row per prosumer); with mop "agent" 2·K·24 more entries, the MOP set-points.
    a[:24] → prices λ_t = lo_t + (a_t + 1)/2 · (hi_t − lo_t) with the day's hourly bounds
    (`market.price_bounds`; by default the HV sell and buy prices), then the Euclidean projection onto
    the bounds and the daily-mean cap (`PriceBounds.project`); a[24:] reshaped (2, K, 24) = [P; Q] →
    MOP set-points (`powerflow.mop.action_to_mop_setpoints`; the last terminal balances the DC bus).
    Entries outside [-1, 1] are clipped; NaN/inf raise ValueError.
Observation space
    Box(-10, 10, (D,), float32): the day's forecasts, each block scaled to order one
    (`observation.day_features`; block slices in ``env.unwrapped.observation_layout``).
Reward
    (J_tariff − F − violation_penalty · violating bus-hours) / reward_scale with F the DNO objective of
    the day (¥) and J_tariff the objective when the HV tariff (projected onto the price rules) is
    posted: the ¥ the prices gain over passing the tariff through, in units of reward_scale (default
    1,000 ¥; across days −3 to +3, 0 = the tariff). reward_baseline=None gives −F / reward_scale
    instead (v0's reward, ≈ −12 ± 5 at this scale, of which prices move ≈ 1). With p2p, J_tariff
    is the tariff's score without the sharing market (a constant per day). A failed solve gives
    ``failure_reward`` and its status in info.
Starting state
    reset draws a day of the split with the environment's generator (``reset(seed=...)``), or takes
    ``options={"day": index | "YYYY-MM-DD" | Day, "split": ...}``.
Episode end
    terminated after the one step; a second ``step`` without ``reset`` raises RuntimeError. No
    truncation. ``gym.make_vec`` (sync and async) resets within the step that ends the day
    (same-step autoreset), so every step of a vector env is a real day.
Info (the step)
    day, prices (posted) and raw_prices (before projection), reward_baseline (¥), status, the day's
    `Outcome` scalars and main arrays (`outcome_info`), tariff_objective J_tariff (¥), and the
    yardstick (`yardstick`) on every day the shipped optimum table holds (all validation and test
    days, proven or not): optimum_objective J* (¥), optimum_bound, regret J − J* (¥),
    normalised_regret (J − J*)/(J_tariff − J*). These four are absent on days without a row (the
    training days) and for games other than the one J* solves (mop "off" or "agent", soft limits,
    sharing, one price per prosumer).
    With ``reward_gradient=True``: reward_gradient, d reward / d action (the action's shape, float32;
    exact where the reward is differentiable, `scoring.gradient`), and gradient_kinks, the hours
    where it may not be. Defined for mop "opf" or "off", voltage limits "hard" or "none", without p2p;
    the violation penalty, a count of bus-hours, contributes zero.
Arguments
    see `StackelbergMOPEnv`.

Version history
    v1: reward relative to the tariff at 1,000 ¥ per unit by default; the yardstick keys in every
        final info; step after the end raises; same-step autoreset in both vectorisation modes.
    v0: reward −F / 10,000 ¥ (reward_baseline=None); J* and regret only on days proven to 1e-4.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np

from .. import _validate
from ..cases import HOURS, Case, as_case
from ..data import Day
from ..market import action_jacobian, action_to_prices
from ..market.p2p import P2PMarket, p2p_market, p2p_response
from ..options import ENV_MOP_MODES, VOLTAGE_MODES
from ..powerflow.mop import action_to_mop_setpoints, mop_action_size
from ..scoring import Outcome, evaluate
from ..scoring.gradient import check_gradient_options
from ..scoring.yardstick import TariffScore, Yardstick
from .common import (
    RENDER_MODES,
    REWARD_BASELINES,
    DayPool,
    check_mop_mode,
    check_seed,
    default_voltage_limits,
    refuse_unknown,
    render_day,
    reward_options,
    yardstick_info,
)
from .observation import OBS_BOUND, day_features, day_layout, observation_box


def check_action(action, space: gym.spaces.Box) -> np.ndarray:
    """The action as float array of the space's shape; ValueError naming the problem."""
    a = _validate.array("action", action)
    if a.size != space.shape[0] or a.ndim > 1 and a.shape != (1, space.shape[0]):
        raise ValueError(f"action: expected {space.shape[0]} values, got shape {np.shape(action)}")
    return a.reshape(space.shape)


def outcome_info(outcome: Outcome) -> dict:
    """The `info` of a scored day: the scalars of `Outcome.summary()` plus the main arrays. Scalars that do
    not apply are left out rather than NaN (max_relaxation_gap, max_ac_mismatch when no model
    dispatched the network, mop "agent"), so that equal steps give equal infos."""
    info = {k: v for k, v in outcome.summary().items() if not (isinstance(v, float) and np.isnan(v))}
    info.update(prosumer_costs=outcome.prosumer_costs, exchange_power=outcome.exchange_power,
                grid_power=outcome.grid_power, mop_p=outcome.mop_p, mop_q=outcome.mop_q,
                voltage_min=float(np.min(outcome.voltages_ac)), voltage_max=float(np.max(outcome.voltages_ac)),
                hourly_objective=outcome.hourly_objective)
    return info


class StackelbergMOPEnv(gym.Env):
    """The DNO posts 24 hourly clearing prices for a day; the module docstring is the specification.

    case: a case name or `Case` (default "ieee33-mop"). split: the days reset draws from ("train",
    "val", "test" or "reference"); days: an explicit list of `Day` instead. mop: "opf" (the DNO's SOCP
    dispatches the MOP), "agent" (the action also sets the MOP; the network is scored by the AC
    power flow, no optimiser) or "off". voltage_limits: for the dispatch ("hard", "soft", "none";
    default hard, soft with mop "off"). reward_scale: ¥ per unit of reward (default 1,000).
    reward_baseline: "tariff" (default) or None. violation_penalty: ¥ per bus-hour outside the voltage limits (AC check), added to F in
    the reward only. failure_reward: the reward of a failed solve. hv_prices: "day" (the day's HV
    tariff) or "sampled" (each reset draws the HV buy price around it, Wang et al.'s (2024) uncertainty).
    price_per_prosumer: one price row per prosumer (action N·24 prices, each row mapped and projected
    like the single row). vector_kwargs: ignored here; the registered value tells ``gym.make_vec``
    how to vectorise (`common.VECTOR_KWARGS`). p2p: False, True (`market.p2p.p2p_market(case)`: the case's own platform if any, else 0.2 MW between every pair)
    or a `P2PMarket`: the prosumers share energy peer to peer before trading with the DNO; the
    sharing market's exchange and costs are scored (Song et al. 2024). Trades only pay when prices differ
    between prosumers, so p2p goes with price_per_prosumer=True. reward_gradient: also put the
    reward's exact gradient with respect to the action in info (module docstring).
    """

    metadata: ClassVar[dict] = {"render_modes": RENDER_MODES, "render_fps": 1}

    def __init__(self, case: str | Case = "ieee33-mop", split: str = "train", days: list[Day] | None = None,
                 mop: str = "opf", voltage_limits: str | None = None, reward_scale: float = 1e3,
                 reward_baseline: str | None = "tariff", violation_penalty: float = 0.0,
                 failure_reward: float = -10.0, hv_prices: str = "day", price_per_prosumer: bool = False,
                 p2p=False, reward_gradient: bool = False, render_mode: str | None = None,
                 vector_kwargs: dict | None = None, **unknown):
        refuse_unknown(type(self), unknown)
        _validate.choice("mop", mop, ENV_MOP_MODES)
        _validate.choice("reward_baseline", reward_baseline, REWARD_BASELINES)
        _validate.choice("render_mode", render_mode, RENDER_MODES + [None])
        reward_scale, violation_penalty, failure_reward = reward_options(reward_scale, violation_penalty,
                                                                         failure_reward)
        _validate.flag("price_per_prosumer", price_per_prosumer)
        self.case = as_case(case)
        check_mop_mode(self.case, mop)
        self.mop = mop
        self.price_rows = len(self.case.prosumers) if price_per_prosumer else 1
        if not isinstance(p2p, bool | P2PMarket):
            raise ValueError(f"p2p: must be False, True or a market.p2p.P2PMarket, got {p2p!r}")  # noqa: TRY004
        self.p2p = p2p_market(self.case) if p2p is True else (p2p or None)
        self.voltage_limits = default_voltage_limits(mop, voltage_limits)
        _validate.choice("voltage_limits", self.voltage_limits, VOLTAGE_MODES)
        self.reward_gradient = _validate.flag("reward_gradient", reward_gradient)
        if reward_gradient:
            if self.p2p is not None:
                raise ValueError("reward_gradient: not defined with p2p (the prosumers then answer through the "
                                 "sharing market, whose response the gradient does not differentiate)")
            check_gradient_options(mop, self.voltage_limits, None)
        self.reward_scale, self.violation_penalty, self.failure_reward = reward_scale, violation_penalty, failure_reward
        self.render_mode = render_mode
        self.pool = DayPool(self.case, split, days, hv_prices)
        self.reward_baseline = reward_baseline
        self.tariff = TariffScore(self.case, mop, self.voltage_limits)
        # the yardstick (J*, regret) only where the game is the one the optimum was solved for
        comparable = mop == "opf" and self.voltage_limits == "hard" and self.p2p is None and not price_per_prosumer
        self.yardstick = Yardstick(self.case, tariff=self.tariff) if comparable else None  # J_tariff solved once

        self.observation_layout = day_layout(self.case)
        size = max(s.stop for s in self.observation_layout.values())
        self.observation_space = observation_box(size)
        self.n_prices = self.price_rows * HOURS
        n_action = self.n_prices + (mop_action_size(self.case) if mop == "agent" else 0)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_action,), dtype=np.float32)
        self.day: Day | None = None
        self.outcome: Outcome | None = None
        self.prices: np.ndarray | None = None
        self._window = None

    # --- Gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=check_seed(seed))
        self.day = self.pool.draw(self.np_random, options)
        self.outcome, self.prices, self.done = None, None, False
        self._obs = np.clip(day_features(self.case, self.day), -OBS_BOUND, OBS_BOUND)
        return self._obs.copy(), {"day": self.day.name, "split": self.day.split}

    def step(self, action):
        if self.day is None or self.done:
            raise RuntimeError("step: call reset() first" + (" (the day is over after its one step)" if self.done else ""))
        a = check_action(action, self.action_space)
        prices, raw = action_to_prices(self.case, self.day, a[:self.n_prices].reshape(self.price_rows, HOURS))
        if self.price_rows == 1:
            prices, raw = prices[0], raw[0]
        mop = self.mop
        if mop == "agent":
            mop = action_to_mop_setpoints(self.case, a[self.n_prices:].reshape(2, len(self.case.mop), HOURS))
        response = None if self.p2p is None else p2p_response(self.case, self.day, prices, self.p2p)
        if response is not None and not response.ok:
            outcome = None
        else:
            outcome = evaluate(self.case, self.day, prices, mop=mop, voltage_limits=self.voltage_limits,
                               response=response, gradient=self.reward_gradient)
        self.done = True
        baseline = float(self.tariff(self.day)) if self.reward_baseline == "tariff" else 0.0
        if outcome is None:  # the sharing market itself failed: a reported status, not an exception
            self.outcome, self.prices = None, prices
            info = {"day": self.day.name, "prices": prices, "raw_prices": raw, "reward_baseline": baseline,
                    "status": f"p2p: {response.status}",
                    **yardstick_info(self.yardstick, self.tariff, self.day, float("nan"))}
            return self._obs.copy(), float(self.failure_reward), True, False, info
        self.outcome, self.prices = outcome, prices
        solved = outcome.status.startswith("optimal")
        info = {"day": self.day.name, "prices": prices, "raw_prices": raw, "reward_baseline": baseline,
                **outcome_info(outcome),
                **yardstick_info(self.yardstick, self.tariff, self.day, outcome.dno_objective if solved else np.nan)}
        if not solved or not np.isfinite(baseline):  # the day (or its tariff) did not solve: a status
            reward = self.failure_reward
        else:
            violating = outcome.violation_rate * (self.case.buses.size - 1) * HOURS
            reward = -(outcome.dno_objective - baseline + self.violation_penalty * violating) / self.reward_scale
        if self.reward_gradient:
            info["reward_gradient"] = self._reward_gradient(a, outcome if solved else None)
            info["gradient_kinks"] = outcome.gradient_kinks
        return self._obs.copy(), float(reward), True, False, info

    def _reward_gradient(self, action: np.ndarray, outcome: Outcome | None) -> np.ndarray:
        """d reward / d action (the action's shape, float32): −(dJ/dλ · dλ/da) / reward_scale through the
        price map and its projection (`market.action_jacobian`); NaN when the day did not solve. The
        violation penalty counts bus-hours, a step function of the prices: its derivative is zero."""
        out = np.full(self.action_space.shape, np.nan, dtype=np.float32)
        if outcome is None:
            return out
        rows = action[:self.n_prices].reshape(self.price_rows, HOURS)
        slope = np.atleast_2d(outcome.price_gradient)
        grad = [slope[r] @ action_jacobian(self.case, self.day, rows[r]) for r in range(self.price_rows)]
        out[:self.n_prices] = -np.concatenate(grad) / self.reward_scale
        return out

    def render(self):
        return render_day(self, self.outcome, self.prices, f"{self.case.name}, {self.day.name if self.day else ''}")

    def close(self):
        if self._window is not None:
            import matplotlib.pyplot as plt

            plt.close(self._window)
            self._window = None
