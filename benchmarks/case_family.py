"""The case family's speed: each shipped feeder beside the IEEE 33-bus default, measured in one run.

    python benchmarks/case_family.py [--steps 30] [--cases ieee33-mop ieee69-mop zhang118-mop]

Per case: buses, prosumers, in a new process (imports excluded) `load_case` and then the first
`evaluate` (building the case's models included: what a user waits for once), the median `evaluate` of the tariff on
test days, and the median step of StackelbergMOP-v1 (a whole day: the prosumers' best responses, the
24-hour dispatch, the AC sweep) with random actions; "× 33" is the ratio to the first case's median,
which is measured in the same run, interleaved, so that a busy machine slows both alike. Each dispatch
status seen is counted: every shipped case should dispatch to "optimal".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter

import gymnasium as gym
import numpy as np
from _timing import median_seconds

import stackelberg_mop as sm
from stackelberg_mop.data import days

FIRST = """
import time, json, warnings
warnings.simplefilter("ignore")
import stackelberg_mop as sm
from stackelberg_mop.data import reference_day
t = time.perf_counter()
case = sm.load_case({name!r})
loaded = time.perf_counter()
out = sm.evaluate(case, reference_day(case), case.tariff.buy_price)
print(json.dumps({{"load": loaded - t, "seconds": time.perf_counter() - loaded, "status": out.status}}))
"""


def first_evaluate(name: str) -> tuple[float, float, str]:
    """(seconds of load_case, of the first evaluate, its status) in a fresh process."""
    run = subprocess.run([sys.executable, "-c", FIRST.format(name=name)], capture_output=True, text=True, check=True)
    row = json.loads(run.stdout.strip().splitlines()[-1])
    return row["load"], row["seconds"], row["status"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed repetitions per case and measurement")
    ap.add_argument("--cases", nargs="+", default=["ieee33-mop", "ieee69-mop", "zhang118-mop"])
    args = ap.parse_args()

    cases = {name: sm.load_case(name) for name in args.cases}
    test = {name: days(case, "test") for name, case in cases.items()}
    envs = {name: gym.make("StackelbergMOP-v1", case=case) for name, case in cases.items()}
    statuses = {name: Counter() for name in cases}
    for name, env in envs.items():
        env.reset(seed=0)
        env.action_space.seed(0)

    def evaluate_once(name):
        k = {"i": 0}

        def one():
            case, day = cases[name], test[name][k["i"] % len(test[name])]
            k["i"] += 1
            statuses[name][sm.evaluate(case, day, case.tariff.buy_price).status] += 1
        return one

    def step_once(name):
        env = envs[name]

        def one():
            env.reset()
            _, _, _, _, info = env.step(env.action_space.sample())
            statuses[name][info["status"]] += 1
        return one

    evaluate_s = {name: [] for name in cases}
    step_s = {name: [] for name in cases}
    for _ in range(args.steps):  # interleaved: every case sees the same machine
        for name in cases:
            evaluate_s[name].append(median_seconds(evaluate_once(name), 1, warmup=0))
            step_s[name].append(median_seconds(step_once(name), 1, warmup=0))
    first = {name: first_evaluate(name) for name in cases}
    ref = args.cases[0]
    ev_ref, st_ref = np.median(evaluate_s[ref]), np.median(step_s[ref])
    print(f"{'case':<16}{'buses':>6}{'prosumers':>10}{'load s':>8}{'first evaluate s':>18}{'evaluate ms':>13}{'× 33':>6}"
          f"{'env step ms':>13}{'× 33':>6}  statuses")
    for name, case in cases.items():
        ev, st = np.median(evaluate_s[name]), np.median(step_s[name])
        load, seconds, status = first[name]
        print(f"{name:<16}{case.buses.size:>6}{len(case.prosumers):>10}{load:>8.2f}{seconds:>13.2f} ({status[:3]})"
              f"{ev * 1e3:>13.1f}{ev / ev_ref:>6.2f}{st * 1e3:>13.1f}{st / st_ref:>6.2f}  {dict(statuses[name])}")


if __name__ == "__main__":
    main()
