"""TD3 on StackelbergMOP-v1, the day-ahead pricing game (same hyper-parameters as `rl.sac`).

    python -m stackelberg_mop.rl.td3 --total-timesteps 20000
    python -m stackelberg_mop.rl.td3 --init-from benchmarks/agents/bc --critic-warmup 2000 \
        --action-noise 0.05 --learning-rate 1e-4 --name td3-bc     # RL fine-tuning of the cloned actor

Fine-tuning a behaviour-cloned actor (`rl.bc`) needs critics first: the cloned run's critics are
untrained, and an actor that follows an untrained critic's gradient forgets what it was taught within a
few hundred updates. ``--critic-warmup N`` trains only the critics for the first N gradient steps
(the actor's step size is held at zero), on transitions collected around the cloned actor's actions.
On this game even that does not make fine-tuning pay: once the actor moves, the validation regret
rises, because the reward is made of steps a few ¥/MWh wide that a critic
fitted on ~10⁴ transitions smooths away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from stable_baselines3 import TD3
from stable_baselines3.common.noise import NormalActionNoise

from .config import arg, script_main
from .sac import Config as SACConfig
from .sac import run


@dataclass
class Config(SACConfig):
    """TD3 on the day-ahead game (one step per day; reward = ¥ gained over the tariff / 1,000)."""

    name: str = arg("td3", "run folder name under --out")
    algo: str = arg("td3", "the SB3 algorithm (fixed per script)")
    action_noise: float = arg(0.2, "std of the Gaussian exploration noise on [-1, 1] actions")
    critic_warmup: int = arg(0, "gradient steps that train only the critics (fine-tuning a cloned actor)")


class WarmStartTD3(TD3):
    """TD3 whose actor stays fixed for the first `critic_warmup` gradient steps (its Adam step size is
    zero then), so that critics learn the reward around a pre-trained actor before steering it. Saved
    models load as plain TD3."""

    def __init__(self, *args, critic_warmup: int = 0, **kwargs):
        self.critic_warmup = critic_warmup
        super().__init__(*args, **kwargs)

    def _update_learning_rate(self, optimizers) -> None:
        super()._update_learning_rate(optimizers)
        if self._n_updates < self.critic_warmup:
            for group in self.actor.optimizer.param_groups:
                group["lr"] = 0.0


def exploration(config: Config, venv) -> dict:
    """TD3's policy is deterministic: without noise it explores only during `learning_starts`."""
    n = venv.action_space.shape[0]
    return {"action_noise": NormalActionNoise(np.zeros(n), np.full(n, config.action_noise)),
            "critic_warmup": config.critic_warmup}


def main(argv=None):
    return run(Config, WarmStartTD3, argv, exploration)


if __name__ == "__main__":
    script_main(main)
