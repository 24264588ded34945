"""ADMM welfare clearing = the centralised optimum; the DNO model agrees with the dispatch; Nash split."""

import numpy as np
import pytest

from stackelberg_mop.algorithms import admm
from stackelberg_mop.cases.variants import line_limited_case
from stackelberg_mop.powerflow import dispatch_model, feeder
from stackelberg_mop.scoring import network_costs


@pytest.fixture(scope="module")
def central(case, day):
    return admm.solve_centralised(case, day)


@pytest.fixture(scope="module")
def distributed(case, day):
    return admm.solve(case, day, max_iter=100)


def test_admm_matches_the_centralised_optimum(central, distributed):
    assert distributed.status == "optimal" and distributed.iterations <= 100
    assert abs(distributed.total_cost - central.total_cost) <= 1e-4 * abs(central.total_cost)
    np.testing.assert_allclose(distributed.exchange_power, distributed.dno_exchange, atol=1e-2)
    np.testing.assert_allclose(distributed.exchange_power, central.exchange_power, atol=2e-2)
    # the consensus multipliers are the clearing prices: close to the centralised duals in most hours
    assert np.median(np.abs(distributed.prices - central.prices)) < 5.0
    assert len(distributed.primal_residual) == distributed.iterations == len(distributed.rho)
    assert distributed.outcome is not None and distributed.outcome.status == "optimal"


def test_welfare_clearing_beats_the_tariff(case, day, central):
    alone = admm.bargain(case, day, central)
    assert alone.savings > 0


def test_dno_model_is_the_dispatch_model(case, day, central):
    """The DNO's ADMM problem and `powerflow.DispatchModel` price the same exchange the same way."""
    res = dispatch_model(case).solve(day, central.exchange_power)
    costs = network_costs(case, day, res.grid_power, res.line_loss, res.mop_loss, res.v)
    grid, line, mop, dev = (costs[k] for k in ("grid", "line_loss", "mop_loss", "voltage_deviation"))
    obj = case.objective
    assert costs["dg"] == 0.0
    assert grid + line + mop + obj.omega_voltage / obj.omega_economic * dev == pytest.approx(
        central.network_cost, rel=1e-5)


def test_nash_bargaining_split(case, day, distributed):
    b = admm.bargain(case, day, distributed)
    assert abs(b.payment.sum()) <= 1e-6 * abs(b.savings)
    assert b.individually_rational and np.all(b.final <= b.alone + 1e-6)
    assert b.weight.sum() == pytest.approx(1.0) and b.weight[0] == pytest.approx(0.5)
    # closed form of max Π benefit^w with Σ pay = 0: benefit_i = w_i · savings
    np.testing.assert_allclose(b.alone - b.final, b.weight * b.savings, rtol=1e-3, atol=1e-2)  # exp-cone accuracy
    with pytest.raises(ValueError, match="no savings"):
        admm.nash_payments([1.0, 2.0], [1.5, 2.0], [0.5, 0.5])


def test_line_limit_binds_in_the_clearing(case, day, central):
    limited = line_limited_case(case, 1.8)
    tight = admm.solve_centralised(limited, day)
    fd = feeder(limited)
    k = int(np.flatnonzero((fd.from_pos == 1) & (fd.to_pos == 2))[0])
    assert tight.total_cost > central.total_cost + 1.0  # congestion costs something
    assert np.isfinite(fd.i_max[k]) and fd.i_max[k] ** 2 < 0.2  # 1.8 MVA at 10 MVA base


def test_admm_line_limited_matches_centralised(case, day):
    # the response to the tariff breaks this line limit, so the default start (LMPs of that
    # dispatch) does not exist: ADMM starts from the tariff and still reaches the central optimum
    limited = line_limited_case(case, 1.8)
    c = admm.solve_centralised(limited, day)
    a = admm.solve(limited, day, max_iter=150)
    assert a.status == "optimal"
    assert abs(a.total_cost - c.total_cost) <= 1e-4 * abs(c.total_cost)


def test_admm_policy_posts_prices_within_the_rules(case, day, distributed):
    # the benchmark's "admm" projects each prosumer's clearing prices onto the price rules; the raw
    # clearing prices break them (so they could not be judged against the bi-level optimum)
    from stackelberg_mop.market import project_prices
    from stackelberg_mop.policies.baselines import ADMMPolicy
    from stackelberg_mop.scoring import price_violation

    policy = ADMMPolicy()
    prices, _ = policy(case, day)
    assert prices.shape == distributed.prices.shape
    assert price_violation(case, day, prices) <= 1e-9
    assert policy.details["raw_price_violation"] == pytest.approx(price_violation(case, day, distributed.prices), rel=1e-3)
    np.testing.assert_allclose(prices, project_prices(case, day, distributed.prices), atol=0.05)
