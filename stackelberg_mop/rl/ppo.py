"""PPO on StackelbergMOP-v0, the day-ahead pricing game.

    python -m stackelberg_mop.rl.ppo --total-timesteps 20000
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import PPO

from .common import RunConfig, parse_config, train


@dataclass
class Config(RunConfig):
    """PPO on the day-ahead game (one step per day; reward = improvement over the tariff / 10,000 ¥)."""

    name: str = "ppo"
    algo: str = "ppo"
    n_steps: int = 256                  # steps per env between PPO updates
    n_epochs: int = 10                  # PPO epochs per update
    gamma: float = 0.99                 # irrelevant for one-step episodes
    gae_lambda: float = 0.95            # GAE's λ (irrelevant for one-step episodes)
    ent_coef: float = 0.0               # entropy bonus


def run(config_cls, argv=None):
    """Parse `config_cls`'s flags and train PPO with them (also the hourly game's script)."""
    c = parse_config(config_cls, argv)
    path = train(c, PPO, {"learning_rate": c.learning_rate, "n_steps": c.n_steps, "batch_size": c.batch_size,
                          "n_epochs": c.n_epochs, "gamma": c.gamma, "gae_lambda": c.gae_lambda,
                          "ent_coef": c.ent_coef})
    print(f"saved to {path}")
    return path


def main(argv=None):
    return run(Config, argv)


if __name__ == "__main__":
    main()
