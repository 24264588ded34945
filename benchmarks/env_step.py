"""Environment speed: median steps per second of each ID and `mop` mode, single and vectorised.

    python benchmarks/env_step.py [--steps 40] [--envs 2]

One step of StackelbergMOP-v1 is a whole day (reset + step: 5 exact best responses, the 24-hour
dispatch, the AC sweep). The naive reference does the same with a cvxpy model of the followers and of
the dispatch rebuilt for every step (what a straightforward implementation would do). Vectorised rows
run `--envs` copies in gymnasium's SyncVectorEnv (one process) and AsyncVectorEnv (one process each)
and count env-steps per second over all copies. "episodes" counts steps per second over whole days
(reset included; the hourly game's last step also scores the whole day): the training throughput.
"first s" is the first reset + step in a new process (imports excluded): what building the models costs.
STACKELBERG_MOP_THREADS=1 measures the dispatch on one thread (the default is two on two cores).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import gymnasium as gym
import numpy as np
from _timing import median_seconds

import stackelberg_mop as sm
from stackelberg_mop.market.reference import best_response_cvxpy
from stackelberg_mop.powerflow import DispatchModel, dispatch_threads
from stackelberg_mop.powerflow.ac import sweep_power_flow

IDS = ["StackelbergMOP-v1", "StackelbergMOPHourly-v1"]
MODES = ["opf", "agent", "off"]


def single_step_seconds(env_id: str, mop: str, steps: int) -> float:
    env = gym.make(env_id, mop=mop)
    env.reset(seed=0)
    env.action_space.seed(0)

    def one():
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()

    return median_seconds(one, steps, warmup=2)


def episode_steps_per_second(env_id: str, mop: str, days: int) -> float:
    env = gym.make(env_id, mop=mop)
    env.action_space.seed(0)
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    for _ in range(days):
        env.reset()
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done, steps = terminated or truncated, steps + 1
    return steps / (time.perf_counter() - start)


def vector_steps_per_second(env_id: str, mop: str, steps: int, n: int, cls) -> float:
    # same-step autoreset: every step() scores a day (the default next-step mode spends every other
    # step on a reset alone, which would double the apparent rate of the one-step game)
    venv = cls([lambda: gym.make(f"stackelberg_mop:{env_id}", mop=mop)] * n,
               autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    venv.reset(seed=0)
    venv.action_space.seed(0)
    venv.step(venv.action_space.sample())
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(venv.action_space.sample())
    rate = steps * n / (time.perf_counter() - start)
    venv.close()
    return rate


def _first_step(env_id: str, mop: str, queue) -> None:
    env = gym.make(env_id, mop=mop)  # a new process: nothing built yet for the case
    start = time.perf_counter()
    env.reset(seed=0)
    env.step(env.action_space.sample())
    queue.put(time.perf_counter() - start)


def first_step_seconds(env_id: str, mop: str) -> float:
    """Seconds of the first reset + step in a new process (imports excluded): the models' build."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_first_step, args=(env_id, mop, queue))
    proc.start()
    seconds = queue.get()
    proc.join()
    return seconds


def naive_step_seconds(steps: int) -> float:
    case = sm.load_case()
    day = sm.reference_day(case)
    rng = np.random.default_rng(0)

    def one():
        prices = sm.project_prices(case, day, rng.uniform(400, 1100, 24))
        exchange = best_response_cvxpy(case, day, prices)["exchange_power"]
        res = DispatchModel(case, direct=False).solve(day, exchange)
        sweep_power_flow(case, day, exchange, res.mop_p, res.mop_q)

    return median_seconds(one, max(3, steps // 8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--envs", type=int, default=2)
    args = parser.parse_args()
    print(f"median steps/s ({os.cpu_count()} cores; single = one process, "
          f"its dispatch on {dispatch_threads()} thread(s): STACKELBERG_MOP_THREADS)")
    naive = naive_step_seconds(args.steps)
    print(f"{'ID':<26}{'mop':<7}{'single':>10}{'ms/step':>9}{'episodes':>10}{'sync×' + str(args.envs):>10}"
          f"{'async×' + str(args.envs):>10}{'first s':>9}")
    print(f"{'naive (cvxpy rebuilt)':<26}{'opf':<7}{1 / naive:>10.1f}{naive * 1e3:>9.1f}")
    for env_id in IDS:
        for mop in MODES:
            sec = single_step_seconds(env_id, mop, args.steps)
            episodes = episode_steps_per_second(env_id, mop, max(2, args.steps // (24 if "Hourly" in env_id else 1)))
            sync = vector_steps_per_second(env_id, mop, max(4, args.steps // 4), args.envs, gym.vector.SyncVectorEnv)
            asyn = vector_steps_per_second(env_id, mop, max(4, args.steps // 4), args.envs, gym.vector.AsyncVectorEnv)
            first = first_step_seconds(env_id, mop)
            print(f"{env_id:<26}{mop:<7}{1 / sec:>10.1f}{sec * 1e3:>9.1f}{episodes:>10.1f}{sync:>10.1f}{asyn:>10.1f}"
                  f"{first:>9.2f}")


if __name__ == "__main__":
    main()
