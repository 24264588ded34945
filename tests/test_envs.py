"""The Gymnasium environments: API conformance, the price and MOP maps, rewards equal to `evaluate`,
determinism, robustness, vectorised use and a short SB3 run."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import stackelberg_mop as sm
from stackelberg_mop.envs import StackelbergMOPEnv, StackelbergMOPHourlyEnv
from stackelberg_mop.market import action_to_prices, price_bounds, prices_to_action, project_prices, replan
from stackelberg_mop.powerflow.mop import action_to_mop_setpoints
from stackelberg_mop.scoring import check_mop_setpoints

IDS = ["StackelbergMOP-v1", "StackelbergMOPHourly-v1"]
MODES = ["opf", "agent", "off"]


@pytest.fixture(scope="module")
def ref_days(case):
    return [sm.reference_day(case)]


# --- the MOP map (the price maps: tests/test_prices.py) --------------------------------------
@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (2, 4, 24), elements=st.floats(-3, 3)))
def test_mop_action_gives_admissible_setpoints(case, action):
    setpoints = action_to_mop_setpoints(case, action)
    p, q = check_mop_setpoints(case, setpoints)  # raises on a broken rating or DC balance
    # terminals in P/Q mode follow the action exactly unless the DC-controlling one had to be relieved
    a = np.clip(action, -1, 1)
    norm = np.maximum(np.hypot(a[0, :-1], a[1, :-1]), 1)
    unscaled = np.hypot(p[-1], q[-1]) < case.mop.s_max[-1] - 1e-6
    target = case.mop.s_max[:-1, None] * a[0, :-1] / norm
    assert np.allclose(p[:-1, unscaled], target[:, unscaled], atol=1e-9)


# --- Gymnasium and SB3 conformance ---------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mop", MODES)
def test_gymnasium_check_env(env_id, mop):
    env = gym.make(env_id, mop=mop)
    gym_check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mop", MODES)
def test_sb3_check_env(env_id, mop):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(gym.make(env_id, mop=mop).unwrapped, warn=True)


def test_make_without_prior_import():
    import subprocess
    import sys

    code = ("import gymnasium as gym; e = gym.make('stackelberg_mop:StackelbergMOP-v1', mop='agent'); "
            "print(e.reset(seed=1)[0].shape[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) == StackelbergMOPEnv(mop="agent").observation_space.shape[0]


# --- rewards are the scorer's -------------------------------------------------------------------
@pytest.mark.parametrize("mop", MODES)
def test_reward_is_the_gain_over_the_tariff_by_evaluate(case, ref_days, mop):
    """reward = (J_tariff − J)/scale with both scored by `evaluate` (the tariff with the MOP dispatched
    by the OPF when the agent sets it); reward_baseline=None gives −J/scale (v0's reward)."""
    env = StackelbergMOPEnv(case=case, days=ref_days, split="reference", mop=mop, reward_scale=2500.0)
    env.reset(seed=3)
    action = env.action_space.sample()
    _, reward, terminated, truncated, info = env.step(action)
    prices, _ = action_to_prices(case, ref_days[0], action[:24])
    setting = mop
    if mop == "agent":
        setting = action_to_mop_setpoints(case, action[24:].reshape(2, len(case.mop), 24))
    out = sm.evaluate(case, ref_days[0], prices, mop=setting, voltage_limits=env.voltage_limits)
    assert terminated and not truncated and info["status"] == out.status == "optimal"
    tariff = sm.evaluate(case, ref_days[0], project_prices(case, ref_days[0], ref_days[0].buy_price),
                         mop="opf" if mop == "agent" else mop, voltage_limits=env.voltage_limits).dno_objective
    # a re-solved SOCP agrees to the solver's tolerance (~1e-7 relative of J, J ~ 10⁴ ¥)
    assert reward == pytest.approx((tariff - out.dno_objective) / 2500.0, abs=1e-6 * out.dno_objective / 2500.0)
    raw = StackelbergMOPEnv(case=case, days=ref_days, split="reference", mop=mop, reward_scale=2500.0,
                            reward_baseline=None)
    raw.reset(seed=3)
    assert raw.step(action)[1] == pytest.approx(-out.dno_objective / 2500.0, rel=1e-12 if mop == "agent" else 1e-6)
    assert np.allclose(info["prices"], prices) and info["dno_objective"] == pytest.approx(out.dno_objective)
    assert out.hourly_objective.sum() == pytest.approx(out.dno_objective, rel=1e-12)


def test_tariff_baseline_rewards_the_improvement(case, ref_days):
    env = StackelbergMOPEnv(case=case, days=ref_days, split="reference", reward_baseline="tariff")
    env.reset(seed=0)
    day = ref_days[0]
    _, reward, *_ = env.step(prices_to_action(case, day, project_prices(case, day, day.buy_price)))
    assert abs(reward) < 1e-6  # posting the tariff itself improves nothing


def test_seeds_fix_days_observations_and_rewards():
    def rollout(seed):
        env = gym.make("StackelbergMOP-v1", mop="agent")
        env.action_space.seed(seed)
        out = []
        obs, info = env.reset(seed=seed)
        for _ in range(4):
            _, r, *_ = env.step(env.action_space.sample())
            out.append((info["day"], obs, r))
            obs, info = env.reset()
        return out

    a, b, c = rollout(7), rollout(7), rollout(8)
    assert all(x[0] == y[0] and np.array_equal(x[1], y[1]) and x[2] == y[2] for x, y in zip(a, b))
    assert [x[0] for x in a] != [x[0] for x in c]


def test_reset_options_pick_split_and_day(case):
    env = StackelbergMOPEnv(case=case, mop="agent")
    _, info = env.reset(seed=0, options={"split": "test", "day": 0})
    assert info["day"] == sm.days(case, "test")[0].name and info["split"] == "test"
    _, info = env.reset(options={"split": "val", "day": sm.days(case, "val")[3].name})
    assert info["day"] == sm.days(case, "val")[3].name
    test_names = {d.name for d in sm.days(case, "test")}
    assert all(env.reset(options={"split": "test"})[1]["day"] in test_names for _ in range(5))
    with pytest.raises(ValueError, match="split"):
        env.reset(options={"split": "holdout"})
    with pytest.raises(ValueError, match=r"options\[.day.\]: must be <= 48"):
        env.reset(options={"split": "test", "day": 49})


def test_sampled_hv_prices_are_seeded_and_scored(case, ref_days):
    def first(seed):
        env = StackelbergMOPEnv(case=case, days=ref_days, split="reference", hv_prices="sampled",
                                reward_baseline="tariff")
        obs, _ = env.reset(seed=seed)
        return env, obs

    (env, obs), (_, same), (_, other) = first(4), first(4), first(5)
    lay = env.observation_layout
    assert np.array_equal(obs, same) and not np.array_equal(obs[lay["buy_price"]], other[lay["buy_price"]])
    assert not np.allclose(env.day.buy_price, ref_days[0].buy_price)
    action = np.zeros(24, dtype=np.float32)
    _, reward, *_ = env.step(action)
    drawn = env.day
    base = sm.evaluate(case, drawn, project_prices(case, drawn, drawn.buy_price)).dno_objective
    out = sm.evaluate(case, drawn, action_to_prices(case, drawn, action)[0])
    assert reward == pytest.approx(-(out.dno_objective - base) / env.reward_scale, rel=1e-5)


def test_p2p_with_prices_per_prosumer_scores_the_sharing_market(case, ref_days):
    from stackelberg_mop.market.p2p import p2p_market, p2p_response

    env = StackelbergMOPEnv(case=case, days=ref_days, split="reference", price_per_prosumer=True, p2p=True,
                            reward_baseline=None)
    gym_check_env(env, skip_render_check=True)
    env.reset(seed=1)
    n = len(case.prosumers)
    rows = np.linspace(-1, 1, n)[:, None] * np.ones((n, 24))  # prosumers face different prices
    _, reward, *_ = env.step(rows.ravel().astype(np.float32))
    prices, _ = action_to_prices(case, ref_days[0], rows)
    share = p2p_response(case, ref_days[0], prices, p2p_market(case))
    out = sm.evaluate(case, ref_days[0], prices, response=share)
    assert np.abs(share.trades).max() > 1e-3  # price differences make sharing pay
    assert reward == pytest.approx(-out.dno_objective / env.reward_scale, rel=1e-6)
    assert np.allclose(env.outcome.exchange_power, share.exchange_power)


# --- robustness ---------------------------------------------------------------------------------
def test_bad_actions_and_options_raise_clear_errors(case, ref_days):
    env = StackelbergMOPEnv(case=case, days=ref_days, split="reference")
    env.reset(seed=0)
    bad = np.zeros(24)
    bad[5] = np.nan
    with pytest.raises(ValueError, match=r"action: must be finite; found nan at index \(5,\)"):
        env.step(bad)
    with pytest.raises(ValueError, match="expected 24"):
        env.step(np.zeros(23))
    with pytest.raises(ValueError, match="mop"):
        StackelbergMOPEnv(case=case, mop="auto")
    with pytest.raises(ValueError, match="reward_scale"):
        StackelbergMOPEnv(case=case, reward_scale=0)


def test_solver_failure_ends_episode_with_penalty(case, ref_days):
    # hard voltage limits without the MOP: the feeder cannot keep them on the reference day
    env = StackelbergMOPEnv(case=case, days=ref_days, split="reference", mop="off", voltage_limits="hard",
                            failure_reward=-7.0)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.zeros(24))
    assert terminated and reward == -7.0 and info["status"] == "infeasible"


