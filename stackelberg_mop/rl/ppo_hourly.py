"""PPO on StackelbergMOPHourly-v1, the market hour by hour (24 steps per day).

    python -m stackelberg_mop.rl.ppo_hourly --total-timesteps 240000
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import arg, script_main
from .ppo import Config as PPOConfig
from .ppo import run


@dataclass
class Config(PPOConfig):
    """PPO on the hourly game (reward = ¥ gained over the tariff's hour / 1,000)."""

    name: str = arg("ppo-hourly", "run folder name under --out")
    env_id: str = arg("StackelbergMOPHourly-v1", "the Gymnasium ID trained on")
    total_timesteps: int = arg(240_000, "environment steps (hours) to train")
    eval_every: int = arg(12_000, "environment steps between validation runs")
    checkpoint_every: int = arg(24_000, "environment steps between resumable checkpoints")
    batch_size: int = arg(96, "minibatch size")
    n_steps: int = arg(480, "steps per env between PPO updates (20 days)")
    gamma: float = arg(1.0, "discount factor (the day's gain is the undiscounted sum of its hours)")


def main(argv=None):
    return run(Config, argv)


if __name__ == "__main__":
    script_main(main)
