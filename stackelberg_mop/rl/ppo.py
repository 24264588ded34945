"""PPO on StackelbergMOP-v1, the day-ahead pricing game.

    python -m stackelberg_mop.rl.ppo --total-timesteps 60000
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import PPO

from .common import train
from .config import RunConfig, arg, parse_config, script_main


@dataclass
class Config(RunConfig):
    """PPO on the day-ahead game (one step per day; reward = ¥ gained over the tariff / 1,000)."""

    name: str = arg("ppo", "run folder name under --out")
    algo: str = arg("ppo", "the SB3 algorithm (fixed per script)")
    n_steps: int = arg(256, "steps per env between PPO updates")
    n_epochs: int = arg(10, "PPO epochs per update")
    gamma: float = arg(0.99, "discount factor (irrelevant for one-step episodes)")
    gae_lambda: float = arg(0.95, "GAE's λ (irrelevant for one-step episodes)")
    ent_coef: float = arg(0.0, "entropy bonus")
    log_std_init: float = arg(0.0, "initial log standard deviation of the Gaussian policy")


def run(config_cls, argv=None):
    """Parse `config_cls`'s flags and train PPO with them (also the hourly game's script)."""
    c = parse_config(config_cls, argv)
    path = train(c, PPO, {"learning_rate": c.learning_rate, "n_steps": c.n_steps, "batch_size": c.batch_size,
                          "n_epochs": c.n_epochs, "gamma": c.gamma, "gae_lambda": c.gae_lambda,
                          "ent_coef": c.ent_coef, "policy_kwargs": {"log_std_init": c.log_std_init}})
    print(f"saved to {path}")
    return path


def main(argv=None):
    return run(Config, argv)


if __name__ == "__main__":
    script_main(main)
