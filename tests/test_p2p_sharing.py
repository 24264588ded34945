"""Song et al.'s (2024) system, the case `p2p-sharing`: its prosumers' exact best response (elastic load,
curtailment, bid limits), checked against KKT and an independent cvxpy model."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import stackelberg_mop as sm
from stackelberg_mop.market import best_response_batch, kkt_residuals
from stackelberg_mop.market.follower import exchange_bounds, replan
from stackelberg_mop.market.prosumer_model import ProsumerBlock
from stackelberg_mop.market.reference import best_response_cvxpy

KEYS = ("exchange_power", "elastic", "curtailed", "cost")
#: ¥/MWh, below zero too: the curtailment's breakpoint is at θ = 0. Prices within 1e-3 of it are
#: snapped to 0: at λ ~ 1e-7 curtailment is nearly free and the interior-point reference stalls
#: (Clarabel: "optimal_inaccurate" even at its default tolerances), while at exactly 0 it solves
prices_strategy = arrays(np.float64, (3, 24), elements=st.floats(-200.0, 1800.0).map(
    lambda x: 0.0 if abs(x) < 1e-3 else x))


@pytest.fixture(scope="module")
def case3():
    return sm.load_case("p2p-sharing")


def test_the_case_is_the_papers_system(case3):
    """Buses (paper 1-based − 1), DGs, prosumer kinds, the sharing caps' parties, the import limit."""
    np.testing.assert_array_equal(case3.generators.bus + 1, [10, 16, 19, 23, 30])
    np.testing.assert_array_equal(case3.prosumers.bus + 1, [4, 13, 26])
    assert (case3.prosumers.pv_capacity > 0).tolist() == [True, False, True]
    assert (case3.prosumers.wind_capacity > 0).tolist() == [False, True, False]
    assert case3.prosumers.hourly.all() and len(case3.mop) == 0 and len(case3.batteries) == 0
    assert (case3.v_min, case3.v_max) == (0.95, 1.05) and case3.grid.import_limit == 1.8


@settings(max_examples=25, deadline=None)
@given(prices=prices_strategy, day_of_year=st.integers(-1, 365))
@example(prices=np.full((3, 24), 0.0), day_of_year=-1)
def test_response_is_exact_and_equals_cvxpy(case3, prices, day_of_year):
    """KKT residuals of the standard form below 1e-6 (the effective-price solve is exact), and the same
    schedules and costs as an independent cvxpy model solved by Clarabel (1e-5 MW: the reference is an
    interior-point solve; at λ = 0 curtailment is free, so there the schedules may differ and only the
    cost must agree)."""
    day = sm.reference_day(case3) if day_of_year < 0 else sm.simbench_day(case3, day_of_year)
    fast = sm.best_response(case3, day, prices)
    assert fast.ok
    res = kkt_residuals(case3, day, fast)
    assert max(res.values()) < 1e-6, res
    ref = best_response_cvxpy(case3, day, prices)
    np.testing.assert_allclose(fast.cost, ref["cost"], atol=1e-4, rtol=1e-9)
    tie = np.abs(prices) < 1e-3
    for key in KEYS[:-1]:
        np.testing.assert_allclose(np.where(tie, 0, getattr(fast, key)), np.where(tie, 0, ref[key]), atol=1e-5,
                                   err_msg=key)
    lower, upper = exchange_bounds(case3, day)
    assert np.all(fast.exchange_power >= lower - 1e-12) and np.all(fast.exchange_power <= upper + 1e-12)


def test_the_response_follows_the_utility_and_the_limits(case3):
    """Inside its range the elastic load is (b − λ)/2a; above b nothing is bought for it; with the bid
    floor at 0 the midday PV surplus is curtailed, at an effective price of 0 (bid multiplier −λ)."""
    day = sm.reference_day(case3)
    pros = case3.prosumers
    lam = np.full(24, 1200.0)
    r = sm.best_response(case3, day, lam)
    d_free = np.clip((pros.utility_linear - 1200.0) / (2 * pros.utility_quadratic), 0, pros.elastic_max)
    unconstrained = np.abs(r.bid_bound) < 1e-12
    np.testing.assert_allclose(r.elastic[unconstrained], np.broadcast_to(d_free[:, None], (3, 24))[unconstrained])
    surplus = r.curtailed > 1e-9
    assert surplus[0, 12] and surplus[2, 12]  # PV prosumers at noon
    np.testing.assert_allclose(r.exchange_power[surplus], 0.0, atol=1e-12)
    np.testing.assert_allclose(r.bid_bound[surplus], -1200.0)
    np.testing.assert_allclose(r.elastic[surplus], np.broadcast_to(pros.elastic_max[:, None], (3, 24))[surplus])
    high = sm.best_response(case3, day, np.full(24, 1500.0))
    free = np.abs(high.bid_bound) < 1e-12
    assert free.any() and not high.elastic[free].any()  # b < 1500: none bought where the bid floor is slack
    assert (high.elastic[~free] > 0).any()  # where it binds (surplus) the load soaks up energy before curtailing


