"""TD3 on StackelbergMOP-v0, the day-ahead pricing game (same hyper-parameters as `rl.sac`).

    python -m stackelberg_mop.rl.td3 --total-timesteps 20000
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import TD3

from .sac import Config as SACConfig
from .sac import run


@dataclass
class Config(SACConfig):
    """TD3 on the day-ahead game (one step per day; reward = improvement over the tariff / 10,000 ¥)."""

    name: str = "td3"
    algo: str = "td3"


def main(argv=None):
    return run(Config, TD3, argv)


if __name__ == "__main__":
    main()
