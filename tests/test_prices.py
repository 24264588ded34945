"""The price-rule projection and the HV price scenarios (Monte-Carlo + k-means)."""

import dataclasses

import cvxpy as cp
import numpy as np
import pytest

import stackelberg_mop as sm
from stackelberg_mop.data.hv_prices import draw_hv_prices, hv_price_scenarios, sample_hv_prices
from stackelberg_mop.evaluate import evaluate_expected
from stackelberg_mop.evaluate import price_violation as price_rule_violation
from stackelberg_mop.market.prices import project_prices


def test_projection_is_the_euclidean_projection(case):
    rng = np.random.default_rng(0)
    p = rng.normal(800, 350, (6, 24))
    out = project_prices(case, p)
    rules = case.price_rules
    for row, got in zip(p, out):
        x = cp.Variable(24)
        cp.Problem(cp.Minimize(cp.sum_squares(x - row)),
                   [x >= rules.price_min, x <= rules.price_max, cp.sum(x) / 24 <= rules.mean_cap]).solve(
            solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        np.testing.assert_allclose(got, x.value, atol=1e-5)
    assert price_rule_violation(case, out) <= 1e-9
    np.testing.assert_allclose(project_prices(case, out), out, atol=1e-9)  # idempotent
    np.testing.assert_array_equal(project_prices(case, case.tariff.buy_price), case.tariff.buy_price)
    with pytest.raises(ValueError, match="finite"):
        project_prices(case, np.full(24, np.nan))


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
