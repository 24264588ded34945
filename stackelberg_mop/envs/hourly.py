"""`StackelbergMOPHourly-v1`: the same market, hour by hour (24 steps per day).

At hour t the DNO posts λ_t (and, with mop "agent", the MOP set-points of hour t). The prosumers then
re-plan the rest of the day (`market.replan`): what they did in hours < t is fixed, so their battery
energy and remaining shift budget carry over; for hours > t they expect the *price expectation*:
by default the day's HV buy tariff mapped affinely from its own range onto [min_t lo_t, max_t hi_t],
clipped into each hour's bounds (the shape they know, scaled into the prices the DNO may post). They carry out hour t of that plan and the DNO
dispatches it. Hours are separable for the network given the exchange power, so hour t is scored
alone (`evaluate_hour`: a one-hour dispatch, 1/24 of the day's solver work), equal to its share of
`evaluate` on the day's plan (`Outcome.hourly_objective[t]`) to solver tolerance; the rewards of a
day sum to (J_tariff − F(realised day)) / reward_scale (see Reward), and the last step's info carries
the day's full score.

Action: Box [-1, 1]^1 (or 1 + 2K with mop "agent": [a_λ, a_P(K), a_Q(K)]). λ_t = lo_t + (a + 1)/2 ·
  (hi_t − lo_t) with the day's hourly bounds (`market.price_bounds`), then capped at
  24·cap − Σ_{τ<t} λ_τ − Σ_{τ>t} lo_τ so that the daily-mean cap can still be met with the floor
  prices in the remaining hours (info["prices"] are the posted ones).
Observation: the day's features (`observation.day_features`) then
  hour: sin, cos of 2π t/24 and t/23; battery_energy: E_{t−1}/capacity per battery;
  shift_budget: −Σ_{τ<t} P^tr_τ / nominal load per prosumer (what must still be shifted back);
  posted_prices: 24 values, λ_τ/λ_max for τ < t and 0 after. Layout: `env.unwrapped.observation_layout`.
Reward: (J_tariff,t − hour's share of F − violation_penalty · violating bus-hours of hour t) /
  reward_scale, with J_tariff,t hour t's share of J_tariff (the day-ahead score of the tariff,
  `yardstick.TariffScore.hourly`), so a day's rewards sum to (J_tariff − F(realised day)) /
  reward_scale, the day-ahead game's reward (default scale 1,000 ¥); reward_baseline=None drops
  J_tariff,t (v0). A failed solve ends the episode with `failure_reward`.
Starting state: as the day-ahead game (a day of the split, or options["day"]); hour 0.
Episode end: terminated after 24 steps (or a failed solve); a step after that raises RuntimeError.
  ``gym.make_vec`` (sync and async) resets within the step that ends the day.
Info: each step day, hour, price, raw_price, prices, status, hour_objective, hour_violations,
  exchange_power; the last step also the realised day's `Outcome` (`outcome_info`), tariff_objective
  and, on every day the optimum table holds (mop "opf", hard limits), optimum_objective J*,
  optimum_bound, regret J − J* and normalised_regret of the day its hours made. The prosumers re-plan on expected
  prices, so a day of this game can score below J* (negative regret): J* is the day-ahead optimum.

Version history
    v1: reward relative to the tariff's hourly share; yardstick keys at the day's end; same-step
        autoreset in both vectorisation modes.
    v0: reward −(hour's share of F) / 1,000 ¥; no yardstick.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np

from .. import _validate
from ..cases import HOURS, Case, as_case
from ..data import Day
from ..market import BestResponse, best_response, price_bounds, replan
from ..options import ENV_MOP_MODES, VOLTAGE_MODES
from ..powerflow import join_windows
from ..powerflow.mop import action_to_mop_setpoints
from ..scoring import Outcome, evaluate, evaluate_hour
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
from .day_ahead import check_action, outcome_info
from .observation import OBS_BOUND, _scales, day_blocks, day_features, layout, observation_box


def expected_prices(case: Case, day: Day) -> np.ndarray:
    """The prosumers' default expectation of future prices (24,) ¥/MWh: the HV buy tariff's shape
    mapped affinely from [min, max] of the day's tariff onto [min_t lo_t, max_t hi_t] and clipped into
    each hour's bounds (a flat tariff maps to the midpoint)."""
    bounds, buy = price_bounds(case, day), day.buy_price
    lo, hi = bounds.lower.min(), bounds.upper.max()
    span = buy.max() - buy.min()
    shape = np.full(HOURS, 0.5) if span <= 0 else (buy - buy.min()) / span
    return np.clip(lo + shape * (hi - lo), bounds.lower, bounds.upper)


