"""Gymnasium environments of the market, registered on `import stackelberg_mop`:

- ``StackelbergMOP-v1``: the day-ahead game, one step per day (`day_ahead.StackelbergMOPEnv`);
- ``StackelbergMOPHourly-v1``: the same market hour by hour, 24 steps (`hourly.StackelbergMOPHourlyEnv`).

Each module's docstring is its environment's specification, with its version history. The ``-v0``
IDs stay registered with their old reward (−F / scale, no tariff baseline) so that earlier results
can be reproduced; Gymnasium warns that a newer version exists.

``gym.make_vec(ID, num_envs=n)``, with ``vectorization_mode`` "sync" (the default) or "async", resets a
finished day within the step that ends it (``AutoresetMode.SAME_STEP``, registered as the IDs'
``vector_kwargs``): under Gymnasium's default next-step autoreset every other step of the one-step
day-ahead game would be a dummy transition (reward 0, action ignored), which libraries that assume
same-step semantics store as real data. The registered ``vector_kwargs`` replace ones passed to
``make_vec``; for another autoreset mode build ``gym.vector.SyncVectorEnv`` / ``AsyncVectorEnv``
from ``gym.make`` yourself.
"""

import gymnasium as gym

from .common import VECTOR_KWARGS
from .day_ahead import StackelbergMOPEnv
from .hourly import StackelbergMOPHourlyEnv, expected_prices
from .observation import day_features, day_layout

DAY_AHEAD = "stackelberg_mop.envs.day_ahead:StackelbergMOPEnv"
HOURLY = "stackelberg_mop.envs.hourly:StackelbergMOPHourlyEnv"
#: id → (entry point, episode steps, registered keyword arguments)
ENV_IDS = {
    "StackelbergMOP-v1": (DAY_AHEAD, None, {}),
    "StackelbergMOPHourly-v1": (HOURLY, 24, {}),
    "StackelbergMOP-v0": (DAY_AHEAD, None, {"reward_baseline": None, "reward_scale": 1e4}),
    "StackelbergMOPHourly-v0": (HOURLY, 24, {"reward_baseline": None, "reward_scale": 1e3}),
}
#: the current versions: what the package's scripts, benchmark and docs use
DAY_AHEAD_ID, HOURLY_ID = "StackelbergMOP-v1", "StackelbergMOPHourly-v1"


def register_envs() -> None:
    """Register the IDs with Gymnasium (idempotent). The day-ahead game ends after its one step by
    itself (terminated), so it gets no time limit."""
    for env_id, (entry_point, steps, kwargs) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=steps,
                         kwargs={**kwargs, "vector_kwargs": dict(VECTOR_KWARGS)})


register_envs()

__all__ = ["DAY_AHEAD_ID", "ENV_IDS", "HOURLY_ID", "StackelbergMOPEnv", "StackelbergMOPHourlyEnv", "day_features",
           "day_layout", "expected_prices", "register_envs"]
