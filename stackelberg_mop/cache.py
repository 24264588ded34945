"""The package's one cache: what is built once from a case and re-used by every later call on it.

Building a solver model costs 40 ms to 1.5 s (cvxpy's compilation of the day's SOCP, the
followers' QPs, ADMM's blocks), re-solving it with new parameters a few ms; the feeder's matrices
and the scaled or scenario variants of a case are derived once too. All of it lives in one place:
a dict on the case object, ``case.__dict__["_cache"]``, one per case and per process (a `Case` is
immutable, so nothing built from it goes stale; `Case.replace` makes a new case with an empty
cache; pickling drops it, and a worker rebuilds what it needs).

What an entry holds may depend only on the case: models whose every day-dependent input is a
parameter set before each solve, never the last day or answer (a test runs the same calls in two
orders and compares the answers bit for bit). Entries, by name:

| name | built by | what |
|---|---|---|
| ``feeder`` | `powerflow.network.feeder` | the radial tree's matrices |
| ``ac_net`` | `powerflow.ac` | the pandapower network of the AC check |
| ``dispatch_models`` | `powerflow.dispatch_model` | {(formulation, mop, limits, hours): DispatchModel} |
| ``battery_qps`` | `market.follower` | one battery QP per battery (the exact solve's fallback) |
| ``observation_scales`` | `envs.observation` | the observation's normalising constants |
| ``scenario_cases`` | `scenarios.scenario_case` | {scenario: the case as it sees it} |
| ``admm_dno_models``, ``admm_prosumers`` | `algorithms.admm` | ADMM's DNO and prosumer blocks |
| ``p2p_<kind>`` | `market.p2p` | {market key: P2P models} |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
ATTRIBUTE = "_cache"


def _entries(case) -> dict[str, Any]:
    return case.__dict__.setdefault(ATTRIBUTE, {})


def cached(case, name: str, build: Callable[[], T]) -> T:
    """The entry `name` of `case`'s cache, built by `build()` the first time."""
    entries = _entries(case)
    if name not in entries:
        entries[name] = build()
    return entries[name]


def share(target, source, *names: str) -> None:
    """Let `target` use `source`'s entries `names` (those `source` has), e.g. a case that differs
    from `source` only in the prosumers' parameters shares its network models."""
    have = _entries(source)
    _entries(target).update({n: have[n] for n in names if n in have})


def names(case) -> list[str]:
    """The entries built so far for `case`."""
    return sorted(_entries(case))


def clear(case) -> None:
    """Drop everything built for `case` (the next call rebuilds it)."""
    _entries(case).clear()
