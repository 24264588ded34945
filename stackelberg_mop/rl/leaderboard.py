"""The leaderboard: standard RL algorithms on both games under one written protocol, resumable.

    python -m stackelberg_mop.rl.leaderboard                  # everything missing: sweep, seeds, test, report
    python -m stackelberg_mop.rl.leaderboard --stage train    # only the training runs
    python -m stackelberg_mop.rl.leaderboard --dry-run        # the plan and what is done

Protocol (docs: benchmarks/leaderboard/PROTOCOL.md):

1. Every algorithm has a fixed budget of environment steps (`ALGORITHMS`), chosen so that one run
   takes at most ~25 minutes on one core of the reference machine (2 cores, no GPU).
2. Hyper-parameters are chosen on validation days only: each algorithm's candidates (`SWEEP`) train
   with seed 0, and the candidate whose best model has the lowest validation aggregate regret is
   kept (its seed-0 run is that configuration's seed 0).
3. The kept configuration trains with the other seeds (`SEEDS`). Within each run the model kept is
   the one with the lowest validation aggregate regret (all 42 validation days, every `eval_every`
   steps).
4. Then, once, each kept run's model is scored on the 49 test days (`benchmark.run`, the same
   `evaluate`), and ``results.csv`` gets one row per run; RESULTS.md's table and the figures are made
   from that file.

Every run is a subprocess of the algorithm's script (`rl.ppo`, `rl.sac`, ...) with its flags, one
solver thread and one torch thread, `--workers` at a time; each is resumable (`rl.checkpoint`), so
running this command again continues killed runs and skips finished ones. Logs: ``runs/<name>.log``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..argparsing import Parser

SEEDS = (0, 1, 2)
OUT = "benchmarks/leaderboard"


@dataclass(frozen=True)
class Algorithm:
    """One leaderboard entry: the training script (module of `rl`), its environment, its budget in
    environment steps and the flags every run of it shares."""

    script: str
    env_id: str
    budget: int
    flags: tuple = ()


ALGORITHMS = {
    "ppo": Algorithm("ppo", "StackelbergMOP-v1", 60_000, ("--eval-every", "3000", "--checkpoint-every", "6000")),
    "sac": Algorithm("sac", "StackelbergMOP-v1", 30_000, ("--n-envs", "1", "--buffer-size", "30000",
                                                          "--eval-every", "1500", "--checkpoint-every", "3000")),
    "td3": Algorithm("td3", "StackelbergMOP-v1", 30_000, ("--n-envs", "1", "--buffer-size", "30000",
                                                          "--eval-every", "1500", "--checkpoint-every", "3000")),
    "ppo-hourly": Algorithm("ppo_hourly", "StackelbergMOPHourly-v1", 240_000,
                            ("--eval-every", "12000", "--checkpoint-every", "24000")),
    "sac-hourly": Algorithm("sac_hourly", "StackelbergMOPHourly-v1", 48_000,
                            ("--n-envs", "1", "--buffer-size", "48000", "--eval-every", "4800",
                             "--checkpoint-every", "9600")),
    # the budget counts days scored with their exact gradient (one `evaluate` each, as an env step)
    "apg": Algorithm("apg", "StackelbergMOP-v1", 60_000, ("--eval-every", "2750")),
}

#: the hyper-parameter candidates per algorithm (flags beside the algorithm's own), tried with seed 0
SWEEP = {
    "ppo": {"std1": (), "std0.37": ("--log-std-init", "-1.0")},
    "sac": {"scale1e3": (), "scale1e2": ("--reward-scale", "100")},
    "td3": {"noise0.2": (), "noise0.1": ("--action-noise", "0.1")},
    "ppo-hourly": {"default": ()},
    "sac-hourly": {"default": ()},
    # the levers of exact gradients: alone (a fresh actor), from the behaviour clone, and from the clone
    # with twice the training days (the same calendar days with SimBench's household load profiles)
    "apg": {"scratch": ("--learning-rate", "1e-3"),
            "clone": ("--init-from", "benchmarks/agents/bc-regret"),
            "clone-household": ("--init-from", "benchmarks/agents/bc-regret", "--load-sets", "aggregate,household"),
            # synthetic days: one training day's loads with another's PV, 3× and 10× the real days
            "clone-mixed825": ("--init-from", "benchmarks/agents/bc-regret", "--mixed-days", "825"),
            "clone-mixed2750": ("--init-from", "benchmarks/agents/bc-regret", "--mixed-days", "2750")},
}


@dataclass
class Run:
    algo: str
    candidate: str
    seed: int
    out: Path
    extra: tuple = field(default=())

    @property
    def name(self) -> str:
        return f"{self.algo}-{self.candidate}-s{self.seed}"

    @property
    def folder(self) -> Path:
        return self.out / "runs" / self.name

    def command(self) -> list[str]:
        a = ALGORITHMS[self.algo]
        return [sys.executable, "-m", f"stackelberg_mop.rl.{a.script}", "--name", self.name, "--out",
                str(self.out / "runs"), "--seed", str(self.seed), "--total-timesteps", str(a.budget),
                "--progress-bar", "false", *a.flags, *SWEEP[self.algo][self.candidate]]

    def finished(self) -> bool:
        return (self.folder / "scores.json").is_file()

    def scores(self) -> dict:
        """The finished run's scores.json, checked: a JSON object with the fields the leaderboard reads."""
        path = self.folder / "scores.json"
        try:
            scores = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a run's scores ({err}); delete it to run the run again") from None
        missing = [k for k in ("algo", "env_id", "env_steps", "wall_s", "val_aggregate_regret") if k not in scores] \
            if isinstance(scores, dict) else ["(a JSON object)"]
        if missing:
            raise ValueError(f"{path}: missing {missing}; delete it to run the run again")
        return scores


