"""PPO on StackelbergMOP-v0, the day-ahead pricing game.

    python -m stackelberg_mop.rl.ppo --total-timesteps 20000 --mop opf --out results/train
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import PPO

from .common import parse_config, train


@dataclass
class Config:
    """PPO on the day-ahead game (one step per day; reward = improvement over the tariff / 10,000 ¥)."""

    name: str = "ppo"
    algo: str = "ppo"
    env_id: str = "StackelbergMOP-v0"
    mop: str = "opf"                    # "opf" | "agent" | "off"
    reward_baseline: str = "tariff"     # "tariff" or "none"
    seed: int = 0
    total_timesteps: int = 20_000
    n_envs: int = 2
    subprocess: bool = False            # SubprocVecEnv (one process per env) instead of DummyVecEnv
    normalize_obs: bool = True
    eval_every: int = 2_000             # timesteps between validation runs
    eval_days: int = 8                  # validation days per run (evenly spaced, fixed)
    checkpoint_every: int = 5_000
    progress_bar: bool = True
    out: str = "results/train"
    learning_rate: float = 3e-4
    n_steps: int = 256                  # per env, between updates
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.99                 # irrelevant for one-step episodes
    ent_coef: float = 0.0


def main(argv=None):
    c = parse_config(Config, argv)
    run = train(c, PPO, {"learning_rate": c.learning_rate, "n_steps": c.n_steps, "batch_size": c.batch_size,
                             "n_epochs": c.n_epochs, "gamma": c.gamma, "ent_coef": c.ent_coef})
    print(f"saved to {run}")
    return run


if __name__ == "__main__":
    main()
