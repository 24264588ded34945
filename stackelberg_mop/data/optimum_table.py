"""The bi-level optimum of every benchmark day, shipped as data: the yardstick of learned pricing.

    opt = optimum(case, day)        # Optimum: prices (24,) ¥/MWh, objective J* ¥, bound, gap, status, ...

The tables are made by `stackelberg_mop.runner.optima.compute` (`stackelberg-mop optima --case ieee33-mop
--split test`), which proves each day's optimum with `bilevel.kkt.solve` and appends one JSON line
per day; they ship in ``stackelberg_mop/data/optima/<case>.jsonl``. This module only reads them, so
that the environments and the benchmark can judge prices against J* without a solver.

Each row records what made it: the package version, the case's `Case.fingerprint` and a hash of
the day's data. `optimum` refuses a row made for other case or day data (the table would be stale)
and names the command that computes a missing day. The objective is `evaluate`'s score of the
stored prices, so re-scoring them reproduces J* (a test checks a sample to 1e-6).

A day solved more than once (a `--retry` with a longer time limit, another machine's run merged in)
has one certificate made of the best of its runs (`combine_rows`): the lowest verified score with
its prices, and the highest proven bound. Both are valid on their own (each run's bound is a lower
bound on J*, each score is J at feasible prices), so their gap is a certificate too, and a later
run can never make a day's row worse.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .. import _validate
from ..cases import Case, check_case
from .days import Day, check_day
from .table_schema import check_row

#: where the shipped tables live (inside this package), one JSON-lines file per case name
TABLE_DIR = "optima"


@dataclass(frozen=True, eq=False)
class Optimum:
    """One day's bi-level optimum as stored in a table.

    prices: (24,) ¥/MWh, λ*. objective: J*, `evaluate`'s score of λ* (¥; MOP dispatched, hard voltage
    limits). bound: the proven lower bound (¥); gap: (objective − bound)/|objective|. status: the
    solver's ("optimal" when the gap reached the requested one and the verification passed).
    solve_time: s of wall time on `threads` SCIP threads of the run that found these prices (the
    bound may come from another run of the same day: `combine_rows`). mop_setpoints: (2, K, 24)
    [P; Q] MW/Mvar.
    version, case_fingerprint, day_hash: what made the row.
    """

    case: str
    day: str
    prices: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    solve_time: float
    mop_setpoints: np.ndarray
    threads: int
    version: str
    case_fingerprint: str
    day_hash: str

    @classmethod
    def from_row(cls, row: dict) -> Optimum:
        prices = np.array(row["prices"], dtype=float)
        setpoints = np.array(row["mop_setpoints"], dtype=float)
        for arr in (prices, setpoints):
            arr.setflags(write=False)
        return cls(case=row["case"], day=row["day"], prices=prices, objective=float(row["objective"]),
                   bound=float(row["bound"]), gap=float(row["gap"]), status=row["status"],
                   solve_time=float(row["solve_time"]), mop_setpoints=setpoints, threads=int(row["threads"]),
                   version=row["version"], case_fingerprint=row["case_fingerprint"], day_hash=row["day_hash"])


class OptimumError(LookupError, ValueError):
    """A day with no usable row in the optimum table; the message says how to compute it. A
    `ValueError` too, like every error of a bad input to the package (a day the table does not hold)."""


def day_hash(day: Day) -> str:
    """A short hash of a day's data (profiles and HV tariff), as recorded in the table."""
    h = hashlib.sha256()
    for name in ("fixed_load", "pv", "base_p", "base_q", "buy_price", "sell_price"):
        h.update(np.ascontiguousarray(getattr(day, name), dtype=float).tobytes())
    if day.wind.any():  # a day without wind keeps the hash it had before days had wind
        h.update(np.ascontiguousarray(day.wind, dtype=float).tobytes())
    return h.hexdigest()[:16]


def table_path(case_name: str) -> Path:
    """The shipped table of a case name (it may not exist yet)."""
    return Path(str(resources.files(__package__).joinpath(TABLE_DIR))) / f"{case_name}.jsonl"