# --- the hourly game ----------------------------------------------------------------------------
def test_replan_keeps_the_past_and_agrees_with_itself(case, day):
    lam = case.tariff.buy_price
    plan = sm.best_response(case, day, lam)
    assert np.allclose(replan(case, day, lam, plan, 9).exchange_power, plan.exchange_power, atol=1e-7)
    other = replan(case, day, np.full(24, 600.0), plan, 9)
    assert np.array_equal(other.transfer[:, :9], plan.transfer[:, :9])
    assert np.allclose(other.stored_energy[:, :9], plan.stored_energy[:, :9], atol=1e-12)
    assert np.allclose(other.transfer.sum(axis=1), 0, atol=1e-9)
    b = case.batteries
    assert np.allclose(other.stored_energy[b.owner, -1], b.e_init, atol=1e-9)
    assert not np.allclose(other.transfer[:, 9:], plan.transfer[:, 9:])


@pytest.mark.parametrize("mop", ["opf", "agent"])
def test_hourly_rewards_sum_to_the_realised_day(case, ref_days, mop):
    env = StackelbergMOPHourlyEnv(case=case, days=ref_days, split="reference", mop=mop, reward_scale=100.0)
    obs, _ = env.reset(seed=2)
    env.action_space.seed(2)
    lay, total, done = env.observation_layout, 0.0, False
    while not done:
        obs, r, done, _, info = env.step(env.action_space.sample())
        total += r
    rules = case.price_rules
    posted = info["prices"]
    assert price_bounds(case, ref_days[0]).violation(posted) <= 1e-9  # each hour's bounds and the mean cap
    setting = mop if mop == "opf" else np.stack([info["mop_p"], info["mop_q"]])
    out = sm.evaluate(case, ref_days[0], posted, mop=setting, response=env.plan)
    # each step dispatches its hour alone: equal to the day's dispatch to solver tolerance; the
    # rewards are the gain over the tariff's day (its hourly shares), so they sum to (J_tariff − J)/scale
    assert total == pytest.approx((info["tariff_objective"] - out.dno_objective) / 100.0, abs=1e-6 * out.dno_objective)
    assert info["dno_objective"] == pytest.approx(out.dno_objective, rel=1e-6)  # the day joined from its hours
    assert np.allclose(obs[lay["posted_prices"]], posted / rules.price_max, atol=1e-6)