class StackelbergMOPHourlyEnv(gym.Env):
    """The DNO posts one clearing price per step for 24 steps; the module docstring is the specification.

    Options as `StackelbergMOPEnv` (case, split, days, mop, voltage_limits, reward_scale,
    reward_baseline, violation_penalty, failure_reward, hv_prices, render_mode, vector_kwargs), plus
    price_expectation: None (the default above) or a callable (case, day) → (24,) ¥/MWh.
    """

    metadata: ClassVar[dict] = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(self, case: str | Case = "ieee33-mop", split: str = "train", days: list[Day] | None = None,
                 mop: str = "opf", voltage_limits: str | None = None, reward_scale: float = 1e3,
                 reward_baseline: str | None = "tariff", violation_penalty: float = 0.0,
                 failure_reward: float = -10.0, price_expectation=None, hv_prices: str = "day",
                 render_mode: str | None = None, vector_kwargs: dict | None = None, **unknown):
        refuse_unknown(type(self), unknown)
        _validate.choice("mop", mop, ENV_MOP_MODES)
        _validate.choice("reward_baseline", reward_baseline, REWARD_BASELINES)
        _validate.choice("render_mode", render_mode, RENDER_MODES + [None])
        reward_scale, violation_penalty, failure_reward = reward_options(reward_scale, violation_penalty,
                                                                         failure_reward)
        if price_expectation is not None and not callable(price_expectation):
            raise ValueError("price_expectation: must be None or a callable (case, day) -> (24,) ¥/MWh")
        self.case = as_case(case)
        check_mop_mode(self.case, mop)
        self.mop = mop
        self.voltage_limits = default_voltage_limits(mop, voltage_limits)
        _validate.choice("voltage_limits", self.voltage_limits, VOLTAGE_MODES)
        self.reward_scale, self.violation_penalty, self.failure_reward = reward_scale, violation_penalty, failure_reward
        self.price_expectation = price_expectation or expected_prices
        self.render_mode = render_mode
        self.pool = DayPool(self.case, split, days, hv_prices)
        self.reward_baseline = reward_baseline
        self.tariff = TariffScore(self.case, mop, self.voltage_limits)
        self.yardstick = (Yardstick(self.case, tariff=self.tariff)  # J_tariff solved once
                          if mop == "opf" and self.voltage_limits == "hard" else None)

        n, e, k = len(self.case.prosumers), len(self.case.batteries), len(self.case.mop)
        blocks = day_blocks(self.case) | {"hour": 3, "battery_energy": e, "shift_budget": n, "posted_prices": HOURS}
        self.observation_layout = layout(blocks)
        size = max(s.stop for s in self.observation_layout.values())
        self.observation_space = observation_box(size)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1 + (2 * k if mop == "agent" else 0),),
                                           dtype=np.float32)
        self.day: Day | None = None
        self.outcome: Outcome | None = None
        self._window = None

    # --- state --------------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        t, case, sc = self.hour, self.case, _scales(self.case)
        b = case.batteries
        energy = b.e_init if t == 0 else self.plan.stored_energy[b.owner, t - 1]
        shifted = self.plan.transfer[:, :t].sum(axis=1)
        posted = np.where(np.arange(HOURS) < t, self.posted, 0.0) / case.price_rules.price_max
        extra = [np.sin(2 * np.pi * t / HOURS), np.cos(2 * np.pi * t / HOURS), t / (HOURS - 1)]
        return np.concatenate([self._day_obs, extra, energy / b.capacity, -shifted / sc["fixed_load"],
                               posted]).clip(-OBS_BOUND, OBS_BOUND).astype(np.float32)

    def _expectation(self) -> np.ndarray:
        """The prosumers' expected prices for the day, checked: 24 finite prices within the day's
        bounds (a callable that fails or returns anything else is named)."""
        try:
            expected = np.asarray(self.price_expectation(self.case, self.day), dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"price_expectation: must be a callable (case, day) -> 24 prices in ¥/MWh; "
                             f"calling it failed: {err}") from None
        if expected.shape != (HOURS,) or not np.all(np.isfinite(expected)):
            raise ValueError(f"price_expectation: must return 24 finite prices, got shape {expected.shape}")
        bounds = price_bounds(self.case, self.day)
        outside = np.flatnonzero((expected < bounds.lower - 1e-6) | (expected > bounds.upper + 1e-6))
        if outside.size:
            raise ValueError(f"price_expectation: prices outside the day's bounds at hours {outside.tolist()} "
                             "(the prosumers expect prices the DNO may post)")
        return expected

    # --- Gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=check_seed(seed))
        self.day = self.pool.draw(self.np_random, options)
        self.hour = 0
        self.bounds = price_bounds(self.case, self.day)
        self.expected = self._expectation()
        self.posted = self.expected.copy()  # hours >= t hold the expectation
        self.plan: BestResponse = best_response(self.case, self.day, self.posted)
        k = len(self.case.mop)
        self.setpoints = np.zeros((2, k, HOURS))
        self.outcome = None
        self.hour_dispatch = [None] * HOURS  # each step's one-hour dispatch (None with set-points)
        self._day_obs = day_features(self.case, self.day)
        return self._observation(), {"day": self.day.name, "split": self.day.split, "hour": 0}

    def step(self, action):
        if self.day is None or self.hour >= HOURS:
            raise RuntimeError("step: call reset() first (the day is over after 24 steps)")
        a = check_action(action, self.action_space)
        t, bounds = self.hour, self.bounds
        price = float(bounds.from_action(np.full(HOURS, a[0]))[t])
        room = HOURS * bounds.mean_cap - self.posted[:t].sum() - bounds.lower[t + 1:].sum()
        self.posted[t] = min(price, max(room, bounds.lower[t]))
        self.plan = replan(self.case, self.day, self.posted, self.plan, t)
        mop = self.mop
        if mop == "agent":
            k = len(self.case.mop)
            self.setpoints[:, :, t:t + 1] = action_to_mop_setpoints(self.case, a[1:].reshape(2, k, 1))
            mop = self.setpoints
        hour = evaluate_hour(self.case, self.day, self.posted, t, response=self.plan, mop=mop,
                             voltage_limits=self.voltage_limits)
        self.hour = t + 1
        terminated = self.hour == HOURS
        info = {"day": self.day.name, "hour": t, "price": float(self.posted[t]), "raw_price": float(price),
                "prices": self.posted.copy(), "status": hour.status}
        if not hour.status.startswith("optimal"):
            self.hour = HOURS  # the day ends here
            info.update(hour_objective=float("nan"), **yardstick_info(self.yardstick, self.tariff, self.day, float("nan")))
            return self._observation(), float(self.failure_reward), True, False, info
        info.update(hour_objective=hour.objective, hour_violations=hour.violations,
                    exchange_power=hour.exchange_power)
        self.outcome = None  # the day's full score, made on demand (`day_outcome`) and at the day's end
        self.hour_dispatch[t] = hour.dispatch
        if terminated:
            day = self.day_outcome()
            solved = day.status.startswith("optimal")
            info.update(outcome_info(day), **yardstick_info(self.yardstick, self.tariff, self.day,
                                                            day.dno_objective if solved else float("nan")))
        baseline = float(self.tariff.hourly(self.day)[t]) if self.reward_baseline == "tariff" else 0.0
        if not np.isfinite(baseline):  # the tariff's own day did not solve: no reference to reward against
            return self._observation(), float(self.failure_reward), terminated, False, info
        reward = -(hour.objective - baseline + self.violation_penalty * hour.violations) / self.reward_scale
        return self._observation(), float(reward), terminated, False, info

    def day_outcome(self) -> Outcome | None:
        """`evaluate` of the day as posted so far (hours after the current one at the expectation):
        the whole day's score, which a step scores only hour by hour."""
        if self.day is None:
            return None
        if self.outcome is None:
            mop = self.setpoints if self.mop == "agent" else self.mop
            # at the day's end every hour's dispatch is final: joined, they are the day's (no 24-hour solve)
            done = self.hour == HOURS and self.mop != "agent" and all(d is not None for d in self.hour_dispatch)
            self.outcome = evaluate(self.case, self.day, self.posted, mop=mop, voltage_limits=self.voltage_limits,
                                    response=self.plan, dispatch=join_windows(self.hour_dispatch) if done else None)
        return self.outcome

    def render(self):
        prices = self.posted if self.day is not None else None
        return render_day(self, self.day_outcome() if getattr(self, "hour", 0) else None, prices,
                          f"{self.case.name}, {self.day.name if self.day else ''}, hour {getattr(self, 'hour', 0)}")

    def close(self):
        if self._window is not None:
            import matplotlib.pyplot as plt

            plt.close(self._window)
            self._window = None
