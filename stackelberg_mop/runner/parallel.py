"""Running a function over many tasks: in this process ("serial"), on a pool of local processes ("local",
each given its share of the cores) or on a Ray cluster ("ray"); results come back as they finish, a
task that raises becomes an error row, and workers die with their parent. The benchmark and the
optimum tables share it."""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from .._system import available_cpus

BACKENDS = ("local", "serial", "ray")


def _result(get, task, error_row) -> dict:
    """A worker's row; a worker that crashed gives a row saying so, and the run goes on."""
    try:
        return get()
    except Exception as err:  # noqa: BLE001 - reported in the row, the other rows still come
        return error_row(task, err)


def _share_cores(threads: int, parent: int | None = None) -> None:
    """A worker's initialiser: the default number of solver threads, unless the user set it; and the
    worker dies with its parent (`die_with_parent`)."""
    from ..bilevel.kkt import THREADS_ENV

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


def execute(fn, tasks: list, backend: str, workers: int | None, progress: bool, desc: str, error_row):
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