def test_infeasible_bid_limits_are_a_status(case3):
    """A bid ceiling below the prosumer's net load has no schedule: reported, not raised."""
    pros = case3.prosumers
    tight = case3.replace(prosumers=pros.__class__(**{**{f: getattr(pros, f) for f in pros.__dataclass_fields__},
                                                      "bid_max": np.array([0.05, 0.55, 0.4])}))
    r = sm.best_response(tight, sm.reference_day(tight), np.full(24, 700.0))
    assert r.status.tolist() == ["infeasible", "optimal", "optimal"] and not r.ok
    assert "keeps its bid limits" in r.failure
    out = sm.evaluate(tight, sm.reference_day(tight), np.full(24, 700.0))
    assert out.status.startswith("follower_failed") and np.isnan(out.dno_objective)


def test_batch_replan_and_cvxpy_block_agree(case3):
    """The batched solve equals the single one; re-planning from hour 10 keeps the first 10 hours; the
    cvxpy block (`ProsumerBlock`, used by P2P and ADMM) minimises to the exact response."""
    import cvxpy as cp

    day = sm.simbench_day(case3, 200)
    rng = np.random.default_rng(1)
    prices = rng.uniform(300, 1600, (4, 3, 24))
    batch = best_response_batch(case3, day, prices)
    for s in range(4):
        single = sm.best_response(case3, day, prices[s])
        np.testing.assert_array_equal(batch[s].exchange_power, single.exchange_power)
    first = sm.best_response(case3, day, prices[0])
    again = replan(case3, day, prices[1], first, 10)
    np.testing.assert_array_equal(again.exchange_power[:, :10], first.exchange_power[:, :10])
    assert max(kkt_residuals(case3, day, sm.best_response(case3, day, prices[1])).values()) < 1e-6
    for n in range(3):
        block = ProsumerBlock(case3, n, day)
        cp.Problem(cp.Minimize(block.own_cost + prices[0, n] @ block.exchange), block.constraints).solve("CLARABEL")
        np.testing.assert_allclose(block.exchange.value, first.exchange_power[n], atol=1e-5)
        assert block.own_cost.value + prices[0, n] @ block.exchange.value == pytest.approx(first.cost[n], abs=1e-3)


def test_stackelberg_optimum_on_the_papers_network(case3):
    """`kkt.solve` on Song et al.'s (2024) own network: a verified certificate (followers re-solved, the answer
    re-scored by `evaluate`, every multiplier inside its derived Big-M), and the leader's optimum no
    worse than the LMP fixed point's prices, which obey the same price rules (one projected price)."""
    from stackelberg_mop.algorithms import fixed_point
    from stackelberg_mop.bilevel import kkt

    day = sm.reference_day(case3)
    res = kkt.solve(case3, day, time_limit=120, threads=1)
    assert res.status == "optimal" and res.verification.passed and res.gap <= 1e-4
    assert res.verification.bigm_ratio < 1.0
    fp = fixed_point.solve(case3, day)
    assert fp.status == "converged" and fp.iterations <= 20  # the package's defaults, within the paper's cap
    assert fp.outcome.price_violation <= 1e-6
    assert res.objective <= fp.outcome.dno_objective * (1 + 1e-4)
    assert sm.evaluate(case3, day, res.prices).dno_objective == pytest.approx(res.objective, rel=1e-6)


@pytest.fixture(scope="module")
def claims(case3):
    from stackelberg_mop.papers.p2p_sharing import reproduce

    return reproduce(case3, sm.reference_day(case3), scales=(1.0, 1.5, 2.0), stackelberg_time_limit=None)


