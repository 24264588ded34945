"""The LMP fixed point: it is a fixed point; the cobweb condition; the proximal iteration converges in the
default case to a certified equilibrium (= the welfare optimum with per-bus prices); per-prosumer
prices; peer-to-peer bids; line limit."""

import numpy as np
import pytest

import stackelberg_mop as sm
from stackelberg_mop.algorithms import admm, fixed_point
from stackelberg_mop.cases.variants import line_limited_case
from stackelberg_mop.market.p2p import p2p_market, p2p_response
from stackelberg_mop.market.prices import project_prices
from stackelberg_mop.powerflow import dispatch_model
from stackelberg_mop.scoring import price_violation as price_rule_violation


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
    again = project_prices(stiff, day, lmp.mean(axis=0))
    assert np.abs(again - r.prices).max() <= 0.1
    assert np.abs(sm.best_response(stiff, day, again).exchange_power - bids).max() <= 1e-3
    assert price_rule_violation(stiff, day, r.prices) <= 1e-9
    assert r.outcome.status == "optimal" and r.outcome.price_violation <= 1e-9


def test_cobweb_convergence_depends_on_the_response_slope(case, day, converged):
    """Song et al. (2024) §5.3: elastic prosumers (the default batteries, 1/2ε = 0.5 MW per ¥/MWh) keep the
    iteration cycling when the prices may move in [400, 1100] (the flat-cap rule); 1000× stiffer
    prosumers converge. Under the paper's rule (λ_t <= ρ^buy_t) the LMPs, at or above the HV buy price
    on the reference day, are clipped to the tariff itself: the plain iteration stops at once."""
    flat = sm.load_case("ieee33-mop-flatcap")
    elastic = fixed_point.solve(flat, day, damping=0.5, max_iter=12, evaluate_result=False)
    assert not elastic.converged and elastic.status == "max_iter"
    assert min(elastic.power_residual[-4:]) > 0.05  # a persistent cycle of the bids, not slow convergence
    assert converged.iterations < 25
    paper = fixed_point.solve(case, day, damping=0.5, max_iter=12, evaluate_result=False)
    assert paper.converged and paper.iterations <= 2
    np.testing.assert_allclose(paper.prices, day.buy_price)


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
    assert price_rule_violation(limited, day, r.prices) <= 1e-9
    fd = sm.powerflow.feeder(limited)
    k = int(np.flatnonzero((fd.from_pos == 1) & (fd.to_pos == 2))[0])
    assert np.isfinite(fd.i_max[k])
    assert r.dispatch.current_sq[k].max() <= fd.i_max[k] ** 2 * (1 + 1e-6)
    assert np.isinf(sm.powerflow.feeder(case).i_max[k])  # the original case is untouched


def test_bad_options(case, day):
    with pytest.raises(ValueError, match="damping"):
        fixed_point.solve(case, day, damping=0.0)
    with pytest.raises(ValueError, match="damping"):
        fixed_point.solve(case, day, damping="newton")
    with pytest.raises(ValueError, match="rho"):
        fixed_point.solve(case, day, rho=0.0)
    with pytest.raises(ValueError, match="initial_prices"):
        fixed_point.solve(case, day, initial_prices=np.full(24, np.nan))


def _check_equilibrium(case, day, r, tol_price=0.1, tol_power=1e-3):
    """What the proximal answer promises, each checked independently of the iteration."""
    assert r.converged and r.status == "converged"
    assert r.price_residual[-1] <= tol_price and r.power_residual[-1] <= tol_power
    # the LMP state is an exact LMP (subgradient of the network cost) of the DNO's dispatch, certified by
    # a proximal dispatch with another ρ, which must return that dispatch unchanged
    assert fixed_point.lmp_residual(case, day, r.dno_exchange, r.lmp, rho=100.0) <= tol_power
    assert fixed_point.lmp_residual(case, day, r.dno_exchange, r.lmp, rho=5000.0) <= tol_power
    # ... of a dispatch that serves the bids
    assert np.abs(r.dno_exchange - r.exchange_power).max() <= tol_power
    # the bids are the prosumers' exact best response (re-solved) to prices within 2·tol of the posted ones
    posted = np.broadcast_to(r.prices, r.bid_prices.shape)
    assert np.abs(r.bid_prices - posted).max() <= 2 * tol_price
    return posted


