"""The one yardstick of learned pricing: a day's score against the bi-level optimum and the tariff.

For a day d with DNO objective J_d (¥, `evaluate`'s score of the posted prices), the shipped optimum
J*_d (`data.optimum`: verified prices, proven or with their proven gap) and the tariff's score
J_tariff,d (the HV buy tariff projected onto the price rules, the MOP dispatched by the DNO's OPF, hard
voltage limits: the game J* was solved for):

    regret_d             = J_d − J*_d                                   ¥
    normalised regret_d  = (J_d − J*_d) / (J_tariff,d − J*_d)           0 = the optimum, 1 = the tariff
    aggregate regret     = Σ_d (J_d − J*_d) / Σ_d (J_tariff,d − J*_d)   over a set of days

The aggregate is the headline everywhere (environments' ``info``, training logs, the benchmark, the
leaderboard): the per-day ratio is ill-conditioned on winter days where the tariff is within a few ¥
of J*, the aggregate weighs each day by what is at stake on it. `bootstrap_interval` gives its 95 %
interval over days (days resampled with replacement, the ratio recomputed). Where J* is only proven
to a gap, J* − bound bounds how far the true optimum can lie below it; over the 49 test days the gaps
add up to ~0.6 % of Σ(J_tariff − J*), so an aggregate regret is exact to about ±0.006.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _validate
from ..cases import Case
from ..data import Day
from ..data.optimum_table import Optimum, OptimumError, OptimumTable, day_hash
from ..market import project_prices
from .evaluate import evaluate

#: ¥: a day whose tariff is within this of J* has no stakes: its normalised regret is undefined (NaN)
NO_STAKES = 1e-9

#: the keys `Yardstick.judge` fills (NaN where a number is not known)
KEYS = ("optimum_objective", "optimum_bound", "tariff_objective", "regret", "normalised_regret")


class TariffScore:
    """J_tariff of each day: the DNO objective when the HV buy tariff, projected onto the price rules,
    is posted (MOP mode and voltage limits as given), cached per day's data (`data.optimum_table.day_hash`:
    its loads, renewables and HV prices, so sampled HV prices and other load profiles of the same date
    are other days). NaN when that solve fails."""

    def __init__(self, case: Case, mop: str = "opf", voltage_limits: str = "hard"):
        self.case, self.mop, self.voltage_limits = case, ("opf" if mop == "agent" else mop), voltage_limits
        self._scores: dict[tuple, tuple[float, np.ndarray]] = {}

    def _score(self, day: Day) -> tuple[float, np.ndarray]:
        """(J_tariff, its hourly shares) of `day`, scored once per day's data."""
        key = day_hash(day)
        if key not in self._scores:
            prices = project_prices(self.case, day, day.buy_price)
            out = evaluate(self.case, day, prices, mop=self.mop, voltage_limits=self.voltage_limits)
            ok = out.status.startswith("optimal")
            self._scores[key] = ((out.dno_objective, np.asarray(out.hourly_objective, dtype=float)) if ok
                                 else (float("nan"), np.full(24, np.nan)))
        return self._scores[key]

    def __call__(self, day: Day) -> float:
        return self._score(day)[0]

    def hourly(self, day: Day) -> np.ndarray:
        """(24,) ¥: each hour's share of J_tariff (`Outcome.hourly_objective`)."""
        return self._score(day)[1]


