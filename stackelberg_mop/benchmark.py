"""The benchmark: every pricing policy scored by `evaluate` on held-out days, rows written as they come.

    rows = run(["tariff", "flat", "fixed_point", "kkt", "agent:results/train/ppo"], split="test",
               out="results/benchmark/rows.csv", backend="local")
    table = report("results/benchmark/rows.csv")

One row per (policy, day) is appended to the CSV the moment it is scored, so an interrupted run
loses nothing and a rerun skips what is there (resume). Each row carries a fingerprint of what
produced it (`row_fingerprint`: the case data, the policy spec, an agent's model files or the optimum
table, the package version); a rerun reuses only rows whose fingerprint matches and moves the others
to ``<out>.stale.csv``, so a benchmark of a changed case or a retrained agent never reports old
numbers. Local workers die with the process that started them (a killed run leaves none behind). Work runs on local processes by default
(`backend="local"`), in this process (`"serial"`), or on a Ray cluster (`"ray"`: `ray.init()` joins
the cluster named by RAY_ADDRESS, or starts a local one).

Policies are named by specs, built inside each worker: "tariff", "flat" or "flat:<¥/MWh>",
"fixed_point", "admm" (the clearing prices projected onto the price rules; "admm:raw" unprojected),
"kkt" (the bi-level optimum, when `baselines.kkt` is available) and
"agent:<run_dir>" (a trained day-ahead agent, `rl.common.AgentPolicy`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from . import checks
from ._system import available_cpus
from .cases import Case, load_case
from .data import Day, OptimumError, days, reference_day
from .evaluate import evaluate

FIELDS = ["policy", "day", "status", "dno_objective", "dno_cost", "grid_cost", "revenue", "prosumer_cost",
          "welfare", "violation_rate", "price_violation", "max_relaxation_gap", "decision_time", "details",
          "prices", "fingerprint"]
BACKENDS = ("local", "serial", "ray")


def make_policy(spec: str):
    """A policy object from its spec (see the module docstring); ValueError names an unknown spec."""
    from .baselines import policies

    name, _, arg = spec.partition(":")
    if name == "tariff":
        return policies.TariffPolicy()
    if name == "flat":
        if not arg:
            return policies.FlatPolicy(None)
        try:
            price = float(arg)
        except ValueError:
            price = float("nan")
        if not np.isfinite(price):
            raise ValueError(f"policy 'flat:<price>': expected a finite price in ¥/MWh, got {arg!r}")
        return policies.FlatPolicy(price)
    if name == "fixed_point":
        return policies.FixedPointPolicy()
    if name == "admm":
        if arg not in ("", "raw"):
            raise ValueError(f"policy 'admm[:raw]': unknown option {arg!r}")
        return policies.ADMMPolicy(project=arg != "raw")
    if name == "kkt":
        return policies.KKTOptimumPolicy()
    if name == "optimum":
        if arg and not Path(arg).is_file():
            raise ValueError(f"policy 'optimum:<table.jsonl>': no table at {arg!r}")
        return policies.ShippedOptimumPolicy(arg or None)
    if name == "agent":
        if not arg:
            raise ValueError("policy 'agent:<run_dir>': the run folder is missing")
        if not (Path(arg) / "config.json").is_file():
            raise ValueError(f"policy 'agent:<run_dir>': {arg!r} is not a training run folder (no config.json)")
        from .rl.common import AgentPolicy

        return AgentPolicy(arg)
    raise ValueError(f"policy: unknown spec {spec!r}; use tariff, flat[:price], fixed_point, admm[:raw], kkt, "
                     "optimum[:table.jsonl], agent:<run_dir>")


def _file_hashes(paths) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(paths) if p.is_file()]


def row_fingerprint(case: Case, spec: str) -> str:
    """What a benchmark row depends on, hashed: the case's data (`Case.fingerprint`), the policy spec,
    the files an agent or the shipped optimum is read from, and the package version."""
    from . import __version__
    from .data.optimum_table import table_path

    name, _, arg = spec.partition(":")
    files = []
    if name == "agent":
        run = Path(arg)
        files = [run / "config.json", *run.glob("*.zip"), *run.glob("*_vecnormalize.pkl")]
    elif name == "optimum":
        files = [Path(arg) if arg else table_path(case.name)]
    text = json.dumps([case.fingerprint, spec, _file_hashes(files), __version__])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def select_days(case: Case, split: str, limit: int | None = None) -> list[Day]:
    """The days of `split` ("test", "val", "train" or "reference"); `limit` evenly spaced ones."""
    checks.choice("split", split, ("test", "val", "train", "reference"))
    if limit is not None:
        limit = checks.integer("limit", limit, lo=1)
    pool = [reference_day(case)] if split == "reference" else days(case, split)
    if limit is not None and limit < len(pool):
        pool = [pool[i] for i in np.linspace(0, len(pool) - 1, limit).round().astype(int)]
    return pool


def score(case: Case, day: Day, spec: str, policy=None) -> dict:
    """One benchmark row: the policy's decision on `day`, scored by `evaluate`. A policy or solver that
    fails gives a row with its status, never an exception."""
    row = {"policy": spec, "day": day.name}
    try:
        policy = make_policy(spec) if policy is None else policy
        prices, mop = policy(case, day)
        out = evaluate(case, day, prices, mop=mop)
    except (ValueError, RuntimeError, ArithmeticError, OptimumError) as err:  # bad prices, solver trouble,
        # or a day the shipped optimum table does not hold
        return row | {"status": f"policy_error: {err}"[:300]}
    summary = out.summary()
    row.update({k: summary.get(k) for k in FIELDS if k in summary})
    row.update(status=out.status, decision_time=policy.decision_time, details=json.dumps(policy.details or {}),
               prices=json.dumps(np.round(np.asarray(prices), 3).tolist()))
    return row


_CACHE: dict = {}  # per worker process: cases (with their compiled models), days and policies


def cached_case_day(case_name: str, split: str, index: int) -> tuple[Case, Day]:
    """A worker's case (loaded once per process, its compiled models kept; a case file is loaded
    again when its content changes) and day `index` of `split`."""
    path = Path(case_name)
    key = (case_name, hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "")
    if key not in _CACHE:
        _CACHE[key] = load_case(case_name)
    case = _CACHE[key]
    if (key, split) not in _CACHE:
        _CACHE[(key, split)] = select_days(case, split)
    return case, _CACHE[(key, split)][index]


def _worker(args):
    case_name, day_index, split, spec = args
    case, day = cached_case_day(case_name, split, day_index)
    try:
        if ("policy", spec) not in _CACHE:
            _CACHE[("policy", spec)] = make_policy(spec)
    except (ValueError, OSError) as err:
        return {"policy": spec, "day": day.name, "status": f"policy_error: {err}"[:200]}
    return score(case, day, spec, _CACHE[("policy", spec)])


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def run(policies: list[str], case: str = "ieee33-mop", split: str = "test", limit: int | None = None,
        out: str | Path = "results/benchmark/rows.csv", backend: str = "local", workers: int | None = None,
        progress: bool = True) -> list[dict]:
    """Score every policy on every selected day, appending rows to `out` as they finish; returns all rows.

    (policy, day) pairs already in `out` with a matching fingerprint (`row_fingerprint`) are reused, so
    an interrupted run resumes; rows made by other data (another case, a retrained agent, another
    version) are moved to ``<out>.stale.csv`` first. Returns the rows of `out`, all of this case.
    """
    checks.choice("backend", backend, BACKENDS)
    if workers is not None:
        workers = checks.integer("workers", workers, lo=1)
    if not policies or not all(isinstance(p, str) for p in policies):
        raise ValueError(f"policies: expected a non-empty list of policy specs, got {policies!r}")
    for spec in policies:  # fail fast on a bad spec, before any work starts
        make_policy(spec)
    the_case = load_case(checks.instance("case", case, str, "a shipped case name or a case .json path"))
    chosen = select_days(the_case, split, limit)
    index = {d.name: i for i, d in enumerate(select_days(the_case, split))}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prints = {spec: row_fingerprint(the_case, spec) for spec in policies}
    kept = _drop_stale(out, the_case, prints, progress)
    done = {(r["policy"], r["day"]) for r in kept}
    tasks = [(case, index[d.name], split, spec) for spec in policies for d in chosen if (spec, d.name) not in done]
    if progress and done:
        reused = sum((spec, d.name) in done for spec in policies for d in chosen)
        print(f"{out}: reusing {reused} finished rows with matching fingerprints, {len(tasks)} to score")
    for row in execute(_worker, tasks, backend, workers, progress):
        row["fingerprint"] = prints.get(row["policy"], "")
        _write_rows(out, [row], append=True)  # opened per row: survives the file being replaced
    if not out.exists():
        _write_rows(out, [], append=False)
    return read_rows(out)


def _drop_stale(out: Path, case: Case, prints: dict[str, str], progress: bool) -> list[dict]:
    """The rows of `out` whose fingerprint matches what would make them now (`prints`: policy spec →
    fingerprint, filled in here for the other policies of the file); the others (and rows of an
    older layout, without one) are appended to ``<out>.stale.csv`` and `out` is rewritten without
    them (atomically: a kill meanwhile leaves the old file)."""
    rows = read_rows(out)
    for r in rows:
        if r["policy"] not in prints:
            prints[r["policy"]] = row_fingerprint(case, r["policy"])
    current = [r.get("fingerprint") == prints[r["policy"]] for r in rows]
    if all(current):
        return rows
    kept = [r for r, ok in zip(rows, current) if ok]
    stale = [r for r, ok in zip(rows, current) if not ok]
    stale_path = out.with_name(out.stem + ".stale.csv")
    _write_rows(stale_path, stale, append=True)
    tmp = out.with_name(out.name + ".tmp")
    _write_rows(tmp, kept, append=False)
    os.replace(tmp, out)
    if progress:
        print(f"{out}: moved {len(stale)} rows made by other data (case, policy files or version) to {stale_path}")
    return kept


def _write_rows(path: Path, rows: list[dict], append: bool) -> None:
    header = not (append and path.exists() and path.stat().st_size > 0)
    with path.open("a" if append else "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in FIELDS} for r in rows)


def _error_row(task, err) -> dict:
    """The row of a benchmark task whose worker crashed."""
    _, day_index, split, spec = task
    return {"policy": spec, "day": f"{split}#{day_index}", "status": f"worker_error: {err!r}"[:200]}


def _result(get, task, error_row) -> dict:
    """A worker's row; a worker that crashed gives a row saying so, and the run goes on."""
    try:
        return get()
    except Exception as err:  # noqa: BLE001 - reported in the row, the other rows still come
        return error_row(task, err)


