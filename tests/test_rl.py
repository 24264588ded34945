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
                   "--batch-size", "6", "--out", str(tmp_path), "--progress-bar", "false"])
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


def test_the_shipped_cloned_agent_loads_and_beats_the_tariff_on_validation_days():
    """`agent:benchmarks/agents/bc` (the shipped behaviour-cloned actor): its prices keep the rules and,
    over three validation days, it recovers most of what the optimum gains over the tariff."""
    from pathlib import Path

    from stackelberg_mop import benchmark

    run = Path(__file__).resolve().parents[1] / "benchmarks" / "agents" / "bc"
    policy = benchmark.make_policy(f"agent:{run}")
    case = sm.load_case()
    chosen = sm.days(case, "val")[::20]
    gained = stakes = 0.0
    for day in chosen:
        prices, mop = policy(case, day)
        assert sm.market.price_bounds(case, day).violation(prices) <= 1e-6
        j = sm.evaluate(case, day, prices, mop=mop).dno_objective
        tariff = sm.evaluate(case, day, benchmark.make_policy("tariff")(case, day)[0]).dno_objective
        best = sm.optimum(case, day).objective
        gained, stakes = gained + tariff - j, stakes + tariff - best
    assert gained >= 0.5 * stakes
