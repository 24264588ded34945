"""Wang et al.'s (2024) benefit allocation and stochastic prices on its own system (the case `substation-areas`).

**Generalised Nash bargaining** (Wang et al. (2024) Eqs. 4–7): the coalition's savings S = Σ_n C^ind_n − Σ_n
C^coop_n are split by max Σ_n w_n ln B_n with Σ_n pay_n = 0, B_n = C^ind_n − C^coop_n − pay_n, whose
solution is B_n = w_n S (`admm.nash_payments`, solved as written and checked against that closed form).
The bargaining power w_n is DSA n's share of the net energy it trades, e_n = Σ_t |Σ_m p_nm,t| (MWh;
hour by hour, since a DSA's buying and selling over the day can cancel). Every DSA ends no worse off
than alone because S >= 0 (`papers.dsa_market`).

**Stochastic prices** (Wang et al. (2024) §4): the buy price is uncertain, 1,000 Gaussian samples reduced by
k-means to 10 scenarios (`data.hv_prices.hv_price_scenarios`); every scenario is operated on its own
(decisions respond to the scenario) and the result is the probability-weighted expectation. The
optimal cost is concave in the prices, and the scenarios keep the samples' mean, so the expected cost
is at most the cost at the scenarios' mean price (Jensen): uncertainty cannot raise it, except
through the samples' truncation at the sell price, which lifts the mean price itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithms.admm import Bargain, nash_payments
from ..cases import Case
from ..data import Day
from .dsa_market import DSAOperation, operate, score


def _traded(coop: DSAOperation) -> np.ndarray:
    """(N,) e_n = Σ_t |Σ_m p_nm,t|, MWh: the net energy each DSA trades, hour by hour."""
    return np.abs(coop.trades.sum(axis=1)).sum(axis=-1)


def _shares(traded: np.ndarray) -> np.ndarray:
    """Bargaining power w_n = e_n / Σ e; equal shares when nothing is traded."""
    return traded / traded.sum() if traded.sum() > 0 else np.full(traded.size, 1.0 / traded.size)


def bargaining_power(coop: DSAOperation) -> np.ndarray:
    """(N,) w_n = e_n / Σ e, e_n = Σ_t |Σ_m p_nm,t| (MWh); equal shares when nothing is traded."""
    return _shares(_traded(coop))


def split(alone: np.ndarray, cooperative: np.ndarray, weight: np.ndarray) -> Bargain:
    """The Nash bargaining split of the savings between the DSAs (¥; `admm.Bargain`, parties = DSAs).
    Savings within 1e-9 of the costs' scale count as none: no payments."""
    alone, coop, w = (np.asarray(a, float) for a in (alone, cooperative, weight))
    savings = float(alone.sum() - coop.sum())
    if savings <= 1e-9 * max(1.0, float(np.abs(alone).sum())):
        pay = np.zeros_like(alone)
    else:
        pay = nash_payments(alone, coop, w)
    final = coop + pay
    return Bargain(alone=alone, cooperative=coop, weight=w, payment=pay, final=final, savings=savings,
                   individually_rational=bool(np.all(final <= alone + 1e-6)))


def bargain(individual: DSAOperation, cooperative: DSAOperation) -> Bargain:
    """Split one day's cooperative savings (module docstring)."""
    return split(individual.cost, cooperative.cost, bargaining_power(cooperative))


@dataclass(frozen=True, eq=False)
class Expected:
    """Operation over price scenarios: cost (N,) ¥ and buy, sell (N,) MWh, probability-weighted, and
    total_cost = Σ cost; weight (S,); operations: the S scenario operations."""

    mode: str
    cost: np.ndarray
    total_cost: float
    buy: np.ndarray
    sell: np.ndarray
    weight: np.ndarray
    operations: list


def expected_operation(case: Case, day: Day, scenarios, mode: str = "cooperative", dr: bool = True) -> Expected:
    """`papers.dsa_market.operate` in every scenario of `scenarios` (`data.hv_prices.PriceScenarios`), weighted.
    A scenario without an optimal operation makes the expectation fail (RuntimeError naming it)."""
    ops = [operate(case, d, mode, dr) for d in scenarios.days(day)]
    bad = [k for k, op in enumerate(ops) if not op.status.startswith("optimal")]
    if bad:
        raise RuntimeError(f"the {mode} operation failed in scenario(s) {bad}: {ops[bad[0]].status}")
    w = np.asarray(scenarios.weight, float)
    avg = lambda f: np.tensordot(w, np.array([f(op) for op in ops]), axes=1)
    cost = avg(lambda op: op.cost)
    return Expected(mode=mode, cost=cost, total_cost=float(cost.sum()), buy=avg(lambda op: op.buy.sum(-1)),
                    sell=avg(lambda op: op.sell.sum(-1)), weight=w, operations=ops)