def _share_cores(threads: int, parent: int | None = None) -> None:
    """A worker's initialiser: the default number of solver threads, unless the user set it; and the
    worker dies with its parent (`die_with_parent`)."""
    from .baselines.kkt import THREADS_ENV

    os.environ.setdefault(THREADS_ENV, str(threads))
    if parent is not None:
        die_with_parent(parent)


def die_with_parent(parent: int) -> None:
    """End this process when process `parent` ends, however it ends (SIGKILL included); a spawned
    pool worker otherwise waits on its queue for ever once its parent is killed. On Linux the kernel
    sends SIGKILL (PR_SET_PDEATHSIG: immediate, even inside a solver that holds the GIL; the pool
    starts its workers from the thread that submits, which outlives them); everywhere a daemon
    thread also polls the parent's pid once a second."""
    import threading
    import time

    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() == parent:
        threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


def _pool_layout(workers: int | None) -> tuple[int, int]:
    """(local worker processes, solver threads each): `workers` or one per available CPU, and the
    CPUs shared out among them (at least one thread each)."""
    cpus = available_cpus()
    n = workers or cpus
    return n, max(1, cpus // n)


def _ray_call(fn, task):
    _share_cores(1)
    return fn(task)


def execute(fn, tasks: list, backend: str, workers: int | None, progress: bool, desc: str = "benchmark",
            error_row=_error_row):
    """Yield fn(task) for every task as each finishes: in this process ("serial"), on local spawned
    processes sharing the cores ("local"), or on Ray ("ray"); `fn` must be a module-level function.
    A crashed worker yields error_row(task, exception) instead."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), disable=not progress, desc=desc, unit="row")
    if backend == "serial" or not tasks:
        for t in tasks:
            yield fn(t)
            bar.update()
    elif backend == "local":
        # spawn, not fork: a parent that has run torch (a training run) would deadlock forked workers.
        # The workers share the cores: each solver gets its share of the threads (the KKT optimum)
        n, threads = _pool_layout(workers)
        with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"), initializer=_share_cores,
                                 initargs=(threads, os.getpid())) as pool:
            futures = {pool.submit(fn, t): t for t in tasks}
            for fut in as_completed(futures):
                yield _result(fut.result, futures[fut], error_row)
                bar.update()
    else:
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(_ray_call)  # one CPU per task: one solver thread
        pending = {remote.remote(fn, t): t for t in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            yield _result(lambda ref=ready[0]: ray.get(ref), pending.pop(ready[0]), error_row)
            bar.update()
    bar.close()


# --- the report ------------------------------------------------------------------------------------
#: a KKT day counts as solved when its proven gap J* − LB is at most this share of J_tariff − J* (the
#: yardstick of normalised regret, so every normalised regret is exact to ±5 points), or when it closed
#: its requested relative gap (details status "optimal")
CERTIFICATE_SHARE = 0.05
#: ¥/MWh: a row whose prices break the price rules by more is not compared with the optimum
PRICE_TOLERANCE = 1e-6


def _keeps_rules(row: dict) -> bool:
    """Whether a row's prices keep the price rules (to `PRICE_TOLERANCE`); rows without the column do."""
    value = row.get("price_violation")
    return value in (None, "") or not float(value) > PRICE_TOLERANCE


def _details(row: dict) -> dict:
    try:
        return json.loads(row.get("details") or "{}")
    except json.JSONDecodeError:
        return {}


def _proved(row: dict, tariff_objective: float = float("nan"), share: float = CERTIFICATE_SHARE) -> bool:
    """Whether an optimum's row carries a proof good enough to judge against: its details' status is
    "optimal", or its bound is within `share` × (J_tariff − J*) of its objective. Rows without details
    (a policy that reports no bound) count as proven."""
    details = _details(row)
    if details.get("status", "optimal") == "optimal":
        return True
    try:
        objective, bound = float(row["dno_objective"]), float(details["best_bound"])
    except (KeyError, TypeError, ValueError):
        return False
    return objective - bound <= share * (tariff_objective - objective)


#: the policies that give J* when `report` is not told: the shipped optimum, and on days it does not
#: hold, a "kkt" solve
YARDSTICKS = ("optimum", "kkt")


def default_optimum(rows: list[dict]) -> str:
    """The policy named as J*: "optimum" (the shipped table) if it scored any day, else "kkt"."""
    ok = any(r["policy"] == "optimum" and r["status"].startswith("optimal") for r in rows)
    return "optimum" if ok else "kkt"


def report(rows: list[dict] | str | Path, optimum: str | None = None, tariff: str = "tariff",
           share: float = CERTIFICATE_SHARE) -> list[dict]:
    """Per policy, over the days where the optimum's row is there, scored and proven (`_proved`: its
    solve closed its gap, or its proven gap is at most `share` of J_tariff − J*): mean regret
    J − J* (¥/day, only rows whose prices keep the price rules), the aggregate normalised regret
    Σ_d (J_d − J*_d) / Σ_d (J_tariff,d − J*_d) (well conditioned where the tariff is nearly optimal on
    some days), the mean of the per-day normalised regrets (J − J*)/(J_tariff − J*), mean relative gap
    (J − J*)/|J*|, and means of the DNO objective, DNO cost, prosumer cost, welfare, violation rate,
    decision time. `optimum`: the policy giving J* (default: the shipped table's "optimum" rows, and
    "kkt" rows on the days it did not score). The optimum's own row also gives `proven_days` and `certificate`, the
    mean of its proven gap over J_tariff − J* on all its days. Without optimum rows, regrets are NaN
    and the other columns still come."""
    rows = read_rows(rows) if isinstance(rows, str | Path) else rows
    sources = YARDSTICKS[::-1] if optimum is None else (optimum,)  # later sources win
    optimum = default_optimum(rows) if optimum is None else optimum
    by = {}
    for r in rows:
        by.setdefault(r["policy"], {})[r["day"]] = r
    num = lambda r, k: float(r[k]) if r.get(k) not in (None, "") else float("nan")
    base = {d: num(r, "dno_objective") for d, r in by.get(tariff, {}).items() if r["status"].startswith("optimal")}
    scored = {d: r for src in sources for d, r in by.get(src, {}).items() if r["status"].startswith("optimal")}
    best = {d: num(r, "dno_objective") for d, r in scored.items() if _proved(r, base.get(d, float("nan")), share)}
    certificate = [(num(r, "dno_objective") - float(_details(r).get("best_bound", "nan")))
                   / (base[d] - num(r, "dno_objective")) for d, r in scored.items() if d in base]
    table = []
    for policy, per_day in by.items():
        ok = {d: r for d, r in per_day.items() if r["status"].startswith("optimal")}
        # prices that break the rules (e.g. "admm:raw") are outside the leader's feasible set: no regret
        common = [d for d in ok if d in best and _keeps_rules(ok[d])]
        regret = np.array([num(ok[d], "dno_objective") - best[d] for d in common])
        normal = np.array([(num(ok[d], "dno_objective") - best[d]) / (base[d] - best[d]) for d in common
                           if d in base and base[d] - best[d] > 1e-9])
        with_base = [d for d in common if d in base]
        stakes = sum(base[d] - best[d] for d in with_base)
        aggregate = (sum(num(ok[d], "dno_objective") - best[d] for d in with_base) / stakes
                     if with_base and stakes > 1e-9 else float("nan"))
        rel = np.array([(num(ok[d], "dno_objective") - best[d]) / abs(best[d]) for d in common])
        mean = lambda key, ok=ok: float(np.mean([num(r, key) for r in ok.values()])) if ok else float("nan")
        table.append({"policy": policy, "days": len(per_day), "failed": len(per_day) - len(ok),
                      "days_vs_optimum": len(common),
                      "regret": float(regret.mean()) if regret.size else float("nan"),
                      "aggregate_regret": aggregate,
                      "normalised_regret": float(normal.mean()) if normal.size else float("nan"),
                      "relative_gap": float(rel.mean()) if rel.size else float("nan"),
                      "dno_objective": mean("dno_objective"), "dno_cost": mean("dno_cost"),
                      "prosumer_cost": mean("prosumer_cost"), "welfare": mean("welfare"),
                      "violation_rate": mean("violation_rate"), "decision_time": mean("decision_time")})
        if policy == optimum:
            finite = [c for c in certificate if np.isfinite(c)]
            table[-1].update(proven_days=len(best), certificate=float(np.mean(finite)) if finite else float("nan"))
    return table


def format_report(table: list[dict]) -> str:
    """The report as a text table; the policy column as wide as the longest name (none is cut)."""
    w = max([len("policy")] + [len(t["policy"]) for t in table]) + 2
    head = (f"{'policy':<{w}}{'days':>5}{'fail':>5}{'vs J*':>6}{'regret ¥':>11}{'aggr.':>8}{'norm.':>8}{'rel.gap':>9}"
            f"{'DNO obj ¥':>11}{'DNO cost ¥':>12}{'pros. ¥':>10}{'welfare ¥':>11}{'viol.':>7}{'time s':>9}")
    lines, footer = [head], ""
    for t in table:
        lines.append(f"{t['policy']:<{w}}{t['days']:>5}{t['failed']:>5}{t['days_vs_optimum']:>6}"
                     f"{t['regret']:>11.1f}{t['aggregate_regret']:>8.3f}{t['normalised_regret']:>8.3f}"
                     f"{t['relative_gap']:>9.2e}"
                     f"{t['dno_objective']:>11.1f}{t['dno_cost']:>12.1f}{t['prosumer_cost']:>10.1f}"
                     f"{t['welfare']:>11.1f}{t['violation_rate']:>7.3f}{t['decision_time']:>9.3f}")
        if "proven_days" in t:
            footer = (f"{t['policy']}: proven on {t['proven_days']} of {t['days']} days (solve closed its gap, or "
                      f"proven gap <= {CERTIFICATE_SHARE:.0%} of J_tariff - J*); mean proven gap = "
                      f"{t['certificate']:.1%} of J_tariff - J*")
    return "\n".join(lines + ([footer] if footer else []))


def per_day_markdown(rows: list[dict] | str | Path, optimum: str | None = None, tariff: str = "tariff",
                     share: float = CERTIFICATE_SHARE) -> str:
    """The per-day table of RESULTS.md (markdown): for each day `report` judges (the optimum's row
    scored and proven), J* ¥, its proven gap (J* − bound)/|J*|, J_tariff − J* ¥, and per policy other
    than these two the normalised regret (J − J*)/(J_tariff − J*), "fail" for a failed solve and
    "rules" for prices outside the price rules."""
    rows = read_rows(rows) if isinstance(rows, str | Path) else rows
    optimum = default_optimum(rows) if optimum is None else optimum
    by = {}
    for r in rows:
        by.setdefault(r["policy"], {})[r["day"]] = r
    base = {d: float(r["dno_objective"]) for d, r in by.get(tariff, {}).items() if r["status"].startswith("optimal")}
    best = {d: r for d, r in by.get(optimum, {}).items()
            if r["status"].startswith("optimal") and d in base and _proved(r, base[d], share)}
    others = [p for p in by if p not in (optimum, tariff)]
    lines = ["| day | J* ¥ | proven gap | J_tariff − J* ¥ | " + " | ".join(others) + " |",
             "|---" * (4 + len(others)) + "|"]
    for d in sorted(best):
        j = float(best[d]["dno_objective"])
        bound = _details(best[d]).get("best_bound")
        gap = f"{(j - float(bound)) / abs(j):.1e}" if bound is not None else "–"
        cells = []
        for p in others:
            r = by[p].get(d)
            if r is None:
                cells.append("")
            elif not r["status"].startswith("optimal"):
                cells.append("fail")
            elif not _keeps_rules(r):
                cells.append("rules")
            else:
                stakes = base[d] - j
                cells.append(f"{(float(r['dno_objective']) - j) / stakes:.2f}" if stakes > 1e-9 else "–")
        lines.append(f"| {d} | {j:,.1f} | {gap} | {base[d] - j:,.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- plots -----------------------------------------------------------------------------------------
def plot_benchmark(rows: list[dict] | str | Path, out_dir: str | Path, optimum: str | None = None, tariff: str = "tariff",
                   runs: list[str | Path] = (), price_days: int = 3) -> list[Path]:
    """Write the benchmark's figures to `out_dir`; returns their paths.

    gaps.png: per policy, the distribution over days of the normalised regret (J − J*)/(J_tariff − J*)
    over the days `report` judges (proven optimum, prices within the rules) when optimum rows exist,
    else of J − J_tariff (¥/day). prices.png: each policy's prices against the
    optimum's (or the tariff's) on `price_days` days spread evenly over the judged ones. learning_curves.png: mean validation reward
    against timesteps for each training run folder in `runs` (its evaluations.csv).
    """
    from matplotlib.figure import Figure  # no pyplot: works without a display

    from .envs.render import legend_outside

    rows = read_rows(rows) if isinstance(rows, str | Path) else rows
    optimum = default_optimum(rows) if optimum is None else optimum
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ok = [r for r in rows if r["status"].startswith("optimal")]
    by = {}
    for r in ok:
        by.setdefault(r["policy"], {})[r["day"]] = r
    reference = optimum if optimum in by else tariff
    base = {d: float(r["dno_objective"]) for d, r in by.get(tariff, {}).items()}
    # the same days and rows as `report`: proven optimum days, prices within the rules
    ref = {d: float(r["dno_objective"]) for d, r in by.get(reference, {}).items()
           if reference != optimum or _proved(r, base.get(d, float("nan")))}
    for per_day in by.values():
        for d in [d for d, r in per_day.items() if not _keeps_rules(r)]:
            del per_day[d]
    paths = []

    fig = Figure(figsize=(10, 4.5), dpi=90, layout="constrained")
    ax = fig.subplots()
    names, data = [], []
    for policy, per_day in by.items():
        if policy == reference:
            continue
        if reference == optimum:
            vals = [(float(r["dno_objective"]) - ref[d]) / (base[d] - ref[d]) for d, r in per_day.items()
                    if d in ref and d in base and base[d] - ref[d] > 1e-9]
        else:
            vals = [float(r["dno_objective"]) - ref[d] for d, r in per_day.items() if d in ref]
        if vals:
            names.append(policy)
            data.append(vals)
    if data:
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20, fontsize=8)
    ax.axhline(0, color="0.5", lw=0.8, label="the optimum (regret 0)" if reference == optimum
               else f"{reference} (difference 0)")
    legend_outside(ax)
    ax.set_ylabel("normalised regret (J − J*)/(J_tariff − J*)" if reference == optimum
                  else f"J − J_{reference} (¥/day)")
    ax.set_title("gap to the " + ("bi-level optimum" if reference == optimum else "tariff pass-through"))
    paths.append(out / "gaps.png")
    fig.savefig(paths[-1])

    judged = sorted(ref)
    chosen = [judged[i] for i in np.linspace(0, len(judged) - 1, min(price_days, len(judged))).round().astype(int)]
    if chosen:
        fig = Figure(figsize=(12, 3.4 * len(chosen)), dpi=80, layout="constrained")
        axes = np.atleast_1d(fig.subplots(len(chosen), 1, squeeze=False)[:, 0])
        for ax, d in zip(axes, chosen):
            for policy, per_day in by.items():
                if d in per_day:
                    p = np.asarray(json.loads(per_day[d]["prices"]), dtype=float)
                    p = p.mean(axis=0) if p.ndim == 2 else p
                    style = {"color": "k", "lw": 2.5} if policy == reference else {"lw": 1.2}
                    ax.step(np.arange(24), p, where="mid", label=policy, **style)
            ax.set(title=f"day {d}", ylabel="¥/MWh")
            legend_outside(ax)
        axes[-1].set_xlabel("hour")
        paths.append(out / "prices.png")
        fig.savefig(paths[-1])

    curves = [(Path(r), read_rows(Path(r) / "evaluations.csv")) for r in runs]
    curves = [(r, c) for r, c in curves if c]
    if curves:
        fig = Figure(figsize=(9, 4), dpi=90, layout="constrained")
        ax = fig.subplots()
        for run, c in curves:
            ax.plot([int(x["timesteps"]) for x in c], [float(x["mean_reward"]) for x in c], marker="o", label=run.name)
        ax.set(xlabel="timesteps", ylabel="mean validation reward", title="learning curves")
        legend_outside(ax, fontsize=8)
        paths.append(out / "learning_curves.png")
        fig.savefig(paths[-1])
    return paths