def test_hourly_observation_tracks_the_state(case, ref_days):
    env = StackelbergMOPHourlyEnv(case=case, days=ref_days, split="reference", mop="agent")
    env.reset(seed=0)
    for _ in range(10):
        obs, *_ = env.step(env.action_space.sample())
    lay, b = env.observation_layout, case.batteries
    assert np.allclose(obs[lay["battery_energy"]], env.plan.stored_energy[b.owner, 9] / b.capacity, atol=1e-6)
    assert obs[lay["hour"]][2] == pytest.approx(10 / 23)
    assert np.all(obs[lay["posted_prices"]][10:] == 0)


# --- vectorised use, rendering, SB3 ---------------------------------------------------------------
@pytest.mark.parametrize("vector", ["sync", "async"])
def test_vector_envs_match_single_envs(vector):
    make = lambda: gym.make("StackelbergMOP-v1", mop="agent")
    cls = gym.vector.SyncVectorEnv if vector == "sync" else gym.vector.AsyncVectorEnv
    venv = cls([make, make])
    obs, _ = venv.reset(seed=[11, 12])
    actions = np.stack([np.linspace(-1, 1, venv.single_action_space.shape[0], dtype=np.float32)] * 2)
    _, rewards, terminated, _, _ = venv.step(actions)
    venv.close()
    for i, seed in enumerate([11, 12]):
        env = make()
        o, _ = env.reset(seed=seed)
        assert np.array_equal(o, obs[i])
        assert env.step(actions[i])[1] == pytest.approx(rewards[i])
    assert terminated.all()


