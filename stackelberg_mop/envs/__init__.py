"""Gymnasium environments of the market, registered on `import stackelberg_mop`:

- ``StackelbergMOP-v0``: the day-ahead game, one step per day (`day_ahead.StackelbergMOPEnv`);
- ``StackelbergMOPHourly-v0``: the same market hour by hour, 24 steps (`hourly.StackelbergMOPHourlyEnv`).
"""

import gymnasium as gym

from .day_ahead import StackelbergMOPEnv
from .hourly import StackelbergMOPHourlyEnv, expected_prices
from .observation import day_features, day_layout

ENV_IDS = {"StackelbergMOP-v0": ("stackelberg_mop.envs.day_ahead:StackelbergMOPEnv", None),
           "StackelbergMOPHourly-v0": ("stackelberg_mop.envs.hourly:StackelbergMOPHourlyEnv", 24)}


def register_envs() -> None:
    """Register both IDs with Gymnasium (idempotent). The day-ahead game ends after its one step by
    itself (terminated), so it gets no time limit."""
    for env_id, (entry_point, steps) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=steps)


register_envs()

__all__ = ["ENV_IDS", "StackelbergMOPEnv", "StackelbergMOPHourlyEnv", "day_features", "day_layout",
           "expected_prices", "register_envs"]
