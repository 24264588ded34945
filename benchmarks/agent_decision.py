"""Decision time of a shipped day-ahead agent, one core: features, normalisation, actor, projection.

    python benchmarks/agent_decision.py [--agent benchmarks/agents/bc-regret] [--repeats 20]

Prints, over the 49 test days, the median and the 95th percentile of one decision (the median of
`--repeats` calls per day), beside the exact methods it replaces: one LMP fixed-point solve on
the reference day, and the bi-level optimum's recorded solve times (the shipped table).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _timing import median_seconds

import stackelberg_mop as sm
from stackelberg_mop.runner import benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="benchmarks/agents/bc-regret")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)

    case = sm.load_case()
    policy = benchmark.make_policy(f"agent:{args.agent}")
    test = sm.days(case, "test")
    per_day = np.array([median_seconds(lambda d=d: policy(case, d), args.repeats) for d in test])
    start = time.perf_counter()
    benchmark.make_policy("fixed_point")(case, sm.reference_day(case))
    fixed_point = time.perf_counter() - start
    solves = np.array([sm.optimum(case, d).solve_time for d in test])
    print(f"agent {args.agent}: median {np.median(per_day) * 1e3:.3f} ms per decision, "
          f"95th percentile {np.percentile(per_day, 95) * 1e3:.3f} ms ({len(test)} test days, one thread)")
    print(f"LMP fixed point (reference day): {fixed_point:.2f} s; bi-level optimum (table): median "
          f"{np.median(solves):.0f} s, max {solves.max():.0f} s")


if __name__ == "__main__":
    main()
