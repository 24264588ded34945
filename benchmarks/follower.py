"""Best-response speed: the exact fast path (single and batched) beside a naive cvxpy rebuild.

    python benchmarks/follower.py [--repeats 30]

Prints the median time per prosumer-day and checks that the answers agree to 1e-6.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_seconds

import stackelberg_mop as sm
from stackelberg_mop.market.reference import best_response_cvxpy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    case = sm.load_case()
    day = sm.reference_day(case)
    n = len(case.prosumers)
    rng = np.random.default_rng(0)
    prices = rng.uniform(case.price_rules.price_min, case.price_rules.price_max, (args.batch, 24))

    single = median_seconds(lambda: sm.best_response(case, day, prices[0]), args.repeats)
    batched = median_seconds(lambda: sm.best_response_batch(case, day, prices), max(3, args.repeats // 10))
    naive = median_seconds(lambda: best_response_cvxpy(case, day, prices[0]), max(3, args.repeats // 5))

    worst = 0.0
    for lam in prices[:10]:
        fast, ref = sm.best_response(case, day, lam), best_response_cvxpy(case, day, lam)
        for key in ("transfer", "charge", "discharge", "stored_energy", "exchange_power", "cost"):
            worst = max(worst, float(np.abs(getattr(fast, key) - ref[key]).max()))

    per = lambda seconds, days: seconds / (days * n) * 1e6
    print(f"best response, {case.name}, {n} prosumers, median of repeated runs")
    print(f"{'method':<38}{'µs / prosumer-day':>20}{'speed-up':>10}")
    for label, value in (("naive: cvxpy rebuilt per call (Clarabel)", per(naive, 1)),
                         ("fast: breakpoints + DAQP, one day", per(single, 1)),
                         (f"fast: batched, {args.batch} price vectors", per(batched, args.batch))):
        print(f"{label:<38}{value:>20.1f}{per(naive, 1) / value:>9.0f}x")
    print(f"largest difference fast vs naive over 10 price vectors: {worst:.2e} (MW, MWh or ¥)")


if __name__ == "__main__":
    main()
