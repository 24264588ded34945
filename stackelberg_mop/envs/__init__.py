"""Gymnasium environments of the market, registered on `import stackelberg_mop`:

- ``StackelbergMOP-v0``: the day-ahead game, one step per day (`day_ahead.StackelbergMOPEnv`);
- ``StackelbergMOPHourly-v0``: the same market hour by hour, 24 steps (`hourly.StackelbergMOPHourlyEnv`).

``gym.make_vec(ID, num_envs=n)`` gives a `SyncVectorEnv` that resets a finished episode within the
same step (``AutoresetMode.SAME_STEP``): under Gymnasium's default (next-step) autoreset every other
step of the one-step day-ahead game would be a dummy step (reward 0, no outcome). Other modes
(``vectorization_mode="async"``, ``vector_kwargs``) are Gymnasium's own, with its defaults.
"""

from functools import partial

import gymnasium as gym
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from .day_ahead import StackelbergMOPEnv
from .hourly import StackelbergMOPHourlyEnv, expected_prices
from .observation import day_features, day_layout

ENV_IDS = {"StackelbergMOP-v0": ("stackelberg_mop.envs.day_ahead:StackelbergMOPEnv", None),
           "StackelbergMOPHourly-v0": ("stackelberg_mop.envs.hourly:StackelbergMOPHourlyEnv", 24)}


def make_vector(env_id: str, num_envs: int = 1, **kwargs) -> SyncVectorEnv:
    """`num_envs` copies of `env_id` (keyword arguments go to each) with same-step autoreset: the
    vector entry point of both IDs, so that ``gym.make_vec`` is right by default."""
    from .. import checks

    checks.integer("num_envs", num_envs, lo=1)
    return SyncVectorEnv([partial(gym.make, env_id, **kwargs) for _ in range(num_envs)],
                         autoreset_mode=AutoresetMode.SAME_STEP)


def register_envs() -> None:
    """Register both IDs with Gymnasium (idempotent). The day-ahead game ends after its one step by
    itself (terminated), so it gets no time limit."""
    for env_id, (entry_point, steps) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=steps,
                         vector_entry_point=partial(make_vector, env_id))


register_envs()

__all__ = ["ENV_IDS", "StackelbergMOPEnv", "StackelbergMOPHourlyEnv", "day_features", "day_layout",
           "expected_prices", "make_vector", "register_envs"]
