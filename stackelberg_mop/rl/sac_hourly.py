"""SAC on StackelbergMOPHourly-v1, the market hour by hour (24 steps per day).

    python -m stackelberg_mop.rl.sac_hourly --total-timesteps 48000
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import SAC

from .config import arg, script_main
from .sac import Config as SACConfig
from .sac import run


@dataclass
class Config(SACConfig):
    """SAC on the hourly game (reward = ¥ gained over the tariff's hour / 1,000)."""

    name: str = arg("sac-hourly", "run folder name under --out")
    env_id: str = arg("StackelbergMOPHourly-v1", "the Gymnasium ID trained on")
    total_timesteps: int = arg(48_000, "environment steps (hours) to train")
    eval_every: int = arg(4_800, "environment steps between validation runs")
    checkpoint_every: int = arg(9_600, "environment steps between resumable checkpoints")
    gamma: float = arg(0.99, "discount factor (hours carry battery energy and shifted load forward)")


def main(argv=None):
    return run(Config, SAC, argv)


if __name__ == "__main__":
    script_main(main)
