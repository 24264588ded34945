"""Peer-to-peer sharing: exact = centralised = distributed ADMM; no trade under one price; evaluate hook."""

import numpy as np
import pytest

import stackelberg_mop as sm
from stackelberg_mop.market.p2p import p2p_market, p2p_response


@pytest.fixture(scope="module")
def lmp_like(case, day):
    """Per-prosumer prices with LMP-like spreads: the tariff plus a bus- and hour-dependent premium."""
    rng = np.random.default_rng(3)
    return day.buy_price[None, :] * (1.0 + rng.uniform(0.0, 0.4, (len(case.prosumers), 24)))


def test_exact_equals_centralised(case, day, lmp_like):
    market = p2p_market(case)
    exact = p2p_response(case, day, lmp_like, market, method="exact")
    central = p2p_response(case, day, lmp_like, market, method="centralised")
    assert exact.ok and central.ok
    assert abs(exact.joint_cost - central.joint_cost) <= 1e-6 * abs(central.joint_cost)
    # the interior-point answer depends at ~1e-5 MW on the solver's history (cvxpy warm-starts Clarabel
    # when presolve removes nothing): 1e-4 MW = 0.1 kW
    np.testing.assert_allclose(exact.exchange_power, central.exchange_power, atol=1e-4)
    np.testing.assert_allclose(exact.trades, -exact.trades.transpose(1, 0, 2), atol=0)
    assert np.abs(exact.trades).max() <= market.cap.max() + 1e-12
    assert np.abs(exact.trades).max() > 0.1  # the spreads make trading pay
    # sharing lowers the prosumers' joint cost against no sharing
    alone = sm.best_response(case, day, lmp_like)
    assert exact.joint_cost < alone.cost.sum() - 1.0


def test_no_trade_under_one_price(case, day):
    share = p2p_response(case, day, day.buy_price, p2p_market(case), method="centralised")
    assert np.abs(share.trades).max() < 1e-6
    np.testing.assert_allclose(share.exchange_power, sm.best_response(case, day, day.buy_price).exchange_power,
                               atol=1e-5)


def test_admm_reaches_the_centralised_optimum_with_bid_limits(case, day, lmp_like):
    limited = p2p_market(case, exchange_limit_mw=0.3)
    central = p2p_response(case, day, lmp_like, limited, method="centralised")
    free = p2p_response(case, day, lmp_like, p2p_market(case), method="exact")
    assert central.ok
    assert np.abs(central.exchange_power).max() == pytest.approx(0.3, abs=1e-6)  # the limit binds
    assert central.joint_cost > free.joint_cost + 1.0
    admm = p2p_response(case, day, lmp_like, limited, method="admm", max_iter=300)
    assert admm.status == "optimal", admm.status
    assert abs(admm.joint_cost - central.joint_cost) <= 1e-4 * abs(central.joint_cost)
    np.testing.assert_allclose(admm.trades, -admm.trades.transpose(1, 0, 2), atol=1e-12)
    np.testing.assert_allclose(admm.exchange_power, central.exchange_power, atol=5e-3)
    assert len(admm.primal_residual) == admm.iterations


def test_evaluate_scores_the_sharing_market(case, day, lmp_like):
    share = p2p_response(case, day, lmp_like, p2p_market(case))
    outcome = sm.evaluate(case, day, lmp_like, response=share)
    assert outcome.status == "optimal"
    np.testing.assert_allclose(outcome.exchange_power, share.exchange_power)
    np.testing.assert_allclose(outcome.prosumer_costs, share.cost)
    assert outcome.revenue == pytest.approx(float((lmp_like * share.exchange_power).sum()))


def test_bad_market_input(case):
    with pytest.raises(ValueError, match="cap"):
        p2p_market(case, cap_mw=np.ones((5, 4)))
    with pytest.raises(ValueError, match="trade_cost"):
        p2p_market(case, trade_cost=0.0)