def read_table(path: str | Path) -> dict[str, dict]:
    """The rows of a table by day name; {} if the file does not exist. A day's rows made for the
    data of its last row (case fingerprint and day hash) are combined into one (`combine_rows`);
    earlier rows for other data are stale and dropped. Every row is checked against the schema
    (`table_schema.check_row`: fields, types, lengths, finiteness) before any is used: ValueError names
    the file, line and field. A malformed *last* line without its newline (a run killed while writing
    it) is skipped, so the next run solves that day again. A path that is a directory is named."""
    path = _validate.path("table", path, "the path of an optimum table (.jsonl)")
    by_day: dict[str, list[dict]] = {}
    if not path.exists():
        return {}
    if not path.is_file():
        raise ValueError(f"{path}: is not a file (an optimum table is a JSON-lines file)")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first row
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (an optimum table is a JSON-lines file)") from None
    lines = text.splitlines()
    for k, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as err:
            if k == len(lines) and not text.endswith("\n"):  # a line torn by a kill: that day is solved again
                break
            raise ValueError(f"{path}:{k}: not a JSON object ({err})") from None
        except KeyError as err:
            raise ValueError(f"{path}:{k}: {err.args[0]}: given twice in one row") from None
        row = check_row(row, f"{path}:{k}")
        by_day.setdefault(row["day"], []).append(row)
    try:
        return {day: combine_rows(rows) for day, rows in by_day.items()}
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _unique_keys(pairs: list) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise KeyError(key)
        seen[key] = value
    return seen


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def row_data(row: dict) -> tuple:
    """What a row was made for: (case fingerprint, day hash); rows of a day combine only when equal."""
    return row.get("case_fingerprint"), row.get("day_hash")


def combine_rows(rows: list[dict]) -> dict:
    """One day's certificate from several runs (oldest first): the rows for the data of the last one
    that were verified give the lowest objective (its prices, set-points, solve time; the later run
    on a tie) and the highest bound; gap and status are those of the pair, ``time_to_gap`` the
    fastest single run to each gap, ``runs`` how many runs were combined. A single verified row is
    returned as it is (so a later run whose verification failed does not hide it); with none, the
    last row. ValueError if a bound exceeds another run's verified score beyond 1e-6 relative: one
    of the runs is wrong, and the table says so."""
    last = rows[-1]
    good = [r for r in rows if row_data(r) == row_data(last) and r.get("verified", True)
            and _finite(r.get("objective")) and _finite(r.get("bound"))]
    if len(good) < 2:
        return good[0] if good else last
    best = min(reversed(good), key=lambda r: r["objective"])  # reversed: the later run on a tie
    bound = max(r["bound"] for r in good)
    objective = best["objective"]
    if bound > objective + 1e-6 * max(1.0, abs(objective)):
        raise ValueError(f"day {last['day']!r}: a run proved the bound {bound:.6f} above another run's "
                         f"verified objective {objective:.6f}; one of the rows is wrong")
    gap = max(0.0, (objective - bound) / max(abs(objective), 1e-12))
    requested, status = best.get("requested_gap"), best["status"]
    if requested is not None:  # the pair's gap is at most the best run's own: "optimal" stays so
        status = "optimal" if gap <= requested else ("time_limit" if status == "optimal" else status)
    out = dict(best, bound=bound, gap=gap, runs=sum(r.get("runs", 1) for r in good), status=status)
    times = [r.get("time_to_gap") or {} for r in good]
    keys = sorted({k for t in times for k in t}, key=float, reverse=True)
    if keys:
        out["time_to_gap"] = {k: min((t[k] for t in times if t.get(k) is not None), default=None) for k in keys}
    return out


