"""SAC on StackelbergMOP-v0, the day-ahead pricing game.

    python -m stackelberg_mop.rl.sac --total-timesteps 20000
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3 import SAC

from .common import parse_config, train


@dataclass
class Config:
    """SAC on the day-ahead game (one step per day; reward = improvement over the tariff / 10,000 ¥)."""

    name: str = "sac"
    algo: str = "sac"
    env_id: str = "StackelbergMOP-v0"
    mop: str = "opf"
    reward_baseline: str = "tariff"
    seed: int = 0
    total_timesteps: int = 20_000
    n_envs: int = 2
    subprocess: bool = False
    normalize_obs: bool = True
    eval_every: int = 2_000
    eval_days: int = 8
    checkpoint_every: int = 5_000
    progress_bar: bool = True
    out: str = "results/train"
    learning_rate: float = 3e-4
    buffer_size: int = 100_000
    learning_starts: int = 500
    batch_size: int = 256
    train_freq: int = 1
    gradient_steps: int = 1
    gamma: float = 0.0                  # one-step episodes: no bootstrapping
    init_from: str = ""                 # a run folder or model .zip to continue (fine-tuning)


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
    main()