def test_the_case_has_the_papers_sharing_platform(case3):
    """Pairwise caps 150 kW (1–2), 200 kW (2–3), 180 kW (1–3); the bid limits bound the exchange after
    trades; the separable "exact" path refuses bid-limited prosumers."""
    from stackelberg_mop.market.p2p import p2p_market, p2p_response

    market = p2p_market(case3)
    np.testing.assert_array_equal(market.cap, [[0, 0.15, 0.18], [0.15, 0, 0.2], [0.18, 0.2, 0]])
    np.testing.assert_array_equal(market.exchange_upper, case3.prosumers.bid_max)
    res = p2p_response(case3, sm.reference_day(case3), np.full(24, 900.0), market)
    assert res.method == "centralised" and res.ok
    assert np.all(np.abs(res.trades) <= market.cap[:, :, None] + 1e-7)
    assert np.all(res.exchange_power >= -1e-7) and np.all(res.exchange_power <= market.exchange_upper[:, None] + 1e-7)
    with pytest.raises(ValueError, match="'exact' needs a market without exchange_limit"):
        p2p_response(case3, sm.reference_day(case3), np.full(24, 900.0), p2p_market(case3, cap_mw=0.1), method="exact")


def test_algorithm2_reaches_an_lmp_equilibrium_with_sharing(case3, claims):
    """Within the paper's 20 iterations, and the answer is an equilibrium: the sharing market re-solved
    at the prices gives bids whose dispatch's LMPs are those prices (to the stopping tolerance)."""
    from stackelberg_mop.market.p2p import p2p_market, p2p_response
    from stackelberg_mop.powerflow import dispatch_model

    assert claims.fixed_point_iterations is not None and claims.fixed_point_iterations <= 20
    day, market = sm.reference_day(case3), p2p_market(case3)
    prices = claims.sharing.prices
    bids = p2p_response(case3, day, prices, market).exchange_power
    lmp = dispatch_model(case3).solve(day, bids).lmp[case3.bus_position(case3.prosumers.bus)]
    assert np.abs(lmp - prices).max() <= 0.5


def test_distributed_sharing_equals_the_centralised_optimum(claims):
    """Proposition 1: Algorithm 1 (the paper's stopping rule) reaches the centralised optimum."""
    assert claims.admm_iterations < 2000
    assert claims.distributed_gap < 1e-5 and claims.trade_difference < 1e-3


def test_sharing_lowers_the_prosumers_cost_and_pv_sells_at_midday(claims):
    assert claims.cost_without_p2p > claims.cost_with_p2p
    sales = claims.midday_sales
    assert sales[0] > 0 and sales[2] > 0 and sales[1] < 0  # PV prosumers 1, 3 sell; wind prosumer 2 buys


def test_steeper_utility_converges_faster_and_the_dso_cost_settles(claims):
    """The cobweb condition (Fig. 9): iterations non-increasing and the residual after five iterations
    decreasing in the utility's scale a, 1.5a, 2a; the DSO's objective is constant at the end."""
    scales = sorted(claims.cobweb)
    iterations = [claims.cobweb[s][0] for s in scales]
    assert None not in iterations and iterations == sorted(iterations, reverse=True)
    fifth = [claims.cobweb[s][1][4] for s in scales]
    assert fifth == sorted(fifth, reverse=True) and fifth[0] > fifth[-1]
    tail = claims.dso_objective_tail
    assert max(tail) - min(tail) <= 1e-4 * abs(tail[-1])


@pytest.mark.parametrize("env_id, kwargs", [("StackelbergMOP-v1", {}), ("StackelbergMOP-v1", {"p2p": True}),
                                            ("StackelbergMOPHourly-v1", {})])
def test_the_environments_run_on_the_papers_system(env_id, kwargs):
    """Gymnasium's and stable-baselines3's checkers pass; an episode scores through `evaluate` (the
    reward is minus the DSO's objective over its scale, finite), and the observation carries the wind."""
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id, case="p2p-sharing", **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    assert "wind" in env.unwrapped.observation_layout
    env.reset(seed=3)
    done, rewards = False, []
    while not done:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
        done = terminated or truncated
    assert info["status"] == "optimal" and np.all(np.isfinite(rewards))


