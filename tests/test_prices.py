"""The price-rule projection and the HV price scenarios (Monte-Carlo + k-means)."""

import dataclasses

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import stackelberg_mop as sm
from stackelberg_mop.data.hv_prices import draw_hv_prices, hv_price_scenarios, sample_hv_prices
from stackelberg_mop.market.prices import action_to_prices, price_bounds, prices_to_action, project_prices
from stackelberg_mop.scoring import evaluate_expected
from stackelberg_mop.scoring import price_violation as price_rule_violation


def _reference_projection(p, lo, hi, cap):
    """The projection by a QP solver: Clarabel at tight tolerances, at its defaults where those fail
    (hours fixed by narrowing make the feasible set thin)."""
    x = cp.Variable(24)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(x - p)), [x >= lo, x <= hi, cp.sum(x) / 24 <= cap])
    try:
        problem.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    except cp.error.SolverError:
        problem.solve(solver="CLARABEL")
    return x.value


def _assert_projection_kkt(lam, p, bounds, tol=1e-6):
    """The optimality conditions of min ‖λ − p‖² over lo <= λ <= hi, mean(λ) <= cap: λ = clip(p − τ)
    for one τ >= 0 (the mean cap's multiplier × 24), τ = 0 unless the cap binds. A hour fixed by its
    bounds (lo = hi) says nothing about τ; a free hour fixes it, an hour at a bound bounds it."""
    lo, hi, span = bounds.lower, bounds.upper, bounds.upper - bounds.lower
    movable = span > tol
    free = movable & (lam > lo + tol) & (lam < hi - tol)
    at_lo = movable & ~free & (lam <= lo + tol)
    at_hi = movable & ~free & (lam >= hi - tol)
    assert np.all(free | at_lo | at_hi | ~movable)
    tau_min = max([0.0, *(p[at_lo] - lo[at_lo])])
    tau_max = min([np.inf, *(p[at_hi] - hi[at_hi])])
    if free.any():
        taus = p[free] - lam[free]
        assert np.ptp(taus) <= tol and taus[0] >= -tol
        tau_min = tau_max = taus[0]
    assert tau_min <= tau_max + tol  # some τ >= 0 explains every hour
    if lam.mean() < bounds.mean_cap - tol:  # the cap does not bind: τ = 0
        assert tau_min <= tol


@pytest.mark.parametrize("name", ["ieee33-mop", "ieee33-mop-flatcap"])
def test_projection_is_the_euclidean_projection(name, day):
    case = sm.load_case(name)
    rng = np.random.default_rng(0)
    p = rng.normal(800, 350, (6, 24))
    out = project_prices(case, day, p)
    bounds = price_bounds(case, day)
    for row, got in zip(p, out):
        np.testing.assert_allclose(got, _reference_projection(row, bounds.lower, bounds.upper, bounds.mean_cap),
                                   atol=1e-5)
    assert price_rule_violation(case, day, out) <= 1e-9
    np.testing.assert_allclose(project_prices(case, day, out), out, atol=1e-9)  # idempotent
    np.testing.assert_array_equal(project_prices(case, day, day.buy_price), day.buy_price)  # the tariff keeps both
    with pytest.raises(ValueError, match="finite"):
        project_prices(case, day, np.full(24, np.nan))
    with pytest.raises(ValueError, match=r"shape \(24,\) or \(S, 24\)"):
        project_prices(case, day, np.full(23, 500.0))


@settings(max_examples=60, deadline=None)
@given(p=arrays(np.float64, 24, elements=st.floats(-500, 2500)),
       buy=arrays(np.float64, 24, elements=st.floats(400, 1400)),
       fixed=st.lists(st.integers(0, 23), max_size=8), where=st.floats(0, 1))
def test_projection_onto_hourly_bounds_is_exact(case, day, p, buy, fixed, where):
    """Random HV buy prices move the default rule's upper bounds (ρ^sell <= λ <= ρ^buy within [400, 1100]);
    some hours fixed inside their bounds by narrowing; the projection keeps every rule and meets the
    optimality conditions exactly (or the narrowing is refused when the fixed hours alone break the
    mean cap). The comparison with a QP solver is the test above (thin feasible sets trip Clarabel)."""
    drawn = dataclasses.replace(day, buy_price=buy)
    lower = np.full(24, -np.inf)
    upper = np.full(24, np.inf)
    bounds = price_bounds(case, drawn)
    lower[fixed] = upper[fixed] = bounds.lower[fixed] + where * (bounds.upper[fixed] - bounds.lower[fixed])
    floor = np.where(np.isfinite(lower), lower, bounds.lower)
    if floor.mean() > bounds.mean_cap + 1e-9:
        with pytest.raises(ValueError, match="mean cap"):
            price_bounds(case, drawn, lower, upper)
        return
    bounds = price_bounds(case, drawn, lower, upper)
    np.testing.assert_array_equal(bounds.upper[fixed], bounds.lower[fixed])
    assert np.all(bounds.upper <= np.minimum(buy, 1100.0)) and np.all(bounds.lower >= 400.0)
    lam = project_prices(case, drawn, p, lower, upper)
    assert bounds.violation(lam) <= 1e-9
    _assert_projection_kkt(lam, p, bounds)
    np.testing.assert_allclose(bounds.project(lam), lam, atol=1e-9)


