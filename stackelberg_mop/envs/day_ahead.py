"""`StackelbergMOP-v0`: the day-ahead Stackelberg game, one decision per episode.

reset → a day (its forecasts are the observation) → step(prices [, MOP set-points]) → the prosumers'
exact best response, the DNO's dispatch and the AC check (`evaluate`) → reward, terminated.

Action: float32 Box [-1, 1]^24 (mop "opf" or "off"), or [-1, 1]^(24 + 2·K·24) (mop "agent"); with
  price_per_prosumer=True the first block is N·24 (one row of 24 per prosumer):
  a[:24] → prices lo_t + (a + 1)/2 · (hi_t − lo_t) with the day's hourly bounds (`market.price_bounds`;
  by default the HV sell and buy prices), then the Euclidean projection onto the bounds and the mean
  cap (`PriceBounds.project`); a[24:] reshaped (2, K, 24) = [P; Q] → MOP set-points by
  `powerflow.mop.action_to_mop_setpoints` (the last terminal balances the DC bus). Entries outside
  [-1, 1] are clipped; NaN/inf raise ValueError.
Reward: −(F − baseline + violation_penalty · violating bus-hours) / reward_scale, with F the DNO
  objective (¥/day) and baseline 0 (default) or J_tariff of the day (reward_baseline="tariff": the
  reward is then the improvement over passing the HV tariff through, the part of F that prices move).
  A failed solve ends the episode with reward `failure_reward` and the status in info.
Info: the day's `Outcome` scalars and arrays (`outcome_info`), the posted and raw prices, and, when the
  day is in the shipped optimum table (`data.optimum`) and the game is the one it was solved for,
  `optimum_objective` J* and `regret` F − J* (¥).
Observation: `observation.day_features`, layout in `env.unwrapped.observation_layout`.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np

from .. import checks
from ..cases import HOURS, Case
from ..data import Day
from ..data.optimum_table import OptimumTable
from ..evaluate import Outcome, evaluate
from ..market import action_to_prices
from ..market.p2p import P2PMarket, p2p_market, p2p_response
from ..powerflow.mop import action_to_mop_setpoints, mop_action_size
from .common import (
    MOP_MODES,
    RENDER_MODES,
    DayPool,
    TariffBaseline,
    default_voltage_limits,
    render_day,
    reward_options,
)
from .observation import OBS_BOUND, day_features, day_layout, observation_box

REWARD_BASELINES = (None, "tariff")


def check_action(action, space: gym.spaces.Box) -> np.ndarray:
    """The action as float array of the space's shape; ValueError naming the problem."""
    a = checks.array("action", action)
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
    """The DNO posts 24 hourly clearing prices for a day; see the module docstring for spaces and reward.

    case: a case name or `Case` (default "ieee33-mop"). split: the days reset draws from ("train",
    "val", "test" or "reference"); days: an explicit list of `Day` instead. mop: "opf" (the DNO's SOCP
    dispatches the MOP), "agent" (the action also sets the MOP; the network is scored by the AC
    power flow, no optimiser) or "off". voltage_limits: for the dispatch ("hard", "soft", "none";
    default hard, soft with mop "off"). reward_scale: ¥ per unit of reward. reward_baseline: None or
    "tariff". violation_penalty: ¥ per bus-hour outside the voltage limits (AC check), added to F in
    the reward only. failure_reward: the reward of a failed solve. hv_prices: "day" (the day's HV
    tariff) or "sampled" (each reset draws the HV buy price around it, seeds/001's uncertainty).
    price_per_prosumer: one price row per prosumer (action N·24 prices, each row mapped and projected
    like the single row). p2p: False, True (`market.p2p.p2p_market(case)`: the case's own platform if any, else 0.2 MW between every pair)
    or a `P2PMarket`: the prosumers share energy peer to peer before trading with the DNO; the
    sharing market's exchange and costs are scored (seeds/003). Trades only pay when prices differ
    between prosumers, so p2p goes with price_per_prosumer=True.
    """

    metadata: ClassVar[dict] = {"render_modes": RENDER_MODES, "render_fps": 1}

    def __init__(self, case: str | Case = "ieee33-mop", split: str = "train", days: list[Day] | None = None,
                 mop: str = "opf", voltage_limits: str | None = None, reward_scale: float = 1e4,
                 reward_baseline: str | None = None, violation_penalty: float = 0.0,
                 failure_reward: float = -10.0, hv_prices: str = "day", price_per_prosumer: bool = False,
                 p2p=False, render_mode: str | None = None):
        checks.choice("mop", mop, MOP_MODES)
        checks.choice("reward_baseline", reward_baseline, REWARD_BASELINES)
        checks.choice("render_mode", render_mode, RENDER_MODES + [None])
        reward_scale, violation_penalty, failure_reward = reward_options(reward_scale, violation_penalty,
                                                                         failure_reward)
        checks.flag("price_per_prosumer", price_per_prosumer)
        self.case = checks.case_arg(case)
        self.mop = mop
        self.price_rows = len(self.case.prosumers) if price_per_prosumer else 1
        self.p2p = p2p_market(self.case) if p2p is True else (p2p or None)
        if self.p2p is not None and not isinstance(self.p2p, P2PMarket):
            raise ValueError(f"p2p: must be False, True or a market.p2p.P2PMarket, got {p2p!r}")
        self.voltage_limits = default_voltage_limits(mop, voltage_limits)
        checks.choice("voltage_limits", self.voltage_limits, ("hard", "soft", "none"))
        self.reward_scale, self.violation_penalty, self.failure_reward = reward_scale, violation_penalty, failure_reward
        self.render_mode = render_mode
        self.pool = DayPool(self.case, split, days, hv_prices)
        self.baseline = TariffBaseline(self.case, mop, self.voltage_limits) if reward_baseline == "tariff" else None
        # the shipped bi-level optimum J* (data.optimum), for info["optimum_objective"] and info["regret"]:
        # only where the game is the one it was solved for (one price, MOP dispatchable, hard limits)
        comparable = mop != "off" and self.voltage_limits == "hard" and self.p2p is None and not price_per_prosumer
        self._optima = OptimumTable(self.case) if comparable else None

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
        super().reset(seed=seed)
        self.day = self.pool.draw(self.np_random, options)
        self.outcome, self.prices = None, None
        self._obs = np.clip(day_features(self.case, self.day), -OBS_BOUND, OBS_BOUND)
        return self._obs.copy(), {"day": self.day.name, "split": self.day.split}

    def step(self, action):
        if self.day is None:
            raise RuntimeError("step: call reset() first")
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
                               response=response)
        if outcome is None:  # the sharing market itself failed: a reported status, not an exception
            self.outcome, self.prices = None, prices
            info = {"day": self.day.name, "prices": prices, "raw_prices": raw, "status": f"p2p: {response.status}"}
            return self._obs.copy(), float(self.failure_reward), True, False, info
        self.outcome, self.prices = outcome, prices
        baseline = self.baseline(self.day) if self.baseline is not None else 0.0
        info = {"day": self.day.name, "prices": prices, "raw_prices": raw, "reward_baseline": baseline,
                **outcome_info(outcome)}
        best = self._optima.find(self.day) if self._optima is not None else None
        if best is not None and outcome.status.startswith("optimal"):
            info.update(optimum_objective=best.objective, regret=outcome.dno_objective - best.objective)
        if not outcome.status.startswith("optimal"):
            reward = self.failure_reward
        else:
            violating = outcome.violation_rate * (self.case.buses.size - 1) * HOURS
            reward = -(outcome.dno_objective - baseline + self.violation_penalty * violating) / self.reward_scale
        return self._obs.copy(), float(reward), True, False, info

    def render(self):
        return render_day(self, self.outcome, self.prices, f"{self.case.name}, {self.day.name if self.day else ''}")

    def close(self):
        if self._window is not None:
            import matplotlib.pyplot as plt

            plt.close(self._window)
            self._window = None
