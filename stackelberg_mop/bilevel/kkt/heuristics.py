"""Heuristic prices for the bi-level solver's warm start and first cuts (upper bounds, no proof).

`start_prices` gives a few price vectors of known shape; `local_search` improves one by a pattern
search on a surrogate that is exact for the followers and uses the cuts for the network. The solver
scores every result exactly (`best_response` + dispatch) before it counts as an upper bound.
"""

from __future__ import annotations

import numpy as np

from ...cases import HOURS, Case
from ...data import Day
from ...market import best_response, project_prices
from .model import price_box


def start_prices(case: Case, day: Day, price_lo=None, price_hi=None) -> list[np.ndarray]:
    """Heuristic price vectors, each projected onto the rules: the HV tariff, a flat price at the
    cap, a bang-bang vector (highest price where the prosumers import, lowest where they export),
    and the lowest prices."""
    lo, hi = price_box(case, day, price_lo, price_hi)
    tariff = project_prices(case, day, day.buy_price, price_lo, price_hi)
    flat = project_prices(case, day, np.full(HOURS, case.price_rules.mean_cap), price_lo, price_hi)
    # bang-bang: the highest price where the prosumers together import under the tariff, the lowest
    # where they export (the shape of the optimum when revenue dominates), projected onto the rules
    net = best_response(case, day, tariff).exchange_power.sum(axis=0)
    bang = project_prices(case, day, np.where(net > 0, hi, lo), price_lo, price_hi)
    return [tariff, flat, bang, lo.copy()]


def local_search(case: Case, day: Day, prices: np.ndarray, cuts: list, lo: np.ndarray, hi: np.ndarray,
                 steps=(100.0, 30.0, 10.0, 3.0, 1.0), max_evals: int = 20000) -> np.ndarray:
    """Pattern search on the prices against a surrogate of the DNO objective (heuristic, upper bound).

    The surrogate is exact for the followers (`best_response`) and uses the outer approximation
    max_k cut_k(P) for the network; moves change one price, or raise one and lower another by the
    same step (so the mean cap stays kept). The caller scores the result exactly with `evaluate`.
    """
    w1, cap = case.objective.omega_economic, HOURS * case.price_rules.mean_cap
    phis = np.array([c[0] for c in cuts])  # (K, 24)
    grads = np.array([c[1] for c in cuts])  # (K, N, 24)
    p_hats = np.array([c[2] for c in cuts])

    def value(lam):
        p = best_response(case, day, lam).exchange_power
        theta = (phis + (grads * (p[None] - p_hats)).sum(axis=1)).max(axis=0)
        return float(theta.sum()) - w1 * float((lam * p).sum())

    lam = np.clip(np.asarray(prices, float), lo, hi)
    best, evals = value(lam), 1
    for step in steps:
        improved = True
        while improved and evals < max_evals:
            improved = False
            moves = [(t, None, sign) for t in range(HOURS) for sign in (1.0, -1.0)]
            moves += [(t, s, 1.0) for t in range(HOURS) for s in range(HOURS) if s != t]
            for t, s, sign in moves:
                cand = lam.copy()
                cand[t] += sign * step
                if s is not None:
                    cand[s] -= step
                cand = np.clip(cand, lo, hi)
                if cand.sum() > cap + 1e-9 or np.array_equal(cand, lam):
                    continue
                val = value(cand)
                evals += 1
                if val < best - 1e-9:
                    lam, best, improved = cand, val, True
    return lam
