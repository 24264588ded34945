"""Computing the bi-level optimum tables that ship with the package (`data.optimum` reads them).

    compute("ieee33-mop", "test")   # `stackelberg-mop optima --case ieee33-mop --split test`

`bilevel.kkt.solve` proves each day's optimum (KKT/Big-M in SCIP; every answer verified: the
followers re-solved at λ*, the model's objective against `evaluate`'s, the MOP set-points re-scored).
`compute` runs it over a split and appends one JSON line per day to the case's table the moment the
day is done, so an interrupted run loses nothing and a rerun skips the days already there. Each row
records the package version, the case's `Case.fingerprint` and the day's `day_hash`. `merge` folds
other runs of the same days into a table, keeping each day's best certificate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import _validate
from ..cases import Case
from ..data import Day
from ..data.optimum_table import checked_optimum, combine_rows, day_hash, read_table, row_data, table_path

#: the certificate every shipped day is solved to (relative gap), and the time each may take (s)
DEFAULT_GAP = 1e-4
DEFAULT_TIME_LIMIT = 600.0
#: the order in which `compute` fills a table: the reference day first, then the held-out days
SPLITS = ("reference", "test", "val", "train")


def solve_row(case: Case, day: Day, time_limit: float = DEFAULT_TIME_LIMIT, gap: float = DEFAULT_GAP,
              threads: int | None = None) -> dict:
    """One table row: `kkt.solve` on `day`, its prices re-scored by `evaluate` (the verification)."""
    from .._version import __version__
    from ..bilevel import kkt

    threads = kkt.default_threads() if threads is None else int(threads)
    r = kkt.solve(case, day, time_limit=time_limit, gap=gap, threads=threads)
    return {"case": case.name, "day": day.name, "split": day.split, "status": r.status,
            "objective": r.objective, "bound": r.best_bound, "gap": r.gap, "solve_time": round(r.solve_time, 3),
            "threads": threads, "time_limit": time_limit, "requested_gap": gap, "iterations": r.iterations,
            "verified": bool(r.verification.passed), "version": __version__,
            "case_fingerprint": case.fingerprint, "day_hash": day_hash(day),
            "time_to_gap": {f"{g:g}": time_to_gap(r, g) for g in (1e-2, 1e-3, 1e-4)},
            "prices": [float(p) for p in r.prices],
            "mop_setpoints": np.round(r.mop_setpoints, 9).tolist()}


def time_to_gap(result, gap: float) -> float | None:
    """Seconds until the solve first proved a relative gap <= `gap`: the first point of its history
    (on one thread SCIP's tree; on more, the ends of the outer iterations) or, failing that, the end of
    the solve if its final gap is within `gap`; None if it never got there."""
    for t, ub, lb in result.history:
        if ub - lb <= gap * abs(ub):
            return round(float(t), 3)
    return round(float(result.solve_time), 3) if result.gap <= gap else None


def _worker(task) -> dict:
    case_ref, split, index, time_limit, gap = task
    from .benchmark import cached_case_day

    try:
        case, day = cached_case_day(case_ref, split, index)
    except ValueError as err:  # the case file changed since the run started: said, no row written
        return {"case": str(case_ref), "day": f"{split}#{index}", "status": f"case_error: {err}"[:300]}
    try:
        return solve_row(case, day, time_limit, gap)
    except (ValueError, RuntimeError, ArithmeticError) as err:  # reported, the run goes on
        return {"case": case.name, "day": day.name, "status": f"error: {err}"[:300]}


def _error_row(task, err) -> dict:
    name = task[0].name if isinstance(task[0], Case) else str(task[0])
    return {"case": name, "day": f"{task[1]}#{task[2]}", "status": f"worker_error: {err!r}"[:300]}


def compute(case_name: str | Path | Case = "ieee33-mop", split: str = "test", out: str | Path | None = None,
            time_limit: float = DEFAULT_TIME_LIMIT, gap: float = DEFAULT_GAP, backend: str = "local",
            workers: int | None = None, limit: int | None = None, retry: bool = False,
            progress: bool = True, address: str | None = None) -> dict[str, dict]:
    """Prove the optimum of every day of `split` and append a row per day to `out` (default: the
    case's shipped table) as each finishes; returns the table's rows. `case_name`: a shipped case's
    name, a case file's path or a `Case` object (which, like a file, needs `out`).

    Days already in `out` for this case's data are skipped (resume), unless their certificate failed
    its verification; `retry` solves again those whose status is not "optimal" (e.g. with a longer
    `time_limit`). A day that fails gives no row (its
    status is printed) and is tried again by the next run. backend/workers: as the benchmark's
    (`benchmark.run`): local processes sharing the cores, "serial", or Ray (`address`: the running
    cluster to join, default RAY_ADDRESS, else a local instance).
    """
    from .benchmark import case_reference, select_days
    from .parallel import check_backend, execute

    check_backend(backend, address)
    if split not in SPLITS:
        raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
    if not (time_limit > 0 and 0 < gap < 1):
        raise ValueError(f"time_limit > 0 s and 0 < gap < 1 needed, got {time_limit!r}, {gap!r}")
    case, ref = case_reference(case_name)
    out = shipped_table(ref, case) if out is None else Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pool = select_days(case, split)
    chosen = select_days(case, split, limit)
    index = {d.name: i for i, d in enumerate(pool)}
    have = read_table(out)
    if out.exists() and out.stat().st_size:  # drop a line cut short by a killed run before appending
        text = out.read_text()
        if not text.endswith("\n"):
            out.write_text(text[: text.rfind("\n") + 1])

    def done(day):
        row = have.get(day.name)
        return (row is not None and row.get("case_fingerprint") == case.fingerprint and row.get("verified", False)
                and row.get("day_hash") == day_hash(day) and not (retry and row.get("status") != "optimal"))

    tasks = [(ref, split, index[d.name], time_limit, gap) for d in chosen if not done(d)]
    for row in execute(_worker, tasks, backend, workers, progress, desc=f"optima {split}", error_row=_error_row,
                       address=address):
        if "prices" not in row:
            print(f"{row.get('day')}: {row.get('status')} (no row written; a rerun tries again)", flush=True)
            continue
        # opened per row: a file replaced meanwhile (an editor, a git checkout) still gets every row
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if progress:
            print(f"{row['day']}: {row['status']}, J* {row['objective']:.2f} ¥, gap {row['gap']:.1e}, "
                  f"{row['solve_time']:.0f} s", flush=True)
    return read_table(out)


def merge(out: str | Path, *sources: str | Path, case: Case | None = None) -> dict[str, dict]:
    """Fold other runs' tables (`sources`, e.g. a `--retry` elsewhere or a Ray cluster's) into the
    table `out` and rewrite it with one row per day, each the best certificate of all its runs
    (`data.optimum_table.combine_rows`); returns the rows. Days keep their order in `out`, new days
    follow. Everything is checked before a byte is written: every row of every table against the
    schema (`read_table`), and, with `case` (the command line always gives it), every row's case
    name and fingerprint and its day's hash against that case's own days; ValueError names the file
    and day. Also refused: two tables holding a day made for different data, an `out` that is a
    directory. The file is replaced in one step (written beside it, then renamed), so a refused or
    interrupted merge leaves `out` as it was."""
    out = _validate.writable_path("merge: --out", out)
    paths = [_validate.path(f"merge: sources[{i}]", source) for i, source in enumerate(sources)]
    if out.exists() and not out.is_file():
        raise ValueError(f"merge: --out {out} is a directory, not a table file")
    for path in paths:
        if not path.is_file():
            raise ValueError(f"merge: no table at {path}" + (" (a directory)" if path.is_dir() else ""))
    by_day: dict[str, list[tuple[Path, dict]]] = {}
    known = _case_days(case) if case is not None else None
    for path in (out, *paths):
        for day, row in read_table(path).items():
            if known is not None:
                _check_case_row(case, known, path, day, row)
            by_day.setdefault(day, []).append((path, row))
    for day, found in by_day.items():
        (first, a), *rest = found
        for path, b in rest:
            if row_data(a) != row_data(b):
                raise ValueError(f"merge: day {day!r} in {path} was made for other case or day data than in {first}")
    merged = {}
    for day, found in by_day.items():
        distinct = list({json.dumps(row, sort_keys=True): row for _, row in found}.values())  # a table merged twice
        merged[day] = combine_rows(distinct)
    tmp = out.with_name(out.name + ".merging")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("".join(json.dumps(row) + "\n" for row in merged.values()))
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"merge: --out {out} cannot be written ({err.strerror or err})") from None
    return merged


def shipped_table(case_name: str | Case, case: Case) -> Path:
    """The shipped table of a shipped case; a case loaded from a file gets none (ValueError asking for
    ``--out``): a file that `extends` a shipped case keeps its name, and its rows would otherwise land
    in, and hide, the shipped case's table."""
    from ..cases import available_cases

    if isinstance(case_name, Case):
        raise ValueError(f"out: case {case.name!r} is a Case object; name the table its rows go to")  # noqa: TRY004
    if str(case_name) not in available_cases():
        raise ValueError(f"--out: case {str(case_name)!r} is a case file; name the table its rows go to (shipped "
                         "tables belong to shipped cases, and a file may share a shipped case's name)")
    return table_path(case.name)


def _case_days(case: Case) -> dict[str, Day]:
    """{day name: Day} of every day of the case (all splits and the reference day)."""
    from ..data import days, reference_day

    out = {reference_day(case).name: reference_day(case)}
    for split in ("train", "val", "test"):
        out |= {d.name: d for d in days(case, split)}
    return out


def _check_case_row(case: Case, known: dict[str, Day], path: Path, day: str, row: dict) -> None:
    """ValueError unless `row` (of `path`) was made for `case` and for its day `day`'s data, and, for a
    solved row, passes what `optimum` checks before it uses one (`checked_optimum`: its split, its MOP
    set-points, its prices within the day's rules): a merge never writes a row `optimum` would refuse."""
    if "mop_setpoints" in row and np.shape(row["mop_setpoints"]) != (2, len(case.mop), 24):
        raise ValueError(f"merge: {path}: day {day!r}: mop_setpoints: expected 2 x {len(case.mop)} x 24 for case "
                         f"{case.name!r}, got {' x '.join(map(str, np.shape(row['mop_setpoints'])))}")
    if row.get("case") != case.name or ("case_fingerprint" in row and row["case_fingerprint"] != case.fingerprint):
        raise ValueError(f"merge: {path}: day {day!r} was made for case {row.get('case')!r} (fingerprint "
                         f"{row.get('case_fingerprint')}), not for {case.name!r} ({case.fingerprint})")
    if day not in known:
        raise ValueError(f"merge: {path}: day {day!r} is not a day of case {case.name!r}")
    if "day_hash" in row and row["day_hash"] != day_hash(known[day]):
        raise ValueError(f"merge: {path}: day {day!r} was made for other day data (hash {row['day_hash']}, "
                         f"the case's day {day_hash(known[day])})")
    if row.get("objective") is not None:
        try:
            checked_optimum(case, known[day], row, path)
        except ValueError as err:
            raise ValueError(f"merge: {err}") from None


def table_summary(rows: dict[str, dict]) -> dict:
    """Coverage and solve times of a table: days, optimal days, median and max gap and solve time."""
    vals = [r for r in rows.values() if r.get("gap") is not None and r.get("solve_time") is not None]
    if not vals:
        return {"days": len(rows), "optimal": 0} if rows else {"days": 0}
    gaps = np.array([r["gap"] for r in vals], float)
    times = np.array([r["solve_time"] for r in vals], float)
    return {"days": len(vals), "optimal": sum(r["status"] == "optimal" for r in vals),
            "median_gap": float(np.median(gaps)), "max_gap": float(gaps.max()),
            "median_time": float(np.median(times)), "max_time": float(times.max())}


__all__ = ["DEFAULT_GAP", "DEFAULT_TIME_LIMIT", "compute", "merge", "solve_row", "table_summary", "time_to_gap"]
