"""Training scripts: a short run writes its artefacts, and the saved agent as a policy posts exactly
the prices the trained model picks in the environment (same observation normalisation)."""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import stackelberg_mop as sm

pytest.importorskip("stable_baselines3")


def test_short_ppo_run_and_agent_policy(tmp_path):
    from stable_baselines3 import PPO

    from stackelberg_mop.market import action_to_prices
    from stackelberg_mop.policies.agent import AgentPolicy
    from stackelberg_mop.rl import ppo

    run = ppo.main(["--total-timesteps", "256", "--mop", "agent", "--n-steps", "64", "--eval-every", "128",
                    "--eval-days", "2", "--checkpoint-every", "128", "--out", str(tmp_path), "--progress-bar", "false"])
    rows = list(csv.DictReader((run / "evaluations.csv").open()))
    assert [int(r["timesteps"]) for r in rows] == [0, 128, 256]  # the untrained policy first
    assert all(np.isfinite(float(r["mean_reward"])) and r["failures"] == "0" for r in rows)
    # with the MOP set by the agent the game is not the optimum's: no regret, the best model by reward
    assert all(r["val_aggregate_regret"] == "nan" for r in rows)
    scores = json.loads((run / "scores.json").read_text())
    assert scores["env_steps"] == 256 and scores["best_timesteps"] in (0, 128, 256)
    assert not (run / "checkpoint").exists()  # a finished run keeps its models, not its checkpoints

    policy = AgentPolicy(run, which="model")
    case = sm.load_case()
    day = sm.days(case, "test")[0]
    prices, setpoints = policy(case, day)
    norm = pickle.load((run / "model_vecnormalize.pkl").open("rb"))
    model = PPO.load(run / "model.zip", device="cpu")
    obs = sm.envs.day_features(case, day)
    action, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
    assert np.allclose(prices, action_to_prices(case, day, action[:24])[0])
    assert setpoints.shape == (2, len(case.mop), 24)
    out = sm.evaluate(case, day, prices, mop=setpoints)
    assert out.status == "optimal" and policy.decision_time > 0


def test_td3_explores_with_gaussian_noise_of_the_configured_size(tmp_path):
    from stackelberg_mop.rl import td3

    run = td3.main(["--total-timesteps", "64", "--mop", "agent", "--learning-starts", "32", "--batch-size", "16",
                    "--action-noise", "0.3", "--eval-every", "64", "--eval-days", "1", "--out", str(tmp_path),
                    "--progress-bar", "false"])
    assert (run / "model.zip").exists() and (run / "evaluations.csv").exists()
    venv = type("V", (), {"action_space": sm.envs.StackelbergMOPEnv(mop="agent").action_space})()
    noise = td3.exploration(td3.Config(action_noise=0.3), venv)["action_noise"]
    draws = np.array([noise() for _ in range(2000)])
    assert draws.shape == (2000, venv.action_space.shape[0])
    assert abs(draws.std() - 0.3) < 0.02 and abs(draws.mean()) < 0.02  # zero-mean, the configured size


def test_init_from_continues_the_saved_model(tmp_path):
    # with no gradient step (learning_starts beyond the run), the continued model is the saved one
    import torch
    from stable_baselines3 import TD3

    from stackelberg_mop.rl import td3

    common = ["--mop", "agent", "--batch-size", "16", "--eval-every", "32", "--eval-days", "1", "--out",
              str(tmp_path), "--progress-bar", "false"]
    first = td3.main(["--total-timesteps", "64", "--learning-starts", "32", "--name", "first", *common])
    again = td3.main(["--total-timesteps", "32", "--learning-starts", "1000", "--init-from", str(first),
                      "--name", "again", *common])
    continued = TD3.load(again / "model.zip", device="cpu").policy.state_dict()
    saved = TD3.load(first / "best_model.zip", device="cpu").policy.state_dict()
    assert all(torch.equal(saved[k], continued[k]) for k in saved)
    stats = [pickle.load((run / name).open("rb")).obs_rms for run, name in
             ((first, "best_model_vecnormalize.pkl"), (again, "model_vecnormalize.pkl"))]
    assert np.array_equal(stats[0].mean, stats[1].mean) and np.array_equal(stats[0].var, stats[1].var)
    with pytest.raises(ValueError, match="--init-from: no model"):
        td3.main(["--total-timesteps", "32", "--init-from", str(tmp_path / "nothing"), "--name", "x", *common])
    from stackelberg_mop.rl import sac

    with pytest.raises(ValueError, match="--init-from: .* is not a SAC model"):  # a TD3 zip: refused, nothing written
        sac.main(["--total-timesteps", "32", "--init-from", str(first), "--name", "wrong", *common])
    assert not (tmp_path / "wrong").exists() and not any(p.name == "wrong" for p in first.parent.iterdir())


