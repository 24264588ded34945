"""PPO on StackelbergMOPHourly-v0, the market hour by hour (24 steps per day).

    python -m stackelberg_mop.rl.ppo_hourly --total-timesteps 24000
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import PPO

from .common import parse_config, train


@dataclass
class Config:
    """PPO on the hourly game (reward = −hour's share of the DNO objective / 1,000 ¥)."""

    name: str = "ppo-hourly"
    algo: str = "ppo"
    env_id: str = "StackelbergMOPHourly-v0"
    mop: str = "opf"
    reward_baseline: str = "none"       # the hourly game has no baseline option
    seed: int = 0
    total_timesteps: int = 24_000
    n_envs: int = 2
    subprocess: bool = False
    normalize_obs: bool = True
    eval_every: int = 4_800
    eval_days: int = 4
    checkpoint_every: int = 12_000
    progress_bar: bool = True
    out: str = "results/train"
    learning_rate: float = 3e-4
    n_steps: int = 480                  # 20 days per env between updates
    batch_size: int = 96
    n_epochs: int = 10
    gamma: float = 1.0                  # the day's cost is the undiscounted sum of its hours
    gae_lambda: float = 0.95
    ent_coef: float = 0.0


def main(argv=None):
    c = parse_config(Config, argv)
    run = train(c, PPO, {"learning_rate": c.learning_rate, "n_steps": c.n_steps, "batch_size": c.batch_size,
                             "n_epochs": c.n_epochs, "gamma": c.gamma, "gae_lambda": c.gae_lambda, "ent_coef": c.ent_coef})
    print(f"saved to {run}")
    return run


if __name__ == "__main__":
    main()
