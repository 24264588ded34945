"""The LMP fixed point: it is a fixed point; the cobweb condition; per-prosumer prices; line limit."""

import numpy as np
import pytest

import stackelberg_mop as sm
from stackelberg_mop.baselines import fixed_point
from stackelberg_mop.cases.variants import line_limited_case
from stackelberg_mop.evaluate import price_violation as price_rule_violation
from stackelberg_mop.market.prices import project_prices
from stackelberg_mop.powerflow import dispatch_model


@pytest.fixture(scope="module")
def stiff(case):
    """Prosumers 1000× less price-elastic (κ and ε scaled): the cobweb condition holds."""
    return fixed_point.kappa_scaled(case, 1000.0)


@pytest.fixture(scope="module")
def converged(stiff, day):
    return fixed_point.solve(stiff, day, damping=0.5, max_iter=30)


def test_the_answer_is_a_fixed_point(stiff, day, converged):
    r = converged
    assert r.converged and r.status == "converged"
    assert r.price_residual[-1] <= 0.1 and r.power_residual[-1] <= 1e-3
    assert len(r.price_residual) == r.iterations == len(r.power_residual)
    # one more undamped iteration, computed independently, changes nothing beyond tolerance
    bids = sm.best_response(stiff, day, r.prices).exchange_power
    lmp = dispatch_model(stiff).solve(day, bids).lmp[stiff.bus_position(stiff.prosumers.bus)]
    again = project_prices(stiff, lmp.mean(axis=0))
    assert np.abs(again - r.prices).max() <= 0.1
    assert np.abs(sm.best_response(stiff, day, again).exchange_power - bids).max() <= 1e-3
    assert price_rule_violation(stiff, r.prices) <= 1e-9
    assert r.outcome.status == "optimal" and r.outcome.price_violation <= 1e-9


def test_cobweb_convergence_depends_on_the_response_slope(case, day, converged):
    """seeds/003 §5.3: elastic prosumers (the default batteries, 1/2ε = 0.5 MW per ¥/MWh) keep the
    iteration cycling; 1000× stiffer prosumers converge."""
    elastic = fixed_point.solve(case, day, damping=0.5, max_iter=12, evaluate_result=False)
    assert not elastic.converged and elastic.status == "max_iter"
    assert min(elastic.power_residual[-4:]) > 0.05  # a persistent cycle of the bids, not slow convergence
    assert converged.iterations < 25


def test_kappa_scaled_scales_the_response(case):
    scaled = fixed_point.kappa_scaled(case, 2.0)
    np.testing.assert_allclose(scaled.prosumers.kappa, 2 * case.prosumers.kappa)
    np.testing.assert_allclose(scaled.batteries.regularisation, 2 * case.batteries.regularisation)
    np.testing.assert_array_equal(case.prosumers.kappa, [3000, 2500, 3500, 2000, 3000])
    with pytest.raises(ValueError):
        fixed_point.kappa_scaled(case, 0.0)


def test_per_prosumer_prices_and_line_limit(case, day):
    limited = line_limited_case(case, 2.0)
    r = fixed_point.solve(limited, day, damping=0.5, max_iter=4, price_per_prosumer=True)
    assert r.prices.shape == (5, 24) and r.lmp.shape == (5, 24)
    assert r.status in ("converged", "max_iter")
    assert price_rule_violation(limited, r.prices) <= 1e-9
    fd = sm.powerflow.feeder(limited)
    k = int(np.flatnonzero((fd.from_pos == 1) & (fd.to_pos == 2))[0])
    assert np.isfinite(fd.i_max[k])
    assert r.dispatch.current_sq[k].max() <= fd.i_max[k] ** 2 * (1 + 1e-6)
    assert np.isinf(sm.powerflow.feeder(case).i_max[k])  # the original case is untouched


def test_bad_damping(case, day):
    with pytest.raises(ValueError, match="damping"):
        fixed_point.solve(case, day, damping=0.0)


@pytest.mark.slow
def test_successive_averages_approach_the_equilibrium_where_damping_cycles(case, day):
    """Default κ and ε: α = 0.5 keeps cycling (~40 ¥/MWh); the running mean (MSA) keeps shrinking."""
    cycling = fixed_point.solve(case, day, damping=0.5, max_iter=150, evaluate_result=False)
    averaged = fixed_point.solve(case, day, damping="msa", max_iter=150, evaluate_result=False)
    assert not cycling.converged and min(cycling.price_residual[-20:]) > 10.0
    assert max(averaged.price_residual[-20:]) < 0.25 * min(cycling.price_residual[-20:])
