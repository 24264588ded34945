"""Training scripts: a short run writes its artefacts, and the saved agent as a policy posts exactly
the prices the trained model picks in the environment (same observation normalisation)."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest

import stackelberg_mop as sm

pytest.importorskip("stable_baselines3")


def test_short_ppo_run_and_agent_policy(tmp_path):
    from stable_baselines3 import PPO

    from stackelberg_mop.market import action_to_prices
    from stackelberg_mop.rl import ppo
    from stackelberg_mop.rl.common import AgentPolicy

    run = ppo.main(["--total-timesteps", "256", "--mop", "agent", "--n-steps", "64", "--eval-every", "128",
                    "--eval-days", "2", "--checkpoint-every", "128", "--out", str(tmp_path), "--progress-bar", "false"])
    rows = list(csv.DictReader((run / "evaluations.csv").open()))
    assert [int(r["timesteps"]) for r in rows] == [128, 256]
    assert all(np.isfinite(float(r["mean_reward"])) and r["failures"] == "0" for r in rows)
    assert len(list((run / "checkpoints").glob("*.zip"))) == 2

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
    with pytest.raises(FileNotFoundError, match="init_from"):
        td3.main(["--total-timesteps", "32", "--init-from", str(tmp_path / "nothing"), "--name", "x", *common])


def test_behaviour_cloning_learns_its_labels_and_ships_as_an_agent(tmp_path):
    """BC on six labelled training days (labels: the floor where the feeder's PV exceeds its load, the
    cap elsewhere, a rule of the day's data): the training loss falls by an order of magnitude, the
    run loads as an ``agent:`` policy, its prices keep the rules and follow the labels, and the
    validation scores are logged."""
    import json

    from stackelberg_mop.data.optimum_table import day_hash
    from stackelberg_mop.market import price_bounds
    from stackelberg_mop.rl import bc
    from stackelberg_mop.rl.common import AgentPolicy

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
    from pathlib import Path

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
    from pathlib import Path

    from stackelberg_mop import benchmark

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


@pytest.mark.parametrize("script", ["ppo", "ppo_hourly", "sac", "td3", "bc"])
def test_every_training_flag_has_its_help_and_the_scripts_defaults(script, capsys):
    """Each script's --help describes every field of its Config (the shared ones from `RunConfig`'s
    comments), and the parsed defaults are the Config's own: one definition of the shared settings."""
    import dataclasses
    import importlib

    from stackelberg_mop.rl.common import RunConfig, _line_comments, parse_config

    cls = importlib.import_module(f"stackelberg_mop.rl.{script}").Config
    comments = {**_line_comments(RunConfig), **_line_comments(cls)}
    missing = [f.name for f in dataclasses.fields(cls) if not comments.get(f.name, "").strip()]
    assert not missing, f"{script}: no help text for {missing}"
    assert parse_config(cls, []) == cls()
    with pytest.raises(SystemExit):
        parse_config(cls, ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(cls):
        assert "--" + f.name.replace("_", "-") in text
    assert " ".join(comments["seed"].split()) in text
