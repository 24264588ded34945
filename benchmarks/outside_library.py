"""An outside RL library trains on the environment: skrl's PPO on ``gym.make_vec(..., "async")``.

    python benchmarks/outside_library.py --timesteps 4096 --seed 0 --eval-days 42

skrl (not stable-baselines3) wraps the package's own vector environment, as `gym.make_vec` builds it
with default settings, and trains PPO with skrl's default configuration. The registered same-step
autoreset means every step is a real day: the script counts the transitions skrl stored with reward
exactly 0.0 and terminated False (what a next-step-autoreset dummy transition would look like;
expected 0). The deterministic policy (the Gaussian's mean) is then scored on validation days by the
package's benchmark, once before training and once after, as aggregate regret (0 = the bi-level
optimum, 1 = the tariff) with its bootstrap 95 % interval.
"""

from __future__ import annotations

import os

os.environ.setdefault("STACKELBERG_MOP_THREADS", "1")  # one solver thread per process (workers inherit it)

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import skrl
import torch
from skrl.agents.torch.ppo import PPO, PPO_CFG
from skrl.envs.wrappers.torch import wrap_env
from skrl.memories.torch import RandomMemory
from skrl.models.torch import DeterministicMixin, GaussianMixin, Model
from skrl.trainers.torch import SequentialTrainer
from skrl.utils import set_seed

from stackelberg_mop.envs import day_features
from stackelberg_mop.envs.observation import OBS_BOUND
from stackelberg_mop.market import action_to_prices
from stackelberg_mop.runner import benchmark  # importing the package registers the environment IDs
from stackelberg_mop.runner import report as results

ENV_ID, NUM_ENVS = "StackelbergMOP-v1", 2


def mlp(n_in: int, n_out: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(n_in, 64), torch.nn.ELU(), torch.nn.Linear(64, 64), torch.nn.ELU(),
                               torch.nn.Linear(64, n_out))


class Policy(GaussianMixin, Model):
    """skrl's Gaussian policy as in its documentation: an MLP for the mean, a state-independent log std."""

    def __init__(self, observation_space, action_space, device=None):
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        GaussianMixin.__init__(self)
        self.net = mlp(self.num_observations, self.num_actions)
        self.log_std_parameter = torch.nn.Parameter(torch.zeros(self.num_actions))

    def compute(self, inputs, role=""):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter}


class Value(DeterministicMixin, Model):
    """skrl's deterministic value model: an MLP to one number."""

    def __init__(self, observation_space, action_space, device=None):
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        DeterministicMixin.__init__(self)
        self.net = mlp(self.num_observations, 1)

    def compute(self, inputs, role=""):
        return self.net(inputs["observations"]), {}


class CountingPPO(PPO):
    """skrl's PPO, counting what it stores: transitions, terminated ones, and dummy-looking ones."""

    transitions = terminated_count = dummy_looking = 0

    def record_transition(self, *, rewards, terminated, **kwargs):
        self.transitions += rewards.numel()
        self.terminated_count += int(terminated.sum())
        self.dummy_looking += int(((rewards == 0.0) & ~terminated).sum())
        super().record_transition(rewards=rewards, terminated=terminated, **kwargs)


def price_policy(agent: PPO, name: str):
    """The agent's deterministic policy as a benchmark policy ``fn(case, day) -> prices``: the day's
    observation as the environment builds it, the Gaussian's mean action (through the agent, so any
    observation preprocessor would apply; none with skrl's defaults), mapped to the day's prices."""

    def fn(case, day):
        obs = np.clip(day_features(case, day), -OBS_BOUND, OBS_BOUND)
        with torch.no_grad():
            _, outputs = agent.act(torch.as_tensor(obs, dtype=torch.float32)[None], None, timestep=0, timesteps=0)
        return action_to_prices(case, day, outputs["mean_actions"][0].numpy())[0]

    # the benchmark names the rows "python:<name>" and fingerprints them by name and source code, not by
    # the weights the function closes over: the untrained and trained policies need different names
    fn.name = name
    return fn


def evaluate(agent: PPO, name: str, args, out: Path) -> dict:
    rows = benchmark.run([price_policy(agent, name)], split="val", limit=args.eval_days, out=out,
                         backend="serial", progress=False)
    table = {r["policy"]: r for r in results.report(rows)}
    return table[f"python:{name}"]


def show(label: str, row: dict) -> None:
    print(f"{label}: aggregate regret {row['aggregate_regret']:.3f} "
          f"[{row['aggregate_ci_low']:.3f}, {row['aggregate_ci_high']:.3f}] "
          f"over {row['days_vs_optimum']} of {row['days']} validation days ({row['failed']} failed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=4096, help="environment transitions (days) to train on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-days", type=int, default=42, help="validation days to score (spread over the split)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_seed(args.seed)  # torch, numpy, random; skrl's wrapper also seeds the first reset with it
    start = time.perf_counter()

    envs = wrap_env(gym.make_vec(ENV_ID, num_envs=NUM_ENVS, vectorization_mode="async"))
    models = {"policy": Policy(envs.observation_space, envs.action_space, envs.device),
              "value": Value(envs.observation_space, envs.action_space, envs.device)}

    with tempfile.TemporaryDirectory() as tmp:
        cfg = PPO_CFG()  # skrl's defaults: 16 rollouts, 8 epochs, 2 mini-batches, lr 1e-3, no preprocessors
        # The one entry set: where skrl writes its TensorBoard logs and checkpoints (default ./runs,
        # which would put files into the repository).
        cfg.experiment.directory = tmp
        # Not a config entry but required: PPO's rollout memory holds exactly `rollouts` steps per env.
        memory = RandomMemory(memory_size=cfg.rollouts, num_envs=envs.num_envs, device=envs.device)
        agent = CountingPPO(models=models, memory=memory, observation_space=envs.observation_space,
                            action_space=envs.action_space, device=envs.device, cfg=cfg)
        # The trainer's `timesteps` (default 100,000) counts vector steps: one step is NUM_ENVS days.
        trainer = SequentialTrainer(env=envs, agents=agent, cfg={"timesteps": args.timesteps // envs.num_envs})

        out = Path(tmp) / "rows.csv"
        t = time.perf_counter()
        untrained = evaluate(agent, "skrl_ppo_untrained", args, out)
        eval_before = time.perf_counter() - t

        t = time.perf_counter()
        trainer.train()
        train_time = time.perf_counter() - t
        envs.close()
        agent.enable_training_mode(False)

        t = time.perf_counter()
        trained = evaluate(agent, "skrl_ppo_trained", args, out)
        eval_after = time.perf_counter() - t

    print(f"\nskrl {skrl.__version__} PPO on gym.make_vec({ENV_ID!r}, num_envs={NUM_ENVS}, vectorization_mode='async')")
    print(f"transitions stored: {agent.transitions} ({agent.terminated_count} terminated); "
          f"reward 0.0 with terminated False (dummy-looking): {agent.dummy_looking}")
    show("untrained", untrained)
    show("trained  ", trained)
    print(f"wall time: training {train_time:.0f} s, evaluation {eval_before:.0f} s before + {eval_after:.0f} s after, "
          f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
