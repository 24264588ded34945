"""dJ/dλ (`evaluate(..., gradient=True)`, `scoring.gradient`) against central finite differences, the
followers' response Jacobian's structure, the price map's derivative, and the environment's reward
gradient."""

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stackelberg_mop as sm
from stackelberg_mop.market import action_jacobian, action_to_prices
from stackelberg_mop.scoring.gradient import response_jacobian


def _central(f, x, index, step):
    e = np.zeros_like(x)
    e[index] = step
    return (f(x + e) - f(x - e)) / (2 * step)


@settings(max_examples=8, deadline=None)
@given(name=st.sampled_from(sm.available_cases()), mop=st.sampled_from(["opf", "off"]),
       limits=st.sampled_from(["hard", "none"]), formulation=st.sampled_from(["socp", "lindistflow"]),
       per_prosumer=st.booleans(), day_of_year=st.integers(0, 365), seed=st.integers(0, 2**16))
def test_gradient_equals_central_differences(name, mop, limits, formulation, per_prosumer, day_of_year, seed):
    """Away from kinks, on every shipped case and mode `evaluate` dispatches: where central differences
    at two step sizes agree (J is smooth there), the exact gradient equals them."""
    case = sm.load_case(name)
    day = sm.simbench_day(case, day_of_year)
    rng = np.random.default_rng(seed)
    bounds = sm.market.price_bounds(case, day)
    prices = bounds.project(rng.uniform(bounds.lower, bounds.upper))
    if per_prosumer:
        prices = np.tile(prices, (len(case.prosumers), 1)) + rng.uniform(-3, 3, (len(case.prosumers), 24))
    kw = {"mop": mop, "voltage_limits": limits, "formulation": formulation}
    out = sm.evaluate(case, day, prices, gradient=True, **kw)
    assert out.price_gradient.shape == prices.shape and out.gradient_kinks.shape == (24,)
    if not out.status.startswith("optimal"):
        assert np.isnan(out.price_gradient).all()
        return
    objective = lambda p: sm.evaluate(case, day, p, **kw).dno_objective
    compared = 0
    for _ in range(5):
        index = tuple(int(rng.integers(0, s)) for s in prices.shape)
        coarse, fine = (_central(objective, prices, index, h) for h in (0.4, 0.1))
        if abs(coarse - fine) <= 1e-3 * (1 + abs(fine)):  # smooth within ±0.4 ¥/MWh
            # abs: central differences of J ~ 2e4 ¥ solved to a relative 1e-7 (the dispatch's tolerance)
            # carry ~1e-3 ¥ per ¥/MWh of noise at h = 0.1
            assert out.price_gradient[index] == pytest.approx(fine, rel=1e-3, abs=1.5e-3), index
            compared += 1
    assert compared >= 1  # a draw where no hour is smooth would make the test vacuous


@settings(max_examples=10, deadline=None)
@given(name=st.sampled_from(sm.available_cases()), day_of_year=st.integers(0, 365), seed=st.integers(0, 2**16))
def test_a_followers_price_response_is_symmetric_and_downward(name, day_of_year, seed):
    """∂P_n/∂λ_n = −G_F N (NᵀQN)⁻¹ NᵀG_Fᵀ: symmetric, negative semi-definite (a prosumer never buys
    more when its price rises), and zero in the hours its exchange is pinned at a bound."""
    case = sm.load_case(name)
    day = sm.simbench_day(case, day_of_year)
    rng = np.random.default_rng(seed)
    bounds = sm.market.price_bounds(case, day)
    response = sm.best_response(case, day, bounds.project(rng.uniform(bounds.lower, bounds.upper)))
    for n in range(len(case.prosumers)):
        jac, kinks = response_jacobian(case, day, response, n)
        assert jac.shape == (24, 24) and kinks.shape == (24,)
        np.testing.assert_allclose(jac, jac.T, atol=1e-10)
        assert np.linalg.eigvalsh(jac).max() <= 1e-10