def test_projection_with_every_hour_fixed_on_the_cap(case, day):
    """Every hour fixed at the tariff, whose mean is the cap itself: the only admissible vector, whatever
    is projected (the breakpoint search must not run past its last point on round-off)."""
    bounds = price_bounds(case, day, lower=day.buy_price, upper=day.buy_price)
    for p in np.random.default_rng(3).normal(800, 400, (50, 24)):
        np.testing.assert_allclose(bounds.project(p), day.buy_price)
    # a cap a hair (within the 1e-9 tolerance) below the fixed hours' mean: the floor itself comes back
    rules = dataclasses.replace(case.price_rules, mean_cap=float(np.mean(day.buy_price)) - 5e-10)
    tight = price_bounds(case.replace(price_rules=rules), day, lower=day.buy_price, upper=day.buy_price)
    np.testing.assert_allclose(tight.project(np.full(24, 2000.0)), day.buy_price)


@settings(max_examples=40, deadline=None)
@given(a=arrays(np.float64, 24, elements=st.floats(-3, 3)), buy=arrays(np.float64, 24, elements=st.floats(400, 1400)))
def test_action_map_spans_each_hours_bounds_and_inverts(case, day, a, buy):
    drawn = dataclasses.replace(day, buy_price=buy)
    bounds = price_bounds(case, drawn)
    lo, _ = action_to_prices(case, drawn, -np.ones(24))
    np.testing.assert_allclose(lo, bounds.lower)  # the floor is always admissible
    hi_raw = action_to_prices(case, drawn, np.ones(24))[1]
    np.testing.assert_allclose(hi_raw, bounds.upper)
    prices, raw = action_to_prices(case, drawn, a)
    np.testing.assert_allclose(raw, bounds.from_action(np.clip(a, -1, 1)))
    assert bounds.violation(prices) <= 1e-9
    back = action_to_prices(case, drawn, prices_to_action(case, drawn, prices))[0]
    np.testing.assert_allclose(back, prices, atol=1e-3)  # float32 actions


def test_the_paper_rule_follows_the_days_tariff(case, day):
    """Lou et al. (2025): the hour's cap is its HV buy (time-of-use) price, the floor the sell price; the flat-cap
    variant keeps the constant box [400, 1100]."""
    bounds = price_bounds(case, day)
    np.testing.assert_array_equal(bounds.upper, np.minimum(day.buy_price, 1100.0))
    np.testing.assert_array_equal(bounds.lower, np.maximum(day.sell_price, 400.0))
    # 1,100 everywhere is capped at each hour's time-of-use price; the mean cap is then implied
    np.testing.assert_array_equal(project_prices(case, day, np.full(24, 1100.0)), day.buy_price)
    flat = sm.load_case("ieee33-mop-flatcap")
    fb = price_bounds(flat, day)
    assert np.all(fb.lower == 400.0) and np.all(fb.upper == 1100.0) and fb.mean_cap == bounds.mean_cap
    assert price_rule_violation(case, day, np.full(24, 700.0)) == pytest.approx(250.0)  # 700 at a 450 hour
    assert price_rule_violation(flat, day, np.full(24, 700.0)) == 0.0
    with pytest.raises(ValueError, match="hour 3"):
        price_bounds(case, day, lower=np.where(np.arange(24) == 3, 500.0, 0.0))  # 500 > hour 3's cap 450


def test_scenarios_keep_the_sample_mean(day):
    sc = hv_price_scenarios(day, n_samples=1000, n_scenarios=10, seed=1)
    assert len(sc) == 10
    assert sc.weight.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(sc.weight > 0)
    np.testing.assert_allclose(sc.weight @ sc.buy_price, sc.sample_mean, atol=1e-9)
    assert np.all(sc.buy_price >= sc.sell_price)
    # the sample mean is near the tariff (truncation at the sell price only lifts it a little)
    assert np.abs(sc.sample_mean - day.buy_price).max() < 0.03 * day.buy_price.max()
    again = hv_price_scenarios(day, n_samples=1000, n_scenarios=10, seed=1)
    np.testing.assert_array_equal(again.buy_price, sc.buy_price)
    spread = sample_hv_prices(day.buy_price, day.sell_price, 4000, 0.1, 0).std(axis=0)
    assert spread[8] == pytest.approx(0.1 * 1100, rel=0.08)  # σ = 10 % of the tariff at a peak hour


def test_draws_are_reproducible(day):
    sc = hv_price_scenarios(day, n_samples=200, n_scenarios=5)
    a = draw_hv_prices(day, np.random.default_rng(7), scenarios=sc)
    b = draw_hv_prices(day, np.random.default_rng(7), scenarios=sc)
    np.testing.assert_array_equal(a.buy_price, b.buy_price)
    assert any(np.array_equal(a.buy_price, s) for s in sc.buy_price)
    c = draw_hv_prices(day, np.random.default_rng(7))
    assert np.all(c.buy_price >= day.sell_price) and not np.array_equal(c.buy_price, day.buy_price)


def test_expected_evaluation_weights_the_scenarios(case, day):
    sc = hv_price_scenarios(day, n_samples=100, n_scenarios=2, seed=0)
    expected = evaluate_expected(case, day, day.buy_price, sc)
    singles = [sm.evaluate(case, d, day.buy_price) for d in sc.days(day)]
    assert expected.status == "optimal"
    assert expected.dno_objective == pytest.approx(sum(w * o.dno_objective for w, o in zip(sc.weight, singles)),
                                                   rel=1e-9)
    plain = dataclasses.replace(day)
    assert sm.evaluate(case, plain, day.buy_price).dno_objective != pytest.approx(expected.dno_objective, rel=1e-6)