def test_sb3_vec_envs_and_short_ppo_run():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_vec_env("StackelbergMOP-v1", n_envs=2, seed=0, env_kwargs={"mop": "agent"})
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs = venv.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (2, venv.action_space.shape[0]) and np.all(np.abs(action) <= 1)
    venv.close()
    # worker processes start fresh: the "module:ID" form imports the package there (registering the IDs)
    sub = make_vec_env("stackelberg_mop:StackelbergMOP-v1", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv,
                       env_kwargs={"mop": "agent"})
    sub.reset()
    _, rewards, dones, infos = sub.step(np.zeros((2, sub.action_space.shape[0])))
    sub.close()
    assert dones.all() and np.all(np.isfinite(rewards)) and all(i["status"] == "optimal" for i in infos)


@pytest.mark.parametrize("cls", [StackelbergMOPEnv, StackelbergMOPHourlyEnv])
def test_render_rgb_array_draws_the_day(case, ref_days, cls):
    env = cls(case=case, days=ref_days, split="reference", mop="agent", render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    env.step(env.action_space.sample())
    after = env.render()
    assert before.dtype == np.uint8 and before.ndim == 3 and before.shape[2] == 3
    assert after.shape == before.shape and not np.array_equal(before, after) and after.std() > 0


def test_make_vec_resets_in_the_same_step(case, ref_days):
    """gym.make_vec with default settings: every step of the one-step game is a real day (same-step
    autoreset), its outcome in info["final_info"], its reward that of a single environment."""
    venv = gym.make_vec("StackelbergMOP-v1", num_envs=2, split="reference")
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    venv.reset(seed=0)
    single = StackelbergMOPEnv(case=case, days=ref_days, split="reference")
    single.reset(seed=0)
    _, expected, *_ = single.step(np.zeros(24))
    for _ in range(3):
        _, reward, terminated, _, info = venv.step(np.zeros((2, 24), np.float32))
        assert terminated.all() and np.allclose(reward, expected, rtol=1e-9)
        assert list(info["final_info"]["status"]) == ["optimal", "optimal"]
    venv.close()
    hourly = gym.make_vec("StackelbergMOPHourly-v1", num_envs=2, split="reference")
    assert hourly.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    hourly.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_has_no_dummy_transitions_in_either_mode(mode, case):
    """Default settings, both vectorisation modes: every step of the day-ahead game is a real day
    (terminated, a solved outcome in final_info, the reward of that day and action played alone)."""
    venv = gym.make_vec("StackelbergMOP-v1", num_envs=2, vectorization_mode=mode, split="val")
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    venv.reset(seed=3)
    single = [gym.make("StackelbergMOP-v1", split="val") for _ in range(2)]
    for k, env in enumerate(single):
        env.reset(seed=3 + k)
    rng = np.random.default_rng(0)
    for _ in range(3):
        action = rng.uniform(-1, 1, (2, 24)).astype(np.float32)
        _, reward, terminated, truncated, info = venv.step(action)
        expected = [env.step(a)[1] for env, a in zip(single, action)]
        for env in single:
            env.reset()
        assert terminated.all() and not truncated.any()
        assert np.allclose(reward, expected, rtol=1e-9) and (reward != 0).all()
        assert list(info["final_info"]["status"]) == ["optimal", "optimal"]
    venv.close()


def test_spec_serialises_and_a_finished_day_refuses_another_step(case):
    env = gym.make("StackelbergMOP-v1")
    spec = json.loads(env.spec.to_json())
    assert spec["id"] == "StackelbergMOP-v1" and spec["kwargs"]["vector_kwargs"] == {"autoreset_mode": "SameStep"}
    assert gym.spec("StackelbergMOPHourly-v1").to_json()
    env.reset(seed=0)
    env.step(np.zeros(24, np.float32))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(24, np.float32))