def test_behaviour_cloning_learns_its_labels_and_ships_as_an_agent(tmp_path):
    """BC on six labelled training days (labels: the floor where the feeder's PV exceeds its load, the
    cap elsewhere, a rule of the day's data): the training loss falls by an order of magnitude, the
    run loads as an ``agent:`` policy, its prices keep the rules and follow the labels, and the
    validation scores are logged."""
    import json

    from stackelberg_mop.data.optimum_table import day_hash
    from stackelberg_mop.market import price_bounds
    from stackelberg_mop.policies.agent import AgentPolicy
    from stackelberg_mop.rl import bc

    case = sm.load_case()
    picked = sm.days(case, "train")[::46][:6]
    labels = tmp_path / "labels.jsonl"
    wanted = {}
    with labels.open("w") as fh:
        for day in picked:
            bounds = price_bounds(case, day)
            sunny = day.pv.sum(axis=0) > day.fixed_load.sum(axis=0)
            prices = bounds.project(np.where(sunny, bounds.lower, bounds.upper))
            wanted[day.name] = prices
            fh.write(json.dumps({"case": case.name, "day": day.name, "prices": prices.tolist(), "objective": 0.0,
                                 "bound": 0.0, "gap": 0.0, "status": "optimal", "solve_time": 1.0,
                                 "mop_setpoints": np.zeros((2, len(case.mop), 24)).tolist(), "threads": 1,
                                 "version": sm.__version__, "case_fingerprint": case.fingerprint,
                                 "day_hash": day_hash(day)}) + "\n")
    run = bc.main(["--labels", str(labels), "--epochs", "300", "--eval-every", "150", "--eval-days", "2",
                   "--batch-size", "6", "--loss", "mse", "--out", str(tmp_path), "--progress-bar", "false"])
    rows = list(csv.DictReader((run / "evaluations.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [150, 300]
    assert float(rows[-1]["train_loss"]) < 0.02
    assert all(np.isfinite(float(r["val_aggregate_regret"])) for r in rows)
    policy = AgentPolicy(run)
    for day in picked:
        prices, mop = policy(case, day)
        assert mop == "opf" and price_bounds(case, day).violation(prices) <= 1e-6
        span = price_bounds(case, day).upper - price_bounds(case, day).lower
        assert np.abs(prices - wanted[day.name]).max() <= 0.25 * span.max()

    # the regret loss measures the labels' sensitivities once and caches them beside the labels
    args = ["--labels", str(labels), "--epochs", "20", "--eval-every", "20", "--eval-days", "1", "--batch-size", "6",
            "--loss", "regret", "--mse-weight", "1", "--out", str(tmp_path), "--progress-bar", "false"]
    bc.main(args + ["--name", "regret"])
    cache = tmp_path / "labels.sensitivity-5.npz"
    cost = np.load(cache)["cost"]
    assert cost.shape == (6, 24, 2) and np.all(np.isfinite(cost)) and cost.max() > 0
    stamp = cache.stat().st_mtime_ns
    again = bc.main(args + ["--name", "regret-again"])
    assert cache.stat().st_mtime_ns == stamp                            # reused, not recomputed
    assert np.isfinite(float(list(csv.DictReader((again / "evaluations.csv").open()))[-1]["train_loss"]))


def _results_per_day(column: str) -> dict[str, float]:
    """{day: normalised regret} of one policy column of RESULTS.md's per-day table (the paper's rule)."""

    text = (Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = next(line for line in lines if line.startswith("| day | J* ¥ | proven gap |"))
    names = [c.strip() for c in header.strip("|").split("|")]
    at = names.index(column)
    out = {}
    for line in lines[lines.index(header) + 1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells[0][:4].isdigit():
            break
        out[cells[0]] = float(cells[at]) if cells[at] not in ("", "–", "fail", "rules") else float("nan")
    return out


@pytest.mark.parametrize("name", ["bc-regret", "bc"])
def test_the_shipped_agents_keep_the_rules_and_match_their_results_rows(name):
    """`agent:benchmarks/agents/<name>`: its prices keep the price rules and its normalised regret on
    three test days, re-scored here through `evaluate` against the shipped optimum, is the one
    RESULTS.md prints (to its two decimals), and its objective the one of the run's rows.csv (1e-6)."""

    from stackelberg_mop.runner import benchmark

    spec = f"agent:benchmarks/agents/{name}"
    rows = _results_per_day(spec)
    run_rows = Path(__file__).resolve().parents[1] / "benchmarks" / "rule_run" / "rows.csv"
    shipped = {(r["policy"], r["day"]): r for r in benchmark.read_rows(run_rows)}  # the run RESULTS.md reports
    policy = benchmark.make_policy(f"agent:{Path(__file__).resolve().parents[1] / 'benchmarks' / 'agents' / name}")
    case = sm.load_case()
    test_days = {d.name: d for d in sm.days(case, "test")}
    chosen = [d for d in sorted(rows) if np.isfinite(rows[d])][::20][:3]
    assert len(chosen) == 3
    for name_of_day in chosen:
        day = test_days[name_of_day]
        prices, mop = policy(case, day)
        assert sm.market.price_bounds(case, day).violation(prices) <= 1e-6
        j = sm.evaluate(case, day, prices, mop=mop).dno_objective
        tariff = sm.evaluate(case, day, benchmark.make_policy("tariff")(case, day)[0]).dno_objective
        best = sm.optimum(case, day).objective
        assert (j - best) / (tariff - best) == pytest.approx(rows[name_of_day], abs=0.0051)
        assert j == pytest.approx(float(shipped[(spec, name_of_day)]["dno_objective"]), rel=1e-6)


def test_the_regret_surrogate_is_minimised_on_the_cheap_side_quantile():
    """A constant prediction fitted by the BC regret surrogate to labels uniform on (−0.5, 0.5), with
    erring upwards three times as dear as downwards, settles at the labels' 25 % quantile (−0.25),
    where the MSE would give their mean (0)."""
    import torch

    from stackelberg_mop.rl.bc import surrogate_loss

    torch.manual_seed(0)
    labels = torch.rand(4000, 24) - 0.5
    slope = torch.stack([torch.full((4000, 24), 3.0), torch.full((4000, 24), 1.0)], dim=-1)
    q = torch.zeros(24, requires_grad=True)
    opt = torch.optim.Adam([q], lr=0.01)
    for _ in range(600):
        loss = surrogate_loss(q - labels, slope, mse_weight=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(q.detach(), torch.full((24,), -0.25), atol=0.02)
    zero = torch.zeros_like(slope)  # without slopes it is the MSE
    assert torch.isclose(surrogate_loss(q - labels, zero, 1.0), (q - labels).pow(2).mean())


def test_sensitivities_are_the_objective_change_of_one_hours_price_step():
    from stackelberg_mop.market import price_bounds
    from stackelberg_mop.rl.bc import sensitivities

    case = sm.load_case()
    day = sm.days(case, "train")[30]
    bounds = price_bounds(case, day)
    lam = bounds.project(np.where(np.arange(24) % 3 == 0, bounds.lower, 0.5 * (bounds.lower + bounds.upper)))
    cost = sensitivities(case, [day], lam[None], probe=5.0, progress=False)[0]
    assert cost.shape == (24, 2)
    floor = np.flatnonzero(np.isclose(lam, bounds.lower))
    assert floor.size and np.all(cost[floor, 1] == 0)        # below the floor there is nowhere to go
    base = sm.evaluate(case, day, lam).dno_objective
    for t, side in [(1, 0), (2, 1), (int(floor[0]), 0)]:
        moved = lam.copy()
        moved[t] += 5.0 if side == 0 else -5.0
        assert cost[t, side] == pytest.approx(sm.evaluate(case, day, bounds.project(moved)).dno_objective - base,
                                              rel=1e-9, abs=1e-6)


def test_critic_warmup_holds_the_actor_still_and_trains_the_critics():
    """WarmStartTD3 (fine-tuning a cloned actor): for `critic_warmup` gradient steps the actor (and its
    target) keep their weights while the critics learn; afterwards the actor moves. On Pendulum, a
    generic continuous-action task: the mechanism does not depend on the pricing game."""
    import gymnasium as gym
    import torch

    from stackelberg_mop.rl.td3 import WarmStartTD3

    model = WarmStartTD3("MlpPolicy", gym.make("Pendulum-v1"), learning_starts=16, batch_size=16, seed=0,
                         device="cpu", critic_warmup=40, policy_kwargs={"net_arch": [16, 16]})
    actor0 = {k: v.clone() for k, v in model.actor.state_dict().items()}
    critic0 = {k: v.clone() for k, v in model.critic.state_dict().items()}
    model.learn(total_timesteps=50)                      # 34 gradient steps: all within the warm-up
    assert 0 < model._n_updates <= 40
    assert all(torch.equal(actor0[k], v) for k, v in model.actor.state_dict().items())
    # the target's Polyak average of two equal networks moves by float rounding only
    assert all(torch.allclose(actor0[k], v, atol=1e-6) for k, v in model.actor_target.state_dict().items())
    assert not all(torch.equal(critic0[k], v) for k, v in model.critic.state_dict().items())
    model.learn(total_timesteps=40, reset_num_timesteps=False)
    assert not all(torch.equal(actor0[k], v) for k, v in model.actor.state_dict().items())


@pytest.mark.parametrize("script", ["ppo", "ppo_hourly", "sac", "sac_hourly", "td3", "bc"])
def test_every_training_flag_has_its_help_and_the_scripts_defaults(script, capsys):
    """Each script's --help describes every field of its Config (its help text is the field's
    metadata), and the parsed defaults are the Config's own."""
    import dataclasses
    import importlib

    from stackelberg_mop.rl.config import parse_config

    cls = importlib.import_module(f"stackelberg_mop.rl.{script}").Config
    comments = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
    missing = [name for name, text in comments.items() if not text.strip()]
    assert not missing, f"{script}: no help text for {missing}"
    assert parse_config(cls, []) == cls()
    with pytest.raises(SystemExit):
        parse_config(cls, ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(cls):
        assert "--" + f.name.replace("_", "-") in text
    assert " ".join(comments["seed"].split()) in text


RESUMABLE = {  # tiny runs that cross several checkpoints and validations
    "sac": ["--total-timesteps", "160", "--learning-starts", "16", "--batch-size", "16", "--net-arch", "32,32",
            "--checkpoint-every", "32", "--eval-every", "48", "--eval-days", "2", "--n-envs", "1"],
    "ppo_hourly": ["--total-timesteps", "192", "--n-steps", "48", "--batch-size", "24", "--net-arch", "32,32",
                   "--checkpoint-every", "48", "--eval-every", "96", "--eval-days", "1", "--n-envs", "1"],
}


@pytest.mark.parametrize("script", list(RESUMABLE))
def test_a_killed_run_resumes_with_the_same_command_and_ends_as_an_uninterrupted_one(script, tmp_path):
    """SIGKILL after the first checkpoint, the same command again: the final model's parameters equal
    those of a run never interrupted, bit for bit (model, optimiser, replay buffer, normalisation,
    every generator and the environments' pending days restored), and so do the validation rows."""
    import torch
    from stable_baselines3 import PPO, SAC

    args = [sys.executable, "-m", f"stackelberg_mop.rl.{script}", *RESUMABLE[script], "--out", str(tmp_path),
            "--progress-bar", "false"]
    env = dict(os.environ, STACKELBERG_MOP_THREADS="1")
    subprocess.run([*args, "--name", "whole"], env=env, check=True, capture_output=True)
    killed = subprocess.Popen([*args, "--name", "cut"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "cut" / "checkpoint" / "state.pkl"
    while not state.exists() and killed.poll() is None:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "cut" / "scores.json").exists()
    resumed = subprocess.run([*args, "--name", "cut"], env=env, check=True, capture_output=True, text=True)
    assert "resuming at" in resumed.stdout
    algo = SAC if script == "sac" else PPO
    whole, cut = (algo.load(tmp_path / name / "model.zip", device="cpu").policy.state_dict() for name in ("whole", "cut"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    curve = lambda name: [{k: v for k, v in r.items() if k != "wall_s"}
                          for r in csv.DictReader((tmp_path / name / "evaluations.csv").open())]
    assert curve("cut") == curve("whole") and len(curve("whole")) >= 3
    again = subprocess.run([*args, "--name", "cut"], env=env, check=True, capture_output=True, text=True)
    assert "finished already" in again.stdout  # a finished run is skipped


def test_a_run_folder_refuses_other_settings(tmp_path):
    from stackelberg_mop.rl import sac

    common = ["--learning-starts", "8", "--batch-size", "8", "--net-arch", "16", "--eval-every", "16", "--eval-days",
              "1", "--n-envs", "1", "--out", str(tmp_path), "--progress-bar", "false"]
    sac.main(["--total-timesteps", "16", *common])
    with pytest.raises(ValueError, match="learning_rate"):
        sac.main(["--total-timesteps", "16", "--learning-rate", "1e-3", *common])


def test_an_hourly_agent_is_benchmarked_on_the_day_its_hours_made(tmp_path):
    """``agent:RUN`` of an hourly agent: the benchmark plays the day hour by hour and scores, through
    `evaluate`, the day the prosumers' re-planning made; its J equals the hourly environment's final
    info and the row is judged against the optimum."""
    import gymnasium as gym

    from stackelberg_mop.policies.agent import AgentPolicy
    from stackelberg_mop.rl import ppo_hourly
    from stackelberg_mop.runner import benchmark
    from stackelberg_mop.runner import report as results

    run = ppo_hourly.main(["--total-timesteps", "48", "--n-steps", "24", "--batch-size", "24", "--eval-every", "48",
                           "--eval-days", "1", "--n-envs", "1", "--out", str(tmp_path), "--progress-bar", "false"])
    rows = benchmark.run([f"agent:{run}"], split="test", limit=2, out=tmp_path / "rows.csv", backend="serial",
                         progress=False)
    mine = [r for r in rows if r["policy"] == f"agent:{run}"]
    assert len(mine) == 2 and all(r["status"] == "optimal" for r in mine)
    table = {t["policy"]: t for t in results.report(rows)}
    assert table[f"agent:{run}"]["days_vs_optimum"] == 2 and np.isfinite(table[f"agent:{run}"]["aggregate_regret"])
    case = sm.load_case()
    day = benchmark.select_days(case, "test", 2)[0]
    policy = AgentPolicy(run)
    env = gym.make("StackelbergMOPHourly-v1", days=[day], split="test")
    obs, _ = env.reset(options={"day": 0})
    done = False
    while not done:
        obs, _, done, _, info = env.step(policy._act(obs))
    row = next(r for r in mine if r["day"] == day.name)
    assert float(row["dno_objective"]) == pytest.approx(info["dno_objective"], rel=1e-7)


def test_the_leaderboard_table_is_made_from_its_results_file(tmp_path):
    """`rl.report.summarise`: per algorithm the mean over seeds with its Student-t 95 % interval, the
    best-validation seed and its test score; sorted by mean test regret; the markdown has one line
    per algorithm."""
    from scipy import stats

    from stackelberg_mop.rl.report import markdown, summarise

    rows = [{"algo": "td3", "env_id": "StackelbergMOP-v1", "candidate": "c", "seed": s, "env_steps": 100,
             "wall_s": 60.0 * (s + 1), "val_aggregate_regret": v, "test_aggregate_regret": t, "decision_ms": 0.3}
            for s, v, t in ((0, 0.09, 0.10), (1, 0.07, 0.12), (2, 0.08, 0.08))]
    rows += [{"algo": "tariff", "env_id": "–", "candidate": "", "seed": 0, "env_steps": 0, "wall_s": "",
              "val_aggregate_regret": "", "test_aggregate_regret": 1.0, "decision_ms": 0.01}]
    summary = summarise(rows)
    assert [s["algo"] for s in summary] == ["td3", "tariff"]
    td3 = summary[0]
    half = stats.t.ppf(0.975, 2) * np.std([0.10, 0.12, 0.08], ddof=1) / np.sqrt(3)
    assert td3["test"] == pytest.approx((0.10, 0.10 - half, 0.10 + half))
    assert td3["best_seed"] == 1 and td3["best_test"] == pytest.approx(0.12) and td3["wall_s"] == 120.0
    assert np.isnan(summary[1]["test"][1])  # one row: no interval
    lines = markdown(summary).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| td3 |") and "**0.100 [" in lines[2]
    assert lines[3].startswith("| tariff | – | – | – |")


def test_the_leaderboard_plan_keeps_the_best_validated_candidate(tmp_path):
    """Seed 0 of every candidate first; once an algorithm's sweep has finished, the candidate with the
    lowest validation aggregate regret is kept and its other seeds join the plan, before the next
    algorithm's runs; finished runs are not planned again."""
    from stackelberg_mop.rl import leaderboard as lb

    algos = ["sac", "td3"]
    names = lambda: [r.name for r in lb.plan(tmp_path, algos)]
    sac = list(lb.SWEEP["sac"])
    assert names()[:len(sac)] == [f"sac-{c}-s0" for c in sac] and lb.chosen("sac", tmp_path) is None
    for c, regret in zip(sac, (0.2, 0.1)):
        run = lb.Run("sac", c, 0, tmp_path)
        run.folder.mkdir(parents=True)
        (run.folder / "scores.json").write_text(json.dumps({"val_aggregate_regret": regret, "env_steps": 10,
                                                            "wall_s": 1.0, "algo": "sac",
                                                            "env_id": "StackelbergMOP-v1"}))
    assert lb.chosen("sac", tmp_path) == sac[1]
    assert names()[len(sac):len(sac) + 2] == [f"sac-{sac[1]}-s{s}" for s in (1, 2)]
    assert names()[len(sac) + 2].startswith("td3-")
    assert "sac: kept candidate " + sac[1] in lb.status(tmp_path, algos)


@pytest.mark.parametrize("script", ["sac", "td3", "ppo"])
def test_the_slim_policy_a_run_keeps_posts_the_same_prices_as_its_model(script, tmp_path):
    """A finished run keeps its best model's deciding part alone (best_policy.pt, a fraction of the
    model file); `AgentPolicy` prefers it, and it posts exactly the prices the full model posts."""
    import importlib
    import shutil

    module = importlib.import_module(f"stackelberg_mop.rl.{script}")
    flags = ["--total-timesteps", "64", "--eval-every", "32", "--eval-days", "1", "--n-envs", "1", "--batch-size",
             "16", "--out", str(tmp_path), "--progress-bar", "false"]
    flags += ["--n-steps", "32"] if script == "ppo" else ["--learning-starts", "16"]
    run = module.main(flags)
    slim = run / "best_policy.pt"
    share = 1.0 if script == "ppo" else 0.5  # PPO's policy is small and whole; SAC/TD3 drop critics and optimisers
    assert slim.is_file() and slim.stat().st_size < share * (run / "best_model.zip").stat().st_size
    full = tmp_path / "full"
    shutil.copytree(run, full)
    (full / "best_policy.pt").unlink()
    from stackelberg_mop.policies.agent import AgentPolicy

    case = sm.load_case()
    for day in sm.days(case, "val")[:3]:
        assert np.array_equal(AgentPolicy(run)(case, day)[0], AgentPolicy(full)(case, day)[0])


@pytest.mark.parametrize("damage", ["state", "model", "log"])
def test_a_damaged_checkpoint_is_named_and_nothing_is_written(damage, tmp_path, monkeypatch):
    """A run whose checkpoint (or validation log) cannot be read is refused with a ValueError naming
    it, before any file of the run changes."""
    from stackelberg_mop.rl import checkpoint as ck
    from stackelberg_mop.rl import sac

    monkeypatch.setattr(ck, "remove", lambda run: None)  # the run keeps its last checkpoint, as if killed
    flags = ["--total-timesteps", "64", "--learning-starts", "8", "--batch-size", "8", "--net-arch", "16",
             "--checkpoint-every", "16", "--eval-every", "32", "--eval-days", "1", "--n-envs", "1",
             "--out", str(tmp_path), "--progress-bar", "false"]
    run = sac.main(flags)
    (run / "scores.json").unlink()  # as if killed before its end
    folder = run / ck.FOLDER
    assert (folder / "state.pkl").is_file()
    target = {"state": folder / "state.pkl", "model": folder / "model.zip", "log": run / "evaluations.csv"}[damage]
    target.write_bytes(b"\x00garbage" if damage != "log" else b"timesteps\nnot a number\n")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="checkpoint cannot be read|not the run's validation log"):
        sac.main(flags)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_apg_trains_on_the_exact_gradient_and_resumes_exactly(tmp_path, monkeypatch):
    """The analytic policy gradient run from the behaviour clone: its validation regret falls within a
    few steps, and a run killed after a checkpoint continues to the same numbers as one never killed."""
    import torch

    from stackelberg_mop.rl import apg

    clone = Path(__file__).resolve().parents[1] / "benchmarks" / "agents" / "bc-regret"
    common = ["--init-from", str(clone), "--out", str(tmp_path), "--total-timesteps", "96", "--eval-every", "32",
              "--eval-days", "2", "--batch-size", "16", "--progress-bar", "false"]
    whole = apg.main([*common, "--name", "whole"])
    rows = list(csv.DictReader((whole / "evaluations.csv").open()))
    regrets = [float(r["val_aggregate_regret"]) for r in rows]
    assert [int(r["timesteps"]) for r in rows] == [0, 32, 64, 96] and regrets[-1] < regrets[0]
    calls = {"n": 0}
    original = apg.batch_gradient

    def dies(*args):
        calls["n"] += 1
        if calls["n"] == 5:  # after the checkpoint at 32 scored days (two batches of 16), mid-way to 64
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(apg, "batch_gradient", dies)
    with pytest.raises(KeyboardInterrupt):
        apg.main([*common, "--name", "killed"])
    monkeypatch.setattr(apg, "batch_gradient", original)
    resumed = apg.main([*common, "--name", "killed"])
    again = [float(r["val_aggregate_regret"]) for r in csv.DictReader((resumed / "evaluations.csv").open())]
    assert again == regrets
    for name in ("best_policy.pt",):
        a, b = (torch.load(run / name, weights_only=False)["state_dict"] for run in (whole, resumed))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((resumed / "scores.json").read_text())["trainer"] == "apg"
