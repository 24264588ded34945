"""SAC on StackelbergMOP-v1, the day-ahead pricing game.

    python -m stackelberg_mop.rl.sac --total-timesteps 30000
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import SAC

from .common import train
from .config import RunConfig, arg, parse_config, script_main


@dataclass
class Config(RunConfig):
    """SAC on the day-ahead game (one step per day; reward = ¥ gained over the tariff / 1,000)."""

    name: str = arg("sac", "run folder name under --out")
    algo: str = arg("sac", "the SB3 algorithm (fixed per script)")
    batch_size: int = arg(256, "minibatch size")
    gamma: float = arg(0.0, "discount factor (one-step episodes: no bootstrapping)")
    buffer_size: int = arg(100_000, "replay buffer size (transitions)")
    learning_starts: int = arg(500, "steps before learning starts")
    train_freq: int = arg(1, "steps between updates")
    gradient_steps: int = arg(1, "gradient steps per update")
    init_from: str = arg("", "a run folder or model .zip to continue (fine-tuning)")


def run(config_cls, algo_cls, argv=None, env_kwargs_of=None):
    """Parse `config_cls`'s flags and train `algo_cls` (SAC, or TD3 with the same off-policy settings;
    `env_kwargs_of(config, venv)` adds algorithm kwargs that need the environment)."""
    c = parse_config(config_cls, argv)
    path = train(c, algo_cls, {"learning_rate": c.learning_rate, "buffer_size": c.buffer_size,
                               "learning_starts": c.learning_starts, "batch_size": c.batch_size,
                               "train_freq": c.train_freq, "gradient_steps": c.gradient_steps, "gamma": c.gamma},
                 None if env_kwargs_of is None else lambda venv: env_kwargs_of(c, venv))
    print(f"saved to {path}")
    return path


def main(argv=None):
    return run(Config, SAC, argv)


if __name__ == "__main__":
    script_main(main)
