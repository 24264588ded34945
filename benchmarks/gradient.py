"""Gradient speed: `evaluate(..., gradient=True)` beside one `evaluate` and beside central differences.

    python benchmarks/gradient.py [--repeats 15] [--days 5]

Prints, per case, the median time of one `evaluate`, of one `evaluate` with the exact gradient dJ/dλ,
and of the 48 extra `evaluate` calls central differences need for the same 24 numbers (the reference a
user without the gradient would run), and the largest difference between the gradient and those
differences over the hours where they are smooth (central differences at two steps agree).
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_seconds

import stackelberg_mop as sm


def central(case, day, prices: np.ndarray, step: float) -> np.ndarray:
    """dJ/dλ_t by central differences, one hour at a time (48 calls of `evaluate`)."""
    out = np.zeros(24)
    for t in range(24):
        e = np.zeros(24)
        e[t] = step
        out[t] = (sm.evaluate(case, day, prices + e).dno_objective
                  - sm.evaluate(case, day, prices - e).dno_objective) / (2 * step)
    return out


def measure(case, day, prices: np.ndarray, repeats: int) -> tuple[float, float, float, float]:
    """(evaluate s, evaluate with the gradient s, central differences s, largest error where smooth)."""
    plain = median_seconds(lambda: sm.evaluate(case, day, prices), repeats)
    with_gradient = median_seconds(lambda: sm.evaluate(case, day, prices, gradient=True), repeats)
    differences = median_seconds(lambda: central(case, day, prices, 0.1), 1, warmup=0)
    exact = sm.evaluate(case, day, prices, gradient=True).price_gradient
    fine, coarse = central(case, day, prices, 0.1), central(case, day, prices, 0.4)
    smooth = np.abs(fine - coarse) <= 1e-3 * (1 + np.abs(fine))
    return plain, with_gradient, differences, float(np.abs(exact - fine)[smooth].max(initial=0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--days", type=int, default=5)
    args = parser.parse_args()
    print(f"{'case':<20} {'evaluate ms':>12} {'+ gradient ms':>14} {'ratio':>6} {'differences ms':>15} {'max |g − fd|':>13}")
    for name in sm.available_cases():
        case = sm.load_case(name)
        rng = np.random.default_rng(0)
        rows = []
        for day in sm.days(case, "val")[:: max(1, 42 // args.days)][: args.days]:
            bounds = sm.market.price_bounds(case, day)
            rows.append(measure(case, day, bounds.project(rng.uniform(bounds.lower, bounds.upper)), args.repeats))
        a, b, c = (1e3 * float(np.median([r[k] for r in rows])) for k in range(3))
        error = max(r[3] for r in rows)
        print(f"{name:<20} {a:>12.1f} {b:>14.1f} {b / a:>6.2f} {c:>15.0f} {error:>13.1e}")


if __name__ == "__main__":
    main()