def bargain_expected(individual: Expected, cooperative: Expected) -> Bargain:
    """The split agreed before the price is known: on the expected costs, with the expected trades'
    bargaining power."""
    traded = sum(w * _traded(op) for w, op in zip(cooperative.weight, cooperative.operations))
    return split(individual.cost, cooperative.cost, _shares(traded))


#: Wang et al.'s (2024) congested case: 100 kW on the line between its (1-based) buses 2 and 3
LINE_LIMIT_MVA = 0.1


def _verified(case: Case, day: Day, op: DSAOperation) -> DSAOperation:
    """`op` after re-scoring it from its reported quantities (`papers.dsa_market.score`); RuntimeError if its
    costs, books or AC voltages disagree with the model's (1e-6 of the costs' scale, 1e-6 MW, limits)."""
    if not op.status.startswith("optimal"):
        raise RuntimeError(f"the {op.mode} operation ended {op.status!r}")
    s = score(case, day, op)
    scale = max(1.0, float(np.abs(op.cost).sum()))
    vm = s["vm"][np.arange(case.buses.size) != case.bus_position(case.slack_bus)]
    if (np.abs(s["cost"] - op.cost).max() > 1e-6 * scale or s["balance"] > 1e-6 or not s["ac_converged"]
            or vm.min() < case.v_min - 1e-6 or vm.max() > case.v_max + 1e-6):
        raise RuntimeError(f"the {op.mode} operation does not re-score: cost error "
                           f"{np.abs(s['cost'] - op.cost).max():.3g} ¥, balance {s['balance']:.3g} MW, AC voltages "
                           f"{vm.min():.4f}–{vm.max():.4f} p.u.")
    return op


def _row(ind: DSAOperation | Expected, coop: DSAOperation | Expected, bargain_: Bargain) -> dict:
    saving = ind.total_cost - coop.total_cost
    return {"individual": ind.cost.tolist(), "cooperative": coop.cost.tolist(), "final": bargain_.final.tolist(),
            "individual_total": ind.total_cost, "cooperative_total": coop.total_cost,
            "saving_pct": 100 * saving / abs(ind.total_cost), "weight": bargain_.weight.tolist()}


def reproduce(case: Case, day: Day, scenarios=None) -> dict:
    """Wang et al.'s (2024) Tables 1–3 in kind on `day` (docs/plans/seed001-dsa.md §3), every deterministic
    operation re-scored (`_verified`): {"tables": {(prices,
    demand response, line): row}, "table3", "voltage", "throughput", "coalition", "admm"}. scenarios:
    the HV price scenarios of the stochastic rows (default `hv_price_scenarios(day)`: 1,000 samples, 10)."""
    from ..cases.variants import line_limited_case
    from ..data.hv_prices import hv_price_scenarios
    from .dsa_admm import algorithm1

    scenarios = hv_price_scenarios(day) if scenarios is None else scenarios
    limited = line_limited_case(case, LINE_LIMIT_MVA)
    tables, ops = {}, {}
    for line, c in (("normal", case), ("100 kW", limited)):
        for dr in (False, True):
            ind, coop = (_verified(c, day, operate(c, day, m, dr)) for m in ("individual", "cooperative"))
            ops[line, dr] = (ind, coop)
            tables["deterministic", dr, line] = _row(ind, coop, bargain(ind, coop))
            e_ind, e_coop = (expected_operation(c, day, scenarios, m, dr) for m in ("individual", "cooperative"))
            tables["stochastic", dr, line] = _row(e_ind, e_coop, bargain_expected(e_ind, e_coop))
    ind, coop = ops["normal", False]
    traded = lambda op: np.abs(op.trades).sum(axis=(1, 2))
    table3 = {"buy": (ind.buy.sum(1).tolist(), coop.buy.sum(1).tolist()),
              "sell": (ind.sell.sum(1).tolist(), coop.sell.sum(1).tolist()),
              "traded": (traded(ind).tolist(), traded(coop).tolist())}
    pos = case.bus_position(case.prosumers.bus)
    volt = {mode: [(float(np.sqrt(op.v[p]).min()), float(np.sqrt(op.v[p]).max())) for p in pos]
            for mode, op in (("individual", ind), ("cooperative", coop))}
    throughput = {key: {m: float((op.charge + op.discharge).sum()) for m, op in zip(("individual", "cooperative"), pair)}
                  for key, pair in ((f"{line}, DR" if dr else line, ops[line, dr]) for line, dr in ops)}
    grid = (coop.buy - coop.sell).sum(0)
    admm = algorithm1(case, day, "cooperative", True)
    central = ops["normal", True][1]
    savings = ops["normal", True][0].total_cost - central.total_cost
    return {"tables": tables, "table3": table3, "voltage": volt, "throughput": throughput,
            "coalition": {"night_buy": float(grid[np.r_[0:6, 20:24]].sum()), "midday_net": float(grid[10:16].sum())},
            "admm": {"status": admm.status, "iterations": admm.iterations,
                     "gap_of_savings": (admm.operation.total_cost - central.total_cost) / savings,
                     "trade_difference": float(np.abs(admm.operation.trades - central.trades).max())}}