@pytest.mark.parametrize("env_id", ["StackelbergMOP-v1", "StackelbergMOPHourly-v1"])
@pytest.mark.parametrize("split", ["val", "train"])
def test_the_yardstick_is_in_every_final_info(env_id, split, case):
    """On a validation day whose optimum is not proven to 1e-4 the final info carries J*, its bound,
    J_tariff, regret and normalised regret, consistent with the table; on a training day (no row)
    the same keys are there, J*-based ones NaN. The rewards of a day sum to (J_tariff − J)/1,000."""
    from stackelberg_mop.data.optimum_table import OptimumTable
    from stackelberg_mop.scoring.yardstick import KEYS

    table = OptimumTable(case)
    pool = sm.days(case, split)
    pick = next(d for d in pool if split == "train" or table.rows[d.name]["status"] != "optimal")
    env = gym.make(env_id, days=[pick], split=split)
    env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        _, reward, done, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
        total += reward
    assert total == pytest.approx((info["tariff_objective"] - info["dno_objective"]) / 1e3, rel=1e-7, abs=1e-9)
    if split == "train":  # no row: J*-based keys absent, not NaN (equal steps give equal infos)
        assert "tariff_objective" in info and not set(KEYS) - {"tariff_objective"} & set(info)
        return
    assert set(KEYS) <= set(info)
    opt = table.get(pick)
    assert opt.status != "optimal" and opt.gap > 1e-4  # unproven, still the yardstick
    assert info["optimum_objective"] == opt.objective and info["optimum_bound"] == opt.bound
    assert info["regret"] == pytest.approx(info["dno_objective"] - opt.objective)
    assert info["normalised_regret"] == pytest.approx(info["regret"] / (info["tariff_objective"] - opt.objective))


def test_a_days_tariff_objective_is_solved_once_for_reward_and_yardstick(monkeypatch):
    """The reward's baseline and the yardstick's J_tariff are one computation per day (not one each)."""
    import stackelberg_mop.scoring.yardstick as ys

    calls = []
    real = ys.evaluate
    monkeypatch.setattr(ys, "evaluate", lambda *a, **k: calls.append(a[1].name) or real(*a, **k))
    env = gym.make("StackelbergMOP-v1", split="val")
    env.reset(seed=0, options={"day": 3})
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert len(calls) == 1 and np.isfinite(info["tariff_objective"]) and np.isfinite(info["optimum_objective"])
    env.reset(options={"day": 3})
    env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert len(calls) == 1  # the same day again: cached
    with pytest.raises(ValueError, match="tariff: the yardstick's J_tariff"):
        ys.Yardstick(env.unwrapped.case, tariff=ys.TariffScore(env.unwrapped.case, "off"))
    with pytest.raises(ValueError, match="tariff: expected a TariffScore, got int"):
        ys.Yardstick(env.unwrapped.case, tariff=5)
