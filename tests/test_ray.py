"""The Ray backend as users run it: a running cluster joined by `address` (`--address`) or RAY_ADDRESS
without resource arguments, `workers` then capping the tasks in flight; the address checked where it
enters; one clear error for a cluster that cannot be reached, for a missing Ray and for a cluster with
token authentication joined without its token. The cluster tests start their own head
(`ray start --head --block`) and end it by its process id."""

import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from stackelberg_mop import cli
from stackelberg_mop.runner import benchmark, parallel

POLICIES = ["tariff", "flat:700"]  # cheap: one evaluate per day each (and the optimum's table look-up)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shutdown_ray() -> None:
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()


def _key(rows):
    return {(r["policy"], r["day"]): float(r["dno_objective"]) for r in rows}


@pytest.mark.parametrize("address", ["", "   ", 6379, b"localhost:6379", ["localhost:6379"], "localhost",
                                     "localhost:port", "localhost:0", "localhost:70000", ":6379"])
def test_the_address_is_checked_before_any_work(address, tmp_path):
    with pytest.raises(ValueError, match="address"):
        parallel.check_backend("ray", address)
    with pytest.raises(ValueError, match="address"):
        benchmark.run(["tariff"], split="test", limit=1, out=tmp_path / "rows.csv", backend="ray",
                      address=address, progress=False)
    assert not (tmp_path / "rows.csv").exists()


def test_an_address_needs_the_ray_backend(tmp_path, capsys):
    with pytest.raises(ValueError, match="backend 'ray' only"):
        benchmark.run(["tariff"], split="test", limit=1, out=tmp_path / "rows.csv", backend="local",
                      address="127.0.0.1:6379", progress=False)
    with pytest.raises(SystemExit) as exit_:  # optima's flag reaches `optima.compute` too
        cli.main(["optima", "--limit", "1", "--address", "127.0.0.1:6379", "--out", str(tmp_path / "t.jsonl")])
    assert exit_.value.code == 2 and "backend 'ray' only" in capsys.readouterr().err


def test_a_missing_ray_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(parallel.ClusterError, match=r"pip install 'stackelberg-mop\[cluster\]'"):
        parallel.check_backend("ray")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--policy", "tariff", "--limit", "1", "--backend", "ray", "--out", str(tmp_path)])
    assert exit_.value.code == 2 and "stackelberg-mop[cluster]" in capsys.readouterr().err
    assert parallel.check_backend("local") is None  # the other backends need no Ray


def test_a_cluster_that_cannot_be_reached_is_named(monkeypatch, tmp_path, capsys):
    pytest.importorskip("ray")
    _shutdown_ray()  # a connection this process has would be used as it is
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(parallel.ClusterError, match=f"{address}.*cannot be reached"):
        list(parallel.execute(abs, [1, 2], "ray", 1, False, "x", None, address=address))
    monkeypatch.setenv("RAY_ADDRESS", address)  # the environment's address, as the command line's
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--policy", "tariff", "--limit", "1", "--backend", "ray", "--out", str(tmp_path)])
    assert exit_.value.code == 2 and address in capsys.readouterr().err
    assert time.monotonic() - start < 60
    monkeypatch.setenv("RAY_ADDRESS", "not an address")
    with pytest.raises(ValueError, match="RAY_ADDRESS"):
        parallel.check_backend("ray")


