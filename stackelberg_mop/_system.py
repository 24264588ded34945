"""What the machine gives this process."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the OS has one (Linux; a container
    or `taskset` may restrict it below the machine's count), else `os.cpu_count()`; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: the environment variable that sets how many threads this process's solvers use (SCIP's concurrent
#: solve, the dispatch's hour-by-hour solves); the benchmark's workers set it to their share of the cores
THREADS_ENV = "STACKELBERG_MOP_THREADS"


def threads_from_env() -> int | None:
    """`THREADS_ENV`'s value, None when it is unset or empty; anything but a positive whole number is
    an error that names the variable."""
    env = os.environ.get(THREADS_ENV, "").strip()
    if not env:
        return None
    if not (env.isascii() and env.isdigit()) or int(env) < 1:
        raise ValueError(f"{THREADS_ENV}={env!r}: must be a positive integer")
    return int(env)
