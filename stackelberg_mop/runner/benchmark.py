"""The benchmark: every pricing policy scored by `evaluate` on held-out days, rows written as they come.

    rows = run(["flat", "fixed_point", "agent:results/train/ppo", my_policy], split="test",
               out="results/benchmark/rows.csv", backend="local")
    table = report.report(rows)         # aggregate regret against the optimum, with its interval

The shipped optimum ("optimum") and the tariff ("tariff") are always scored beside the policies asked
for (a table look-up and one `evaluate` per day): they are the yardstick (`yardstick`), so the report's
aggregate regret is never missing for want of them.

One row per (policy, day) is appended to the CSV the moment it is scored, so an interrupted run
loses nothing and a rerun skips what is there (resume). Each row carries a fingerprint of what
produced it (`row_fingerprint`: the case data, the policy spec, an agent's model files or the optimum
table, the package version); a rerun reuses only rows whose fingerprint matches and moves the others
to ``<out>.stale.csv``, so a benchmark of a changed case or a retrained agent never reports old
numbers. Local workers die with the process that started them (a killed run leaves none behind). Work runs on local processes by default
(`backend="local"`), in this process (`"serial"`), or on Ray (`"ray"`: joins the running cluster at
`address`, else at RAY_ADDRESS, with at most `workers` tasks in flight, or starts a local instance;
`parallel.check_backend`).

Policies are named by specs, built inside each worker: "tariff", "flat" or "flat:<¥/MWh>",
"fixed_point", "admm" (the clearing prices projected onto the price rules; "admm:raw" unprojected),
"kkt" (the bi-level optimum, when `bilevel.kkt` is available), "optimum" or ``"optimum:<table.jsonl>"``
(the shipped optimum) and ``"agent:<run_dir>"`` (a trained agent of either game, `policies.agent.AgentPolicy`:
a day-ahead agent posts its 24 prices, an hourly agent plays the day hour by hour and the day its
hours made is scored).

Any Python policy can be benchmarked too: a `policies.baselines.Policy` (its ``decide(case, day)``
returns (prices, mop)) or a plain callable ``f(case, day)`` returning prices (24,) / (N, 24) ¥/MWh
or (prices, mop). It runs in this process (no pickling needed) and is named ``"python:<name>"`` (its
``name`` attribute, else its ``__name__``). Its rows are scored anew on every run (its code cannot
tell whether a model it uses was retrained), unless it carries a ``fingerprint`` string, which then
decides their reuse like an agent's files do.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import _validate
from ..cases import Case, load_case
from ..data import Day, OptimumError, days, reference_day
from ..policies.baselines import CallablePolicy, Policy
from ..scoring import evaluate
from .parallel import BACKENDS, check_backend, execute  # noqa: F401 - BACKENDS: benchmark.BACKENDS
from .report import read_rows

FIELDS = ["policy", "day", "status", "dno_objective", "dno_cost", "grid_cost", "revenue", "prosumer_cost",
          "welfare", "violation_rate", "price_violation", "max_relaxation_gap", "decision_time", "details",
          "prices", "fingerprint"]


def make_policy(spec: str):
    """A policy object from its spec (see the module docstring); ValueError names an unknown spec."""
    from ..policies import baselines as policies

    name, _, arg = spec.partition(":")
    if ":" in spec and not arg:
        raise ValueError(f"policy {spec!r}: nothing after the ':' (write {name!r} for the default)")
    if arg and name in ("tariff", "fixed_point", "kkt"):
        raise ValueError(f"policy {name!r} takes no option; got {spec!r}")
    if name == "tariff":
        return policies.TariffPolicy()
    if name == "flat":
        if not arg:
            return policies.FlatPolicy(None)
        return policies.FlatPolicy(policies.flat_price(arg, f"policy {spec!r}"))
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
        if arg:
            from ..data.optimum_table import read_table

            read_table(arg)  # every row checked now, not one day at a time
        return policies.ShippedOptimumPolicy(arg or None)
    if name == "agent":
        if not arg:
            raise ValueError("policy 'agent:<run_dir>': the run folder is missing")
        if not (Path(arg) / "config.json").is_file():
            raise ValueError(f"policy 'agent:<run_dir>': {arg!r} is not a training run folder (no config.json)")
        from ..policies.agent import AgentPolicy

        return AgentPolicy(arg)
    raise ValueError(f"policy: unknown spec {spec!r}; use tariff, flat[:price], fixed_point, admm[:raw], kkt, "
                     "optimum[:table.jsonl], agent:<run_dir>")


def _file_hashes(paths) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(paths) if p.is_file()]


def row_fingerprint(case: Case, spec: str) -> str:
    """What a benchmark row depends on, hashed: the case's data (`Case.fingerprint`), the policy spec,
    the files an agent or the shipped optimum is read from, and the package version."""
    from .._version import __version__
    from ..data.optimum_table import table_path

    name, _, arg = spec.partition(":")
    files = []
    if name == "agent":
        from ..policies.agent import agent_files

        files = agent_files(Path(arg))
    elif name == "optimum":
        files = [Path(arg) if arg else table_path(case.name)]
    text = json.dumps([case.fingerprint, spec, _file_hashes(files), __version__])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def select_days(case: Case, split: str, limit: int | None = None) -> list[Day]:
    """The days of `split` ("test", "val", "train" or "reference"); `limit` evenly spaced ones."""
    _validate.choice("split", split, ("test", "val", "train", "reference"))
    if limit is not None:
        limit = _validate.integer("limit", limit, lo=1)
    pool = [reference_day(case)] if split == "reference" else days(case, split)
    if limit is not None and limit < len(pool):
        pool = [pool[i] for i in np.linspace(0, len(pool) - 1, limit).round().astype(int)]
    return pool


def score(case: Case, day: Day, spec: str, policy=None) -> dict:
    """One benchmark row: the policy's decision on `day`, scored by `evaluate` (with the followers'
    own day where the policy reports one, ``policy.response``: an hourly agent's). A policy or solver
    that fails gives a row with its status, never an exception."""
    row = {"policy": spec, "day": day.name}
    try:
        policy = make_policy(spec) if policy is None else policy
        prices, mop = policy(case, day)
        out = evaluate(case, day, prices, mop=mop, response=getattr(policy, "response", None))
    except (ValueError, RuntimeError, ArithmeticError, OptimumError) as err:  # bad prices, solver trouble,
        # or a day the shipped optimum table does not hold
        return row | {"status": f"policy_error: {err}"[:300]}
    except Exception as err:
        if not spec.startswith("python:"):
            raise
        return row | {"status": f"policy_error: {type(err).__name__}: {err}"[:300]}
    summary = out.summary()
    row.update({k: summary.get(k) for k in FIELDS if k in summary})
    row.update(status=out.status, decision_time=policy.decision_time, details=json.dumps(policy.details or {}),
               prices=json.dumps(np.round(np.asarray(prices), 3).tolist()))
    return row


_CACHE: dict = {}  # per worker process: cases (with their compiled models), days and policies


class CaseFile(NamedTuple):
    """A case a task names by its shipped name or file path, with the fingerprint of the data the run
    was started on (a file, the files it extends or its network file may change meanwhile)."""

    path: str
    fingerprint: str

    def __str__(self) -> str:
        return self.path


def case_reference(case) -> tuple[Case, CaseFile | Case]:
    """(the case, what a task names it by): a shipped name or case file path is sent to the workers
    as a `CaseFile` (each loads it once), a `Case` object as itself (pickled with the task; a
    generated or edited case needs no file)."""
    from ..cases import as_case

    the_case = as_case(case)
    return the_case, (the_case if isinstance(case, Case) else CaseFile(str(case), the_case.fingerprint))


def cached_case_day(case_ref: CaseFile | Case, split: str, index: int) -> tuple[Case, Day]:
    """A worker's case (loaded once per process, its compiled models kept, and kept by its data's
    fingerprint: a case file whose data changed since the run started, through itself, a file it
    extends or its network file, is refused rather than scored) and day `index` of `split`."""
    key = ("case", case_ref.name if isinstance(case_ref, Case) else case_ref.path, case_ref.fingerprint)
    if key not in _CACHE:
        case = case_ref if isinstance(case_ref, Case) else load_case(case_ref.path)
        if case.fingerprint != case_ref.fingerprint:
            raise ValueError(f"case {str(case_ref)!r}: its data changed since the run started (fingerprint "
                             f"{case.fingerprint}, not {case_ref.fingerprint}); run again")
        _CACHE[key] = case
    case = _CACHE[key]
    if (key, split) not in _CACHE:
        _CACHE[(key, split)] = select_days(case, split)
    return case, _CACHE[(key, split)][index]


def _worker(args):
    case_ref, day_index, split, spec = args
    try:
        case, day = cached_case_day(case_ref, split, day_index)
    except ValueError as err:  # the case file changed since the run started: reported, not scored
        return {"policy": spec, "day": f"{split}#{day_index}", "status": f"case_error: {err}"[:300]}
    try:
        if ("policy", spec) not in _CACHE:
            _CACHE[("policy", spec)] = make_policy(spec)
    except (ValueError, OSError) as err:
        return {"policy": spec, "day": day.name, "status": f"policy_error: {err}"[:200]}
    return score(case, day, spec, _CACHE[("policy", spec)])


#: scored beside every benchmark's policies: the yardstick's J* and J_tariff
YARDSTICK_SPECS = ("optimum", "tariff")


def python_policy(obj) -> tuple[str, Policy]:
    """(spec, policy) of a Python policy: a `Policy` as it is, a callable wrapped (`CallablePolicy`)."""
    if isinstance(obj, type):
        raise ValueError(f"policies: {obj.__name__} is a class; pass an instance, e.g. {obj.__name__}()")  # noqa: TRY004 - bad input is a ValueError
    policy = obj if isinstance(obj, Policy) else CallablePolicy(obj)
    return f"python:{policy.name}", policy


def python_fingerprint(case: Case, spec: str, policy) -> str:
    """What a Python policy's rows depend on. Its code alone does not say (a function may close over a
    model that was retrained since), so by default a fresh token: its rows are scored anew on every
    run. A policy (or function) with a ``fingerprint`` attribute (a string the user changes whenever
    the policy changes, e.g. a checkpoint's hash) has its rows reused while it stays the same."""
    import uuid

    from .._version import __version__

    target = policy.fn if isinstance(policy, CallablePolicy) else policy
    mark = getattr(target, "fingerprint", None)
    if not isinstance(mark, str) or not mark:
        return uuid.uuid4().hex[:16]
    return hashlib.sha256(json.dumps([case.fingerprint, spec, mark, __version__]).encode()).hexdigest()[:16]


def run(policies: list, case: str | Path | Case = "ieee33-mop", split: str = "test", limit: int | None = None,
        out: str | Path = "results/benchmark/rows.csv", backend: str = "local", workers: int | None = None,
        progress: bool = True, address: str | None = None) -> list[dict]:
    """Score every policy on every selected day, appending rows to `out` as they finish; returns all rows.
    `case`: a shipped case's name, a case file's path or a `Case` object.

    (policy, day) pairs already in `out` with a matching fingerprint (`row_fingerprint`) are reused, so
    an interrupted run resumes; rows made by other data (another case, a retrained agent, another
    version) are moved to ``<out>.stale.csv`` first. Returns the rows of `out`, all of this case.
    """
    check_backend(backend, address)  # a bad address or a missing Ray is said before any work
    if workers is not None:
        workers = _validate.integer("workers", workers, lo=1)
    if not isinstance(policies, list | tuple) or not policies:
        raise ValueError(f"policies: expected a non-empty list of policy specs or Python policies, got {policies!r}")
    specs, objects = [], {}
    for k, p in enumerate(policies):  # fail fast on a bad spec, before any work starts
        if isinstance(p, str):
            specs.append(p)
        elif callable(p):
            spec, obj = python_policy(p)
            if spec in objects:
                raise ValueError(f"policies[{k}]: two Python policies are named {spec!r}; give each a `name`")
            objects[spec] = obj
        else:
            raise ValueError(f"policies[{k}]: expected a policy spec (str), a Policy or a callable "  # noqa: TRY004
                             f"(case, day) -> prices, got {p!r}")
    specs = list(dict.fromkeys([*specs, *YARDSTICK_SPECS]))
    built = {spec: make_policy(spec) for spec in specs}
    the_case, case = case_reference(case)
    for policy in built.values():  # a policy that cannot play this case is refused before any work
        checker = getattr(policy, "check", None)
        if checker is not None:
            checker(the_case)
    chosen = select_days(the_case, split, limit)
    index = {d.name: i for i, d in enumerate(select_days(the_case, split))}
    out = writable_file(out, "out")
    prints = {spec: row_fingerprint(the_case, spec) for spec in specs}
    prints |= {spec: python_fingerprint(the_case, spec, obj) for spec, obj in objects.items()}
    kept = _drop_stale(out, the_case, prints, progress)
    done = {(r["policy"], r["day"]) for r in kept}
    tasks = [(case, index[d.name], split, spec) for spec in specs for d in chosen if (spec, d.name) not in done]
    local = [(spec, d) for spec in objects for d in chosen if (spec, d.name) not in done]
    if progress and done:
        reused = sum((spec, d.name) in done for spec in [*specs, *objects] for d in chosen)
        print(f"{out}: reusing {reused} finished rows with matching fingerprints, {len(tasks) + len(local)} to score")
    scored = (score(the_case, d, spec, objects[spec]) for spec, d in local)
    for row in itertools.chain(execute(_worker, tasks, backend, workers, progress, "benchmark", _error_row, address),
                               scored):
        row["fingerprint"] = prints.get(row["policy"], "")
        _write_rows(out, [row], append=True)  # opened per row: survives the file being replaced
    if not out.exists():
        _write_rows(out, [], append=False)
    return read_rows(out)


def writable_file(path, name: str) -> Path:
    """`path` as a Path whose folder exists (made if needed); ValueError naming `name` when the path is
    a directory or one of its parents is a file."""
    path = _validate.writable_path(name, path)
    if path.is_dir():
        raise ValueError(f"{name}: {path} is a directory; a file is meant")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _drop_stale(out: Path, case: Case, prints: dict[str, str], progress: bool) -> list[dict]:
    """The rows of `out` whose fingerprint matches what would make them now (`prints`: policy spec →
    fingerprint, filled in here for the other policies of the file); the others (and rows of an
    older layout, without one) are appended to ``<out>.stale.csv`` and `out` is rewritten without
    them (atomically: a kill meanwhile leaves the old file)."""
    rows = read_rows(out)
    for r in rows:
        if r["policy"] not in prints:  # another run's policy: judged by its own spec (a Python policy: kept)
            prints[r["policy"]] = (r.get("fingerprint") if r["policy"].startswith("python:")
                                   else row_fingerprint(case, r["policy"]))
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
