"""The threads that solve the hours of a day's dispatch (Clarabel releases the GIL while it iterates)."""

from __future__ import annotations

import os

from .. import _validate
from .._system import available_cpus, threads_from_env

_threads: int | None = None
_pools: dict = {}


def dispatch_threads() -> int:
    """How many threads solve the hours of a day's dispatch: `set_dispatch_threads`'s value, else the
    environment variable STACKELBERG_MOP_THREADS (which sets SCIP's threads too), else 2 where this
    process may use two or more cores (1 otherwise). Two threads take the day's 24 hour solves from
    ~13 to ~7 ms (the lab notebook); set 1 where every core already runs a process of its own
    (AsyncVectorEnv, SubprocVecEnv; the benchmark's and `optima`'s workers set their share themselves).
    The answer does not depend on it."""
    if _threads is not None:
        return _threads
    env = threads_from_env()
    return env if env is not None else min(2, available_cpus())


def set_dispatch_threads(threads: int | None) -> None:
    """Set the number of threads of the day's dispatch for this process (None: back to the default)."""
    global _threads
    _threads = None if threads is None else _validate.integer("threads", threads, lo=1)


def thread_pool(k: int):
    """The process's pool of k threads (made on first use; a forked child makes its own)."""
    from concurrent.futures import ThreadPoolExecutor

    key = (k, os.getpid())
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(k, thread_name_prefix="dispatch")
    return _pools[key]