def checked_optimum(case: Case, day: Day, row: dict, path) -> Optimum:
    """The `Optimum` of a solved row made for `case` and `day` (its case, fingerprint and day hash
    checked by the caller), after what the schema cannot know: the row's split is the day's, its MOP
    set-points fit the case's terminals and ratings, its prices keep the day's price rules.
    ValueError naming the file, day and field."""
    if row.get("split") not in (None, day.split):
        raise ValueError(f"{path}: day {day.name!r}: split: the row says {row['split']!r}, the day is in "
                         f"{day.split!r}")
    shape = np.shape(row["mop_setpoints"])
    if shape != (2, len(case.mop), 24):
        raise ValueError(f"{path}: day {day.name!r}: mop_setpoints: expected 2 x {len(case.mop)} x 24 for case "
                         f"{case.name!r}, got {' x '.join(map(str, shape))}")
    opt = Optimum.from_row(row)
    lo, hi = case.price_rules.hourly_bounds(day)
    breach = max(float(np.max(lo - opt.prices)), float(np.max(opt.prices - hi)),
                 float(opt.prices.mean() - case.price_rules.mean_cap))
    if breach > 1e-6:
        raise ValueError(f"{path}: day {day.name!r}: prices: outside the case's price rules on that day")
    if len(case.mop) and np.any(np.hypot(*opt.mop_setpoints) > case.mop.s_max[:, None] * (1 + 1e-6) + 1e-9):
        raise ValueError(f"{path}: day {day.name!r}: mop_setpoints: beyond the terminals' ratings")
    return opt


class OptimumTable:
    """A case's optimum table, read once: ``get(day)`` gives the day's `Optimum` or raises
    `OptimumError`, ``find(day)`` gives it or None (e.g. an environment's per-step ``info``)."""

    def __init__(self, case: Case, table: str | Path | None = None):
        check_case(case)
        if table is not None:
            _validate.instance("table", table, str | Path, "a path to a table (.jsonl) or None")
        self.case, self.explicit = case, table is not None
        self.path = table_path(case.name) if table is None else Path(table)
        self.rows = read_table(self.path)

    def get(self, day: Day) -> Optimum:
        case, path = self.case, self.path
        check_day(case, day)
        row = self.rows.get(day.name)
        how = (f"compute it with `stackelberg-mop optima --case {case.name} --split {day.split or 'test'}"
               f"{f' --out {path}' if self.explicit else ''}`")
        if row is None:
            raise OptimumError(f"no optimum of day {day.name!r} for case {case.name!r} in {path}: {how}")
        if row.get("case_fingerprint") != case.fingerprint:
            raise OptimumError(f"the optimum of day {day.name!r} in {path} was made for other case data "
                               f"(fingerprint {row.get('case_fingerprint')}, this case {case.fingerprint}): {how}")
        if row.get("day_hash") != day_hash(day):
            raise OptimumError(f"the optimum of day {day.name!r} in {path} was made for other day data "
                               f"(e.g. sampled HV prices): {how}")
        if row.get("case") != case.name:
            raise OptimumError(f"the optimum of day {day.name!r} in {path} names case {row.get('case')!r}, "
                               f"not {case.name!r}: {how}")
        if row.get("objective") is None:
            raise OptimumError(f"the row of day {day.name!r} in {path} holds no solution ({row.get('status')}): {how}")
        return checked_optimum(case, day, row, path)

    def find(self, day: Day) -> Optimum | None:
        """The day's optimum if the table holds a proven one (status "optimal"), else None."""
        try:
            opt = self.get(day)
        except OptimumError:
            return None
        return opt if opt.status == "optimal" and self.rows[day.name].get("verified", True) else None


def optimum(case: Case, day: Day, table: str | Path | None = None) -> Optimum:
    """The stored bi-level optimum of `day` for `case` (`table`: a JSON-lines file; default the shipped
    table of ``case.name``). OptimumError if the day is not there, or its row was made for other case
    or day data; the message gives the command that computes it."""
    return OptimumTable(case, table).get(day)


__all__ = ["Optimum", "OptimumError", "OptimumTable", "combine_rows", "day_hash", "optimum", "read_table",
           "row_data", "table_path"]