def _start_head(folder: Path, env: dict):
    """A Ray head of 2 CPUs on free ports, its files under `folder`: (process, "127.0.0.1:PORT")."""
    ray_cli = Path(sys.executable).with_name("ray")
    port = _free_port()
    log = folder / "head.log"
    args = [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--disable-usage-stats",
            "--include-dashboard=false", f"--temp-dir={folder}", f"--ray-client-server-port={_free_port()}",
            f"--dashboard-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}"]
    with log.open("w") as fh:
        proc = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_head(proc)
            pytest.fail(f"the test's Ray head did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc, f"127.0.0.1:{port}"


def _stop_head(proc) -> None:
    """End the head this test started: SIGTERM lets `ray start --block` stop its own processes; its
    process group (started in a session of its own) is killed if that takes too long."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _head_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return env | extra


@pytest.fixture(scope="module")
def head():
    """A running Ray cluster without authentication (RAY_AUTH_MODE=disabled: a token file in ~/.ray
    does not turn it on); its address."""
    pytest.importorskip("ray")
    folder = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths live under it
    proc, address = _start_head(folder, _head_env(RAY_AUTH_MODE="disabled"))
    yield address
    _shutdown_ray()
    _stop_head(proc)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def serial_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "rows.csv"
    return benchmark.run(POLICIES, split="test", limit=2, out=out, backend="serial", progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_the_benchmark_joins_a_cluster_by_its_address(head, workers, serial_rows, tmp_path, monkeypatch):
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    _shutdown_ray()
    rows = benchmark.run(POLICIES, split="test", limit=2, out=tmp_path / "rows.csv", backend="ray",
                         workers=workers, address=head, progress=False)
    assert ray.get_runtime_context().gcs_address.endswith(":" + head.rpartition(":")[2])  # the cluster, not a new one
    _shutdown_ray()
    assert len(rows) == 6 and _key(rows) == pytest.approx(_key(serial_rows), rel=1e-9)


@pytest.mark.slow
def test_ray_address_in_the_environment_is_joined(head, serial_rows, tmp_path, monkeypatch):
    """The reported bug: RAY_ADDRESS set and --workers given ("num_cpus and num_gpus must not be provided")."""
    import ray

    _shutdown_ray()
    monkeypatch.setenv("RAY_ADDRESS", head)
    cli.main(["evaluate", "--policy", "flat:700", "--limit", "2", "--backend", "ray", "--workers", "2",
              "--out", str(tmp_path)])
    assert ray.get_runtime_context().gcs_address.endswith(":" + head.rpartition(":")[2])
    _shutdown_ray()
    rows = benchmark.read_rows(tmp_path / "rows.csv")
    assert len(rows) == 6 and _key(rows) == pytest.approx(_key(serial_rows), rel=1e-9)


@pytest.mark.slow
def test_workers_caps_the_tasks_in_flight_on_a_cluster(head):
    def span(task):  # a closure: Ray sends it by value, no module to import on the cluster
        import time

        start = time.time()
        time.sleep(0.5)
        return start, time.time()

    _shutdown_ray()
    spans = sorted(parallel.execute(span, list(range(4)), "ray", 1, False, "x", None, address=head))
    _shutdown_ray()
    assert len(spans) == 4 and all(b[0] >= a[1] for a, b in itertools.pairwise(spans))  # one at a time


@pytest.mark.slow
def test_a_cluster_with_token_authentication(tmp_path):
    """Joined with RAY_AUTH_MODE=token and its token (docs/benchmark.md, "On a Ray cluster"); without
    RAY_AUTH_MODE the command says what to set. Drivers run as commands: Ray reads the mode once per process."""
    pytest.importorskip("ray")
    token = secrets.token_hex(16)
    folder = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    proc, address = _start_head(folder, _head_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token))
    try:
        command = [sys.executable, "-m", "stackelberg_mop.cli", "evaluate", "--policy", "flat:700", "--limit", "1",
                   "--backend", "ray", "--workers", "2", "--address", address]
        # RAY_NUM_REDIS_GET_RETRIES: Ray's tries at a refusing cluster (20 by default, a second each)
        refused = subprocess.run([*command, "--out", str(tmp_path / "no")], capture_output=True, text=True, check=False,
                                 env=_head_env(RAY_AUTH_TOKEN=token, RAY_NUM_REDIS_GET_RETRIES="2"), timeout=300)
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert address in refused.stderr and "RAY_AUTH_MODE=token" in refused.stderr
        joined = subprocess.run([*command, "--out", str(tmp_path / "yes")], capture_output=True, text=True, check=False,
                                env=_head_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token), timeout=300)
        assert joined.returncode == 0, joined.stderr[-2000:]
        assert len(benchmark.read_rows(tmp_path / "yes" / "rows.csv")) == 3
    finally:
        _stop_head(proc)
        shutil.rmtree(folder, ignore_errors=True)