def test_proximal_iteration_converges_in_the_default_case(case, day):
    """Default κ and ε, where the plain iteration cycles: one posted price, projected onto the rules."""
    r = fixed_point.solve(case, day)
    assert r.options["damping"] == "proximal"
    _check_equilibrium(case, day, r)
    np.testing.assert_allclose(sm.best_response(case, day, r.bid_prices).exchange_power, r.exchange_power,
                               atol=1e-4)
    np.testing.assert_allclose(r.prices, project_prices(case, day, r.lmp.mean(axis=0)), atol=1e-9)  # λ = post(μ)
    assert price_rule_violation(case, day, r.prices) <= 1e-9
    assert r.outcome.status == "optimal" and r.outcome.price_violation <= 1e-9
    assert r.dispatch.status.startswith("optimal")
    # one price for all, as the rules require; under the paper's rule (λ_t <= ρ^buy_t) the LMPs, raised
    # above the HV buy price by losses and voltage, are capped at the tariff: the equilibrium posts it
    assert r.prices.shape == (24,)
    np.testing.assert_allclose(r.prices, project_prices(case, day, day.buy_price), atol=2 * 0.1)
    flat = sm.load_case("ieee33-mop-flatcap")  # with room above the tariff, the LMPs show
    f = fixed_point.solve(flat, day)
    _check_equilibrium(flat, day, f)
    assert np.abs(f.prices - project_prices(flat, day, day.buy_price)).max() > 1.0


def test_per_bus_lmp_equilibrium_is_the_welfare_optimum(case, day):
    """With one unprojected price per prosumer the equilibrium (λ_n = LMP at n's bus, P = BR(λ)) is the
    welfare optimum's: the bids equal the centralised clearing's, and the welfare matches."""
    r = fixed_point.solve(case, day, price_per_prosumer=True, project=False)
    _check_equilibrium(case, day, r)
    np.testing.assert_allclose(sm.best_response(case, day, r.bid_prices).exchange_power, r.exchange_power,
                               atol=1e-4)
    np.testing.assert_allclose(r.lmp, r.prices, atol=1e-12)  # per bus and unprojected: λ = μ
    central = admm.solve_centralised(case, day)
    assert np.abs(r.exchange_power - central.exchange_power).max() <= 5e-3
    welfare = r.outcome.dno_objective / case.objective.omega_economic + r.outcome.prosumer_costs.sum()
    assert abs(welfare - central.total_cost) <= 1e-5 * abs(central.total_cost)


def test_proximal_iteration_with_peer_to_peer_bids(case, day):
    market = p2p_market(case)
    r = fixed_point.solve(case, day, price_per_prosumer=True, p2p=market)
    _check_equilibrium(case, day, r)
    shared = p2p_response(case, day, r.bid_prices, market, method="centralised")
    np.testing.assert_allclose(shared.exchange_power, r.exchange_power, atol=1e-4)
    assert price_rule_violation(case, day, r.prices) <= 1e-9


@pytest.mark.slow
def test_successive_averages_approach_the_equilibrium_where_damping_cycles(day):
    """Default κ and ε on the flat-cap rule (under the paper's the LMPs are capped at the tariff and the
    iteration stops at once): α = 0.5 keeps cycling (~40 ¥/MWh); the running mean (MSA) keeps shrinking."""
    case = sm.load_case("ieee33-mop-flatcap")
    cycling = fixed_point.solve(case, day, damping=0.5, max_iter=150, evaluate_result=False)
    averaged = fixed_point.solve(case, day, damping="msa", max_iter=150, evaluate_result=False)
    assert not cycling.converged and min(cycling.price_residual[-20:]) > 10.0
    assert max(averaged.price_residual[-20:]) < 0.25 * min(cycling.price_residual[-20:])
