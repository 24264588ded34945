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