def chosen(algo: str, out: Path) -> str | None:
    """The candidate kept for `algo`: the lowest validation aggregate regret of the seed-0 runs, once
    they have all finished; None before."""
    runs = [Run(algo, name, 0, out) for name in SWEEP[algo]]
    if not all(r.finished() for r in runs):
        return None
    return min(runs, key=lambda r: r.scores()["val_aggregate_regret"]).candidate


def execute(run: Run) -> int:
    """Run (or resume) one training run in a subprocess with one thread for the solvers and torch."""
    run.folder.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, STACKELBERG_MOP_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print(f"running {run.name}", flush=True)
    with (run.folder.parent / f"{run.name}.log").open("a") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(run.command())}\n")
        log.flush()
        return subprocess.run(run.command(), stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode


def plan(out: Path, algos: list[str]) -> list[Run]:
    """The runs known so far, in the order they are run: algorithm by algorithm (in `algos`' order),
    every candidate with seed 0, then the kept candidate's other seeds once the sweep has chosen."""
    runs = []
    for a in algos:
        runs += [Run(a, c, 0, out) for c in SWEEP[a]]
        keep = chosen(a, out) if len(SWEEP[a]) > 1 else next(iter(SWEEP[a]))
        if keep is not None:
            runs += [Run(a, keep, s, out) for s in SEEDS if s != 0]
    return runs


def train_all(out: Path, algos: list[str], workers: int) -> None:
    """Every run of the plan that is not finished, `workers` at a time, each free slot taking the
    first waiting run of the plan as it stands then (so an algorithm's seeds come before the next
    algorithm's sweep as soon as its own sweep has chosen)."""
    started: set[str] = set()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {}
        while True:
            waiting = [r for r in plan(out, algos) if r.name not in started and not r.finished()]
            for run in waiting[:workers - len(futures)]:
                started.add(run.name)
                futures[pool.submit(execute, run)] = run
            if not futures:
                break
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                run = futures.pop(fut)
                code = fut.result()
                status = "finished" if run.finished() else f"stopped (exit {code}; see {run.name}.log)"
                print(f"{run.name}: {status}", flush=True)


# --- test days, once, and the results file ----------------------------------------------------------
FIELDS = ["algo", "env_id", "candidate", "seed", "env_steps", "wall_s", "best_timesteps", "val_aggregate_regret",
          "test_aggregate_regret", "test_ci_low", "test_ci_high", "test_failed_days", "decision_ms"]


#: scored on the test days beside the trained agents (no training, one row each in results.csv)
REFERENCES = {"tariff": "tariff", "flat": "flat", "fixed_point": "fixed_point", "admm": "admm",
              "bc": "agent:benchmarks/agents/bc", "bc-regret": "agent:benchmarks/agents/bc-regret", "optimum": "optimum"}


def kept_runs(out: Path, algos: list[str]) -> list[Run]:
    """The finished runs of each algorithm's kept candidate."""
    runs = []
    for algo in algos:
        keep = chosen(algo, out) if len(SWEEP[algo]) > 1 else next(iter(SWEEP[algo]))
        runs += [r for r in (Run(algo, keep, s, out) for s in SEEDS) if keep is not None and r.finished()]
    return runs


def test_all(out: Path, algos: list[str], workers: int) -> list[dict]:
    """Score each finished run of a kept candidate, and the references, on the test days (once: rows
    are reused by their fingerprint), and write ``results.csv``."""
    from ..runner import benchmark
    from ..runner.report import report
    from .common import keep_slim

    runs = kept_runs(out, algos)
    for run in runs:  # runs that finished before runs kept their slim policy
        keep_slim(run.folder, run.scores()["algo"])
    specs = {f"agent:{r.folder}": r for r in runs}
    refs = {name: spec for name, spec in REFERENCES.items()
            if not spec.startswith("agent:") or (Path(spec[6:]) / "config.json").is_file()}
    rows = benchmark.run([*specs, *refs.values()], split="test", out=out / "test_rows.csv", workers=workers,
                         progress=False)
    table = {t["policy"]: t for t in report(rows)}
    results = []
    for spec, run in specs.items():
        s, t = run.scores(), table[spec]
        results.append({"algo": run.algo, "env_id": s["env_id"], "candidate": run.candidate, "seed": run.seed,
                        "env_steps": s["env_steps"], "wall_s": s["wall_s"], "best_timesteps": s["best_timesteps"],
                        "val_aggregate_regret": s["val_aggregate_regret"], **_test_columns(t),
                        "decision_ms": round(1e3 * decision_time(spec), 3)})
    for name, spec in refs.items():
        val = ""
        if spec.startswith("agent:"):
            evaluations = list(csv.DictReader((Path(spec[6:]) / "evaluations.csv").open()))
            val = min(float(r["val_aggregate_regret"]) for r in evaluations)
        results.append({"algo": name, "env_id": "StackelbergMOP-v1" if spec.startswith("agent:") else "–",
                        "candidate": "", "seed": 0, "env_steps": 0, "wall_s": "", "best_timesteps": "",
                        "val_aggregate_regret": val, **_test_columns(table[spec])})
        if spec.startswith("agent:"):
            results[-1]["decision_ms"] = round(1e3 * decision_time(spec), 3)
    with (out / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(results)
    return results


def decision_time(spec: str) -> float:
    """Median seconds of one decision of a policy over the test days, in this process on one thread
    (the benchmark's own timings ran beside other workers)."""
    import torch

    from ..cases import load_case
    from ..data import days
    from ..runner import benchmark

    torch.set_num_threads(1)
    case = load_case()
    policy = benchmark.make_policy(spec)
    times = []
    for day in days(case, "test"):
        policy(case, day)
        times.append(policy.decision_time)
    return float(np.median(times))


def _test_columns(t: dict) -> dict:
    return {"test_aggregate_regret": t["aggregate_regret"], "test_ci_low": t["aggregate_ci_low"],
            "test_ci_high": t["aggregate_ci_high"], "test_failed_days": t["failed"],
            "decision_ms": round(1e3 * t["decision_time_median"], 3)}


def status(out: Path, algos: list[str]) -> str:
    lines = []
    for run in plan(out, algos):
        if run.finished():
            s = run.scores()
            what = f"finished: {s['env_steps']:,} steps, {s['wall_s']:.0f} s, val {s['val_aggregate_regret']:.3f}"
        elif (run.folder / "checkpoint" / "state.pkl").is_file():
            what = "checkpointed (resumes)"
        else:
            what = "to run"
        lines.append(f"{run.name:<28} {what}")
    for algo in algos:
        if len(SWEEP[algo]) > 1:
            lines.append(f"{algo}: kept candidate {chosen(algo, out) or '(sweep not finished)'}")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = Parser(description="Train, test and tabulate the RL leaderboard (resumable).")
    p.add_argument("--stage", choices=("all", "train", "test"), default="all",
                   help="train: the runs only; test: score finished runs on the test days and write results.csv")
    p.add_argument("--algos", nargs="+", choices=list(ALGORITHMS), default=list(ALGORITHMS))
    p.add_argument("--workers", type=int, default=2, help="runs at a time (one core each)")
    p.add_argument("--out", default=OUT, help="folder of runs/, results.csv and the figures")
    p.add_argument("--dry-run", action="store_true", help="print the plan and what is finished, run nothing")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error(f"--workers: must be >= 1, got {args.workers}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        p.error(f"--out: {out} is a file, not a folder")
    try:
        _main(args, out)
    except (ValueError, OSError) as err:
        p.exit(2, f"{p.prog}: error: {err}\n")


def _main(args, out: Path) -> None:
    if args.dry_run:
        print(status(out, args.algos))
        return
    if args.stage in ("all", "train"):
        train_all(out, args.algos, args.workers)
    if args.stage in ("all", "test"):
        results = test_all(out, args.algos, args.workers)
        from .report import write_report

        for path in write_report(out, results):
            print(f"wrote {path}")
    print(status(out, args.algos))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
