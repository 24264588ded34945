"""Running a function over many tasks: in this process ("serial"), on a pool of local processes ("local",
each given its share of the cores) or on Ray ("ray"); results come back as they finish, a task that
raises becomes an error row, and workers die with their parent. The benchmark and the optimum tables
share it.

Ray (`pip install 'stackelberg-mop[cluster]'`): with an address (the `address` argument, else the
RAY_ADDRESS environment variable) the run joins that running cluster, "HOST:PORT" of its head (what
`ray start --head` prints), "ray://HOST:PORT" (Ray Client) or "auto" (the cluster `ray start` left on
this machine), and `workers` caps how many tasks are in flight at once; without one it starts a
local Ray instance of `workers` CPUs. A cluster with token authentication also needs RAY_AUTH_MODE=token
and its token here (docs/benchmark.md, "On a Ray cluster").
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import socket
from concurrent.futures import ProcessPoolExecutor, as_completed

from .. import _validate
from .._system import available_cpus

BACKENDS = ("local", "serial", "ray")
#: seconds to wait for a cluster's head to accept a connection before saying it cannot be reached
REACH_TIMEOUT = 10.0
INSTALL_RAY = "pip install 'stackelberg-mop[cluster]'"


class ClusterError(RuntimeError):
    """The Ray backend cannot run: Ray is not installed, or the cluster cannot be joined."""


def check_backend(backend: str, address: str | None = None) -> str | None:
    """Check a run's backend and Ray address before any work starts; returns the cluster to join:
    `address`, else RAY_ADDRESS (when set and not empty), else None (start a local Ray instance).
    ValueError for an unknown backend, an address that is not a non-empty string of the form
    "HOST:PORT", "ray://HOST:PORT", "auto" or "local", or an address with another backend than "ray";
    `ClusterError` when the "ray" backend is asked for and Ray is not installed."""
    _validate.choice("backend", backend, BACKENDS)
    if address is not None:
        _check_address("address", address)
        if backend != "ray":
            raise ValueError(f"address: joins a Ray cluster, for backend 'ray' only, got backend {backend!r}")
    if backend != "ray":
        return None
    _import_ray()
    if address is None and os.environ.get("RAY_ADDRESS", "").strip():
        address = _check_address("RAY_ADDRESS", os.environ["RAY_ADDRESS"])
    return None if address is None else address.strip()


def _check_address(name: str, address) -> str:
    """`address` if it names a Ray cluster; ValueError naming `name` otherwise."""
    _validate.instance(name, address, str, "a Ray cluster address, HOST:PORT")
    text = address.strip()
    if not text:
        raise ValueError(f"{name}: expected a Ray cluster address, HOST:PORT, got an empty string")
    if text not in ("auto", "local"):
        host, port = _host_port(text)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{name}: expected HOST:PORT (e.g. 10.0.0.5:6379, what `ray start --head` "
                             f"prints), 'ray://HOST:PORT', 'auto' or 'local', got {address!r}")
    return address


def _host_port(address: str) -> tuple[str, str]:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host.strip("[]"), port


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ClusterError(f"backend 'ray' needs Ray, which is not installed: {INSTALL_RAY}") from err
    return ray


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


def _auth_hint() -> str:
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token":
        return ("; token authentication is on here (RAY_AUTH_MODE=token): check that RAY_AUTH_TOKEN, the file "
                "RAY_AUTH_TOKEN_PATH names or ~/.ray/auth_token holds the cluster's token")
    return ("; a cluster with token authentication also needs RAY_AUTH_MODE=token here, and its token in "
            "RAY_AUTH_TOKEN, a file RAY_AUTH_TOKEN_PATH names or ~/.ray/auth_token (docs/benchmark.md, "
            "'On a Ray cluster')")


def _join(ray, address: str | None, workers: int | None) -> None:
    """Start a local Ray instance of `workers` CPUs (address None or "local"), or join the cluster at
    `address` (its resources are its own); `ClusterError` naming the address when it cannot be joined."""
    if address in (None, "local"):  # "local": not a cluster `ray start` left running on this machine
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
        return
    if address != "auto":  # Ray retries an unreachable head for minutes: ask it first, briefly
        host, port = _host_port(address)
        try:
            socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT).close()
        except OSError as err:
            raise ClusterError(f"Ray cluster at {address!r}: cannot be reached ({err}); is its head running "
                               f"(`ray start --head --port={port}`) and the port open?") from err
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError, ray.exceptions.RayError) as err:
        raise ClusterError(f"Ray cluster at {address!r}: could not join it ({err}){_auth_hint()}") from err


def _connect(address: str | None, workers: int | None):
    """Ray, initialised (`_join`) unless this process already is (its own ray.init() then stands)."""
    address = check_backend("ray", address)
    ray = _import_ray()
    if not ray.is_initialized():
        _join(ray, address, workers)
    return ray


def _ray_rows(ray, fn, tasks: list, workers: int | None, error_row):
    """fn(task) of every task on Ray as each finishes, at most `workers` in flight (all when None)."""
    remote = ray.remote(_ray_call)  # one CPU per task: one solver thread
    todo, pending = iter(tasks), {}

    def submit(n: int) -> None:
        for t in itertools.islice(todo, n):
            pending[remote.remote(fn, t)] = t

    submit(workers or len(tasks))
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        task = pending.pop(ready[0])
        submit(1)  # the next task goes before this row is handed over: the cluster stays busy
        yield _result(lambda ref=ready[0]: ray.get(ref), task, error_row)


def execute(fn, tasks: list, backend: str, workers: int | None, progress: bool, desc: str, error_row,
            address: str | None = None):
    """Yield fn(task) for every task as each finishes: in this process ("serial"), on local spawned
    processes sharing the cores ("local"), or on Ray ("ray": the cluster at `address`, else at
    RAY_ADDRESS, else a local instance; see the module docstring); `fn` must be a module-level
    function. A crashed worker yields error_row(task, exception) instead."""
    from tqdm import tqdm

    if backend == "ray" and tasks:  # before the progress bar: a cluster's refusal is a line of its own
        ray = _connect(address, workers)
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
        for row in _ray_rows(ray, fn, tasks, workers, error_row):
            yield row
            bar.update()
    bar.close()