def test_the_gradient_is_refused_where_it_is_not_defined(case, day):
    setpoints = np.zeros((2, len(case.mop), 24))
    with pytest.raises(ValueError, match="gradient: not defined with MOP set-points"):
        sm.evaluate(case, day, case.tariff.buy_price, mop=setpoints, gradient=True)
    with pytest.raises(ValueError, match="gradient: not defined for voltage_limits='soft'"):
        sm.evaluate(case, day, case.tariff.buy_price, voltage_limits="soft", gradient=True)
    with pytest.raises(ValueError, match="gradient: expected True or False"):
        sm.evaluate(case, day, case.tariff.buy_price, gradient="yes")
    shared = sm.load_case("p2p-sharing")
    from stackelberg_mop.market.p2p import p2p_market, p2p_response

    sday = sm.reference_day(shared)
    lam = np.tile(shared.tariff.buy_price, (len(shared.prosumers), 1))
    with pytest.raises(ValueError, match="followers' own best response"):
        sm.evaluate(shared, sday, lam, response=p2p_response(shared, sday, lam, p2p_market(shared)), gradient=True)
    for mop in ("agent",):
        with pytest.raises(ValueError, match="gradient"):
            gym.make("StackelbergMOP-v1", mop=mop, reward_gradient=True)


@pytest.mark.parametrize("name", ["ieee33-mop", "ieee33-mop-flatcap"])
def test_the_price_maps_derivative(name):
    """dλ/da through the affine map and the projection, against central differences; the flat-cap case
    binds its daily-mean cap, where the free hours move together less their mean."""
    case = sm.load_case(name)
    rng = np.random.default_rng(4)
    binding = 0
    for doy in (5, 100, 300):
        day = sm.simbench_day(case, doy)
        action = np.clip(rng.uniform(-1, 1, 24) + 0.5, -0.99, 0.99)
        prices = lambda a, day=day: action_to_prices(case, day, a)[0]
        fd = np.stack([_central(prices, action, t, 1e-6) for t in range(24)], axis=1)
        np.testing.assert_allclose(action_jacobian(case, day, action), fd, atol=1e-5)
        binding += prices(action).mean() >= case.price_rules.mean_cap - 1e-6
    assert binding >= 1 if name.endswith("flatcap") else binding == 0


def test_the_environments_reward_gradient_is_the_rewards_derivative():
    env = gym.make("StackelbergMOP-v1", split="val", reward_gradient=True)
    rng = np.random.default_rng(0)
    action = rng.uniform(-0.9, 0.9, 24).astype(np.float32)

    def reward(a):
        env.reset(options={"day": 3})
        return env.step(a)[1]

    env.reset(options={"day": 3})
    info = env.step(action)[-1]
    assert info["reward_gradient"].shape == env.action_space.shape and info["gradient_kinks"].shape == (24,)
    for t in (0, 9, 18):
        coarse, fine = (_central(reward, action.astype(float), t, h) for h in (4e-3, 1e-3))
        if abs(coarse - fine) <= 1e-3 * (1 + abs(fine)):
            assert info["reward_gradient"][t] == pytest.approx(fine, rel=2e-3, abs=1e-5)


def test_the_objective_is_differentiable_in_torch(case):
    """`rl.autograd.day_objective`: the forward pass is `evaluate`'s J, the backward pass its gradient,
    through a chain of tensor operations (a softplus map from parameters to prices)."""
    torch = pytest.importorskip("torch")
    from stackelberg_mop.rl.autograd import day_objective

    day = sm.simbench_day(case, 45)
    bounds = sm.market.price_bounds(case, day)
    theta = torch.zeros(24, dtype=torch.float64, requires_grad=True)
    lo, hi = torch.tensor(bounds.lower), torch.tensor(bounds.upper)
    prices = lo + (hi - lo) * torch.sigmoid(theta)  # inside the hourly bounds, the mean below the cap here
    value = day_objective(case, day, prices)
    value.backward()
    out = sm.evaluate(case, day, prices.detach().numpy(), gradient=True)
    assert value.item() == pytest.approx(out.dno_objective)
    slope = (hi - lo) * torch.sigmoid(torch.zeros(24)) * (1 - torch.sigmoid(torch.zeros(24)))
    np.testing.assert_allclose(theta.grad.numpy(), out.price_gradient * slope.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="prices: expected a torch tensor"):
        day_objective(case, day, bounds.lower)
