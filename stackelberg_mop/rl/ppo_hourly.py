"""PPO on StackelbergMOPHourly-v0, the market hour by hour (24 steps per day).

    python -m stackelberg_mop.rl.ppo_hourly --total-timesteps 24000
"""

from __future__ import annotations

from dataclasses import dataclass

from .ppo import Config as PPOConfig
from .ppo import run


@dataclass
class Config(PPOConfig):
    """PPO on the hourly game (reward = −hour's share of the DNO objective / 1,000 ¥)."""

    name: str = "ppo-hourly"
    env_id: str = "StackelbergMOPHourly-v0"
    reward_baseline: str = "none"       # the hourly game has no baseline option
    total_timesteps: int = 24_000
    eval_every: int = 4_800
    eval_days: int = 4
    checkpoint_every: int = 12_000
    batch_size: int = 96
    n_steps: int = 480                  # 20 days per env between updates
    gamma: float = 1.0                  # the day's cost is the undiscounted sum of its hours


def main(argv=None):
    return run(Config, argv)


if __name__ == "__main__":
    main()
