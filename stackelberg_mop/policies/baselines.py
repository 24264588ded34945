"""Pricing policies with one interface, for the benchmark and the CLI.

A policy is a callable ``policy(case, day) -> (prices, mop)``: prices (24,) or (N, 24) ¥/MWh and mop
"opf" | "off" | set-points (2, K, 24), ready for ``evaluate(case, day, prices, mop=mop)``. It has a
``name`` and, after a call, ``decision_time`` (s) and ``details`` (a dict of the method's own figures:
iterations, convergence, proven gap ...).
"""

from __future__ import annotations

import time

import numpy as np

from ..cases import HOURS, Case
from ..data import Day, check_day
from ..market import project_prices


class Policy:
    """Subclass and write ``decide(case, day) -> (prices, mop)``. After a call: ``decision_time`` (s),
    ``details`` (dict) and ``response``: None, or the followers' own day when they do not simply
    best-respond to the prices (an hourly agent's prosumers re-plan hour by hour), which the
    benchmark passes to `evaluate`."""

    name = "policy"

    def __init__(self):
        self.decision_time = float("nan")
        self.details: dict = {}
        self.response = None

    def __call__(self, case: Case, day: Day):
        check_day(case, day)
        start = time.perf_counter()
        prices, mop = self.decide(case, day)
        self.decision_time = time.perf_counter() - start
        return prices, mop

    def decide(self, case: Case, day: Day):
        raise NotImplementedError


class CallablePolicy(Policy):
    """A plain function as a policy: ``fn(case, day)`` returns prices (24,) / (N, 24) ¥/MWh, or
    (prices, mop); the MOP is dispatched by the DNO's OPF unless it says otherwise. name: its
    ``name`` attribute, else its ``__name__``."""

    def __init__(self, fn, name: str | None = None):
        super().__init__()
        if not callable(fn):
            raise ValueError(f"policy: expected a callable (case, day) -> prices, got {fn!r}")  # noqa: TRY004
        self.fn = fn
        self.name = name or getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__)

    def decide(self, case, day):
        out = self.fn(case, day)
        if isinstance(out, tuple) and len(out) == 2:
            return out
        return out, "opf"


class TariffPolicy(Policy):
    """Pass the HV buy tariff through, projected onto the price rules (the reference J_tariff)."""

    name = "tariff"

    def decide(self, case, day):
        return project_prices(case, day, day.buy_price), "opf"


#: ¥/MWh: the largest flat price a spec ("flat:PRICE") may name
MAX_FLAT_PRICE = 1e5


def flat_price(text: str, name: str) -> float:
    """The price of a "flat:PRICE" spec (the text after the colon) in ¥/MWh, in (0, MAX_FLAT_PRICE];
    ValueError naming `name` (the flag or spec it came in) otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (np.isfinite(value) and 0 < value <= MAX_FLAT_PRICE):
        raise ValueError(f"{name}: expected 'flat:PRICE' with PRICE in (0, {MAX_FLAT_PRICE:g}] ¥/MWh, got {text!r}")
    return value


class FlatPolicy(Policy):
    """One price every hour: `price` ¥/MWh, by default the price rules' mean cap."""

    name = "flat"

    def __init__(self, price: float | None = None):
        super().__init__()
        self.price = price

    def decide(self, case, day):
        price = case.price_rules.mean_cap if self.price is None else self.price
        return project_prices(case, day, np.full(HOURS, float(price))), "opf"


class FixedPointPolicy(Policy):
    """The LMP fixed point (Song et al. 2024): `algorithms.fixed_point.solve` with the given options."""

    name = "fixed_point"

    def __init__(self, **options):
        super().__init__()
        self.options = {"evaluate_result": False} | options

    def decide(self, case, day):
        from ..algorithms import fixed_point

        r = fixed_point.solve(case, day, **self.options)
        self.details = {"status": r.status, "converged": r.converged, "iterations": r.iterations,
                        "price_residual": r.price_residual[-1] if r.price_residual else float("nan"),
                        "power_residual": r.power_residual[-1] if r.power_residual else float("nan"),
                        "response_gap": r.response_gap}
        return r.prices, self.options.get("mop", "opf")


class ADMMPolicy(Policy):
    """The welfare-maximising ADMM clearing (Wang et al. 2024): its consensus prices, one row per prosumer.

    project: map each prosumer's row onto the case's price rules (`market.project_prices`), so that
    the clearing is scored under the same rules as every other policy (default); the raw clearing
    prices ignore λ_max and the mean cap (on test days up to ~1,500 ¥/MWh, mean ~1,000), and their
    score is then not comparable with the bi-level optimum's. details: status, iterations and the
    raw prices' rule violation (¥/MWh)."""

    name = "admm"

    def __init__(self, project: bool = True, **options):
        super().__init__()
        self.project = project
        self.options = {"evaluate_result": False} | options

    def decide(self, case, day):
        from ..algorithms import admm
        from ..market import project_prices
        from ..scoring import price_violation

        r = admm.solve(case, day, **self.options)
        self.details = {"status": r.status, "iterations": r.iterations,
                        "raw_price_violation": float(price_violation(case, day, r.prices))}
        return (project_prices(case, day, r.prices) if self.project else r.prices), self.options.get("mop", "opf")


class ShippedOptimumPolicy(Policy):
    """The bi-level optimum as shipped (`data.optimum`): the stored prices λ*, the network dispatched by
    the DNO's OPF. No solver runs; decision_time is the solve time the table records (the time the
    optimum takes to decide), details the certificate (status, bound, gap). A day not in the table
    raises `OptimumError`, which the benchmark reports as the row's status."""

    name = "optimum"

    def __init__(self, table=None):
        super().__init__()
        self.table = table

    def __call__(self, case: Case, day: Day):
        prices, mop = super().__call__(case, day)
        self.decision_time = self.details["solve_time"]
        return prices, mop

    def decide(self, case, day):
        from ..data import optimum

        opt = optimum(case, day, self.table)
        self.details = {"status": opt.status, "best_bound": opt.bound, "gap": opt.gap, "objective": opt.objective,
                        "solve_time": opt.solve_time}
        return opt.prices.copy(), "opf"


class KKTOptimumPolicy(Policy):
    """The bi-level optimum (`bilevel.kkt.solve`): its prices, the network then dispatched by the
    DNO's OPF as for every other policy. details: the solver's status, proven gap and bound."""

    name = "kkt"

    def __init__(self, **options):
        super().__init__()
        # the benchmark's certificate level: stop at a proven relative gap of 1e-3, or after 300 s
        self.options = {"gap": 1e-3, "time_limit": 300.0} | options

    def decide(self, case, day):
        from ..bilevel import kkt

        r = kkt.solve(case, day, **self.options)
        self.details = {"status": r.status, "gap": r.gap, "best_bound": r.best_bound, "objective": r.objective,
                        "iterations": r.iterations}
        return r.prices, self.options.get("mop", "opf")