class Yardstick:
    """J* and J_tariff of a case's days, read and computed once per day.

    table: an optimum table (JSON lines) instead of the case's shipped one. tariff: a `TariffScore`
    of the case with the MOP by the OPF and hard limits to share (an environment's own, so that a day's
    J_tariff is solved once). `optimum(day)` gives the table's verified row for the day's data (proven
    or not) or None; `tariff(day)` J_tariff; `judge(day, J)` the dict of `KEYS`.
    """

    def __init__(self, case: Case, table=None, tariff: TariffScore | None = None):
        self.case = case
        self.table = OptimumTable(case, table)
        if tariff is not None and not isinstance(tariff, TariffScore):
            raise ValueError(f"tariff: expected a TariffScore, got {type(tariff).__name__}")
        if tariff is not None and (tariff.case.fingerprint != case.fingerprint
                                   or (tariff.mop, tariff.voltage_limits) != ("opf", "hard")):
            raise ValueError("tariff: the yardstick's J_tariff is the case's with the MOP by the OPF and hard limits")
        self.tariff = tariff if tariff is not None else TariffScore(case, "opf", "hard")

    def optimum(self, day: Day) -> Optimum | None:
        try:
            opt = self.table.get(day)
        except OptimumError:
            return None
        return opt if self.table.rows[day.name].get("verified", True) else None

    def judge(self, day: Day, objective: float) -> dict[str, float]:
        """{optimum_objective, optimum_bound, tariff_objective, regret, normalised_regret} of a day
        scored `objective` ¥; J*-based entries are NaN on a day the table does not hold."""
        opt = self.optimum(day)
        base = self.tariff(day)
        best = opt.objective if opt is not None else np.nan
        stakes = base - best
        return {"optimum_objective": float(best), "optimum_bound": float(opt.bound if opt is not None else np.nan),
                "tariff_objective": float(base), "regret": float(objective - best),
                "normalised_regret": float((objective - best) / stakes) if stakes > NO_STAKES else float("nan")}


def _days(objective, optimum, tariff) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three per-day sequences as float arrays of one length (NaN allowed: a day not judged);
    ValueError naming the argument otherwise."""
    out = []
    for name, values in (("objective", objective), ("optimum", optimum), ("tariff", tariff)):
        if isinstance(values, str | bytes) or np.ndim(values) != 1:
            raise ValueError(f"{name}: expected one number (¥) per day, got {values!r:.60}")
        try:
            arr = np.array([float(v) if not isinstance(v, str | bytes | bool) else "x" for v in values], dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected numbers (¥, NaN for a day not judged), got {values!r:.60}") from None
        out.append(arr)
    if not out[0].shape == out[1].shape == out[2].shape:
        raise ValueError(f"objective, optimum, tariff: one value per day each, got lengths "
                         f"{[a.size for a in out]}")
    return out[0], out[1], out[2]


def aggregate_regret(objective: Sequence[float], optimum: Sequence[float], tariff: Sequence[float]) -> float:
    """Σ(J − J*) / Σ(J_tariff − J*) over the days where all three are finite; NaN when no day has
    stakes (Σ(J_tariff − J*) ≤ `NO_STAKES`)."""
    j, best, base = _days(objective, optimum, tariff)
    ok = np.isfinite(j) & np.isfinite(best) & np.isfinite(base)
    stakes = (base - best)[ok].sum()
    return float((j - best)[ok].sum() / stakes) if stakes > NO_STAKES else float("nan")


def bootstrap_interval(objective: Sequence[float], optimum: Sequence[float], tariff: Sequence[float],
                       level: float = 0.95, resamples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of `aggregate_regret` over days: the days (with all three
    numbers finite) resampled with replacement `resamples` times, the ratio recomputed each time.
    Deterministic for a given `seed`; (NaN, NaN) without a day."""
    j, best, base = _days(objective, optimum, tariff)
    _validate.number("level", level, lo=0, hi=1, lo_open=True, hi_open=True)
    _validate.integer("resamples", resamples, lo=1)
    _validate.integer("seed", seed, lo=0)
    ok = np.isfinite(j) & np.isfinite(best) & np.isfinite(base)
    loss, stakes = (j - best)[ok], (base - best)[ok]
    if loss.size == 0:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, loss.size, size=(resamples, loss.size))
    den = stakes[idx].sum(axis=1)
    ratios = loss[idx].sum(axis=1)[den > NO_STAKES] / den[den > NO_STAKES]
    if ratios.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(ratios, [tail, 1.0 - tail])
    return float(lo), float(hi)


def seed_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) over seeds: the mean and its Student-t interval (NaN bounds for one seed)."""
    from scipy import stats

    _validate.number("level", level, lo=0, hi=1, lo_open=True, hi_open=True)
    if isinstance(values, str | bytes) or np.ndim(values) != 1:
        raise ValueError(f"values: expected one number per seed, got {values!r:.60}")
    try:
        x = np.array([float(v) for v in values if not isinstance(v, str | bytes)], dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"values: expected numbers, got {values!r:.60}") from None
    if x.size != len(values):
        raise ValueError(f"values: expected numbers, got {values!r:.60}")
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2.0, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


__all__ = ["KEYS", "NO_STAKES", "TariffScore", "Yardstick", "aggregate_regret", "bootstrap_interval", "seed_interval"]
