"""TD3 on StackelbergMOP-v0, the day-ahead pricing game (same hyper-parameters as `rl.sac`).

    python -m stackelberg_mop.rl.td3 --total-timesteps 20000
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from stable_baselines3 import TD3
from stable_baselines3.common.noise import NormalActionNoise

from .sac import Config as SACConfig
from .sac import run


@dataclass
class Config(SACConfig):
    """TD3 on the day-ahead game (one step per day; reward = improvement over the tariff / 10,000 ¥)."""

    name: str = "td3"
    algo: str = "td3"
    action_noise: float = 0.2           # std of the Gaussian exploration noise on [-1, 1] actions


def exploration(config: Config, venv) -> dict:
    """TD3's policy is deterministic: without noise it explores only during `learning_starts`."""
    n = venv.action_space.shape[0]
    return {"action_noise": NormalActionNoise(np.zeros(n), np.full(n, config.action_noise))}


def main(argv=None):
    return run(Config, TD3, argv, exploration)


if __name__ == "__main__":
    main()