def test_market_overrides_keep_the_bid_limits_and_validate(case3):
    """Whatever is overridden, the prosumers' bid limits bound their exchange after trades; limits
    are checked; a market copies with dataclasses.replace."""
    import dataclasses

    from stackelberg_mop.market.p2p import P2PMarket, p2p_market, p2p_response

    day = sm.reference_day(case3)
    for market in (p2p_market(case3, trade_cost=20.0), p2p_market(case3, cap_mw=0.3),
                   p2p_market(case3, exchange_limit_mw=0.45)):
        np.testing.assert_array_equal(market.exchange_lower, np.maximum(case3.prosumers.bid_min,
                                                                         market.exchange_lower))
        res = p2p_response(case3, day, np.linspace(500, 1500, 24), market)
        assert res.ok and res.exchange_power.min() >= -1e-7
        assert np.all(res.exchange_power <= market.exchange_upper[:, None] + 1e-7)
    assert p2p_market(case3, exchange_limit_mw=0.45).exchange_upper.tolist() == [0.45, 0.45, 0.4]
    sym = P2PMarket(cap=np.ones((3, 3)) * 0.1, exchange_limit=[0.3, 0.3, 0.3])
    assert dataclasses.replace(sym, trade_cost=20.0).exchange_upper.tolist() == [0.3, 0.3, 0.3]
    with pytest.raises(ValueError, match="exchange_lower: must lie below exchange_upper"):
        P2PMarket(cap=np.zeros((3, 3)), exchange_lower=[0, 0, 1.0], exchange_upper=[1, 1, 0.5])
    with pytest.raises(ValueError, match="exchange_upper: expected 3 values"):
        P2PMarket(cap=np.zeros((3, 3)), exchange_upper=[1.0, 1.0])


def test_algorithm1_as_written(case3):
    """`solve_admm(rule="paper")`: starts from zero prices and trades, keeps ρ fixed, and stops as soon
    as the sharing balance max |p_nm + p_mn| is within ε, reaching the centralised trades."""
    from stackelberg_mop.market.p2p import p2p_market, p2p_response, solve_admm

    day, market = sm.reference_day(case3), p2p_market(case3)
    prices = np.linspace(600, 1400, 24)[None, :] + np.array([[0.0], [15.0], [8.0]])
    res = solve_admm(case3, day, prices, market, rule="paper", rho=400.0, eps_abs=1e-4)
    central = p2p_response(case3, day, prices, market, method="centralised")
    assert res.status == "optimal" and len(set(res.rho)) == 1
    assert res.primal_residual[-1] <= 0.5e-4 * np.sqrt(res.trades.size)  # ‖r‖₂ <= √d ‖r‖∞, 2‖r‖∞ <= ε
    assert res.primal_residual[-2] > 0.5e-4  # it had not stopped before the balance was met
    assert np.abs(res.trades - central.trades).max() < 1e-3
    assert abs(res.joint_cost - central.joint_cost) <= 1e-4 * abs(central.joint_cost)
    slower = solve_admm(case3, day, prices, market, rule="paper", rho=400.0, eps_abs=1e-6)
    assert slower.iterations > res.iterations  # the stop is the balance tolerance
    with pytest.raises(ValueError, match="rule"):
        solve_admm(case3, day, prices, market, rule="fast")


def test_algorithm2_without_sharing_is_an_exact_equilibrium(case3):
    """Without sharing, the bids at the fixed point are the exact best response to its prices, and
    the prices are the LMPs of those bids' dispatch (to the stopping tolerance), within 20 iterations."""
    from stackelberg_mop.papers.p2p_sharing import algorithm2
    from stackelberg_mop.powerflow import dispatch_model

    day = sm.reference_day(case3)
    res = algorithm2(case3, day, None)
    assert res.status == "converged" and res.iterations <= 20
    response = sm.best_response(case3, day, res.prices)
    assert max(kkt_residuals(case3, day, response).values()) < 1e-6
    np.testing.assert_allclose(response.exchange_power, res.exchange_power, atol=1e-3)
    lmp = dispatch_model(case3).solve(day, response.exchange_power).lmp[case3.bus_position(case3.prosumers.bus)]
    assert np.abs(lmp - res.prices).max() <= 0.5
