"""The follower's best response: exact (KKT), equal to an independent cvxpy model, well-behaved input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import stackelberg_mop as sm
from stackelberg_mop.market import best_response_batch, follower_qp, kkt_residuals
from stackelberg_mop.market.reference import best_response_cvxpy

KEYS = ("transfer", "charge", "discharge", "stored_energy", "exchange_power", "cost")
price_vectors = arrays(np.float64, 24, elements=st.floats(0.0, 2000.0))


def assert_exact(case, day, response, tol=1e-6):
    res = kkt_residuals(case, day, response)
    assert max(res.values()) < tol, res
    assert response.ok


@settings(max_examples=15)
@given(prices=arrays(np.float64, 24, elements=st.integers(0, 2000).map(float), unique=True))
def test_matches_independent_cvxpy_model(case, day, prices):
    """Identical schedules and costs (1e-6) to a cvxpy model solved by Clarabel.

    Prices are distinct whole ¥/MWh: where hours tie, only the small ε term fixes the battery's split
    and an interior-point reference drifts ~1e-6 MW along the flat face at ~1e-12 ¥, so it cannot
    judge the fast path there; ties are covered by the reference-free KKT and perturbation tests.
    """
    fast = sm.best_response(case, day, prices)
    ref = best_response_cvxpy(case, day, prices)
    for key in KEYS:
        np.testing.assert_allclose(getattr(fast, key), ref[key], atol=1e-6, rtol=0, err_msg=key)


@settings(max_examples=40)
@given(prices=price_vectors, day_of_year=st.integers(0, 365))
def test_kkt_conditions_hold_on_real_days(case, prices, day_of_year):
    day = sm.simbench_day(case, day_of_year)
    assert_exact(case, day, sm.best_response(case, day, prices))


@settings(max_examples=20)
@given(prices=arrays(np.float64, (5, 24), elements=st.floats(400.0, 1100.0)))
def test_per_prosumer_prices_are_exact(case, day, prices):
    response = sm.best_response(case, day, prices)
    assert_exact(case, day, response)
    np.testing.assert_array_equal(response.prices, prices)


@settings(max_examples=30)
@given(prices=price_vectors)
def test_shifted_energy_and_battery_cycle_close(case, day, prices):
    r = sm.best_response(case, day, prices)
    bat = case.batteries
    assert np.abs(r.transfer.sum(axis=1)).max() < 1e-9  # the day's energy is kept
    limit = case.prosumers.shift_fraction[:, None] * day.fixed_load
    assert np.all(np.abs(r.transfer) <= limit + 1e-9)
    owners = bat.owner
    np.testing.assert_allclose(r.stored_energy[owners, -1], bat.e_init, atol=1e-9)  # state of charge closes
    assert np.all(r.stored_energy[owners] >= bat.e_min[:, None] - 1e-9)
    assert np.all(r.stored_energy[owners] <= bat.e_max[:, None] + 1e-9)
    # energy balance reconstructed from the powers, hour by hour
    flow = bat.eta_charge[:, None] * r.charge[owners] - r.discharge[owners] / bat.eta_discharge[:, None]
    np.testing.assert_allclose(r.stored_energy[owners], bat.e_init[:, None] + np.cumsum(flow, axis=1), atol=1e-9)
    assert not r.simultaneous.any()
    no_battery = np.setdiff1d(np.arange(len(case.prosumers)), owners)
    assert np.all(r.charge[no_battery] == 0) and np.all(r.discharge[no_battery] == 0)


def test_batch_equals_single(case, day):
    prices = np.random.default_rng(3).uniform(400, 1100, (12, 24))
    batch = best_response_batch(case, day, prices)
    assert batch.cost.shape == (12, 5) and batch.exchange_power.shape == (12, 5, 24)
    for s in (0, 5, 11):
        single = sm.best_response(case, day, prices[s])
        for key in KEYS:
            np.testing.assert_allclose(getattr(batch[s], key), getattr(single, key), atol=1e-12)


def test_response_is_no_worse_than_perturbed_feasible_schedules(case, day):
    """Optimality from the outside: feasible perturbations of the optimum never cost less."""
    prices = case.tariff.buy_price
    r = sm.best_response(case, day, prices)
    rng = np.random.default_rng(0)
    for n in range(len(case.prosumers)):
        qp = follower_qp(case, day, n)
        x = np.concatenate([r.transfer[n]] + ([r.charge[n], r.discharge[n], r.stored_energy[n]]
                                              if qp.has_battery else []))
        def cost(z, qp=qp):
            return 0.5 * z @ (qp.Q * z) + qp.c @ z + prices @ (qp.G @ z + qp.h)

        null = np.linalg.svd(qp.E)[2][np.linalg.matrix_rank(qp.E):]  # directions keeping Ex = d
        for _ in range(200):
            z = x + 1e-3 * rng.standard_normal(null.shape[0]) @ null
            if np.all(z >= qp.lower - 1e-12) and np.all(z <= qp.upper + 1e-12):
                assert cost(z) >= r.cost[n] - 1e-9


def test_simultaneous_charge_and_discharge_is_detected(case, day):
    """Below −δ(1+η²)/(1−η²) ≈ −390 ¥/MWh burning energy pays: the relaxation is flagged, not hidden."""
    r = sm.best_response(case, day, np.full(24, -2000.0))
    assert r.simultaneous[case.batteries.owner].all()
    assert not r.ok
    assert not sm.best_response(case, day, np.full(24, -300.0)).simultaneous.any()


@pytest.mark.parametrize("bad, message", [
    (np.r_[np.full(23, 500.0), np.nan], "finite"),
    (np.r_[np.full(23, 500.0), np.inf], "finite"),
    (np.full(23, 500.0), "shape"),
    (np.full((4, 24), 500.0), "shape"),
])
def test_bad_prices_raise_clear_errors(case, day, bad, message):
    with pytest.raises(ValueError, match=f"prices: .*{message}"):
        sm.best_response(case, day, bad)


def test_batched_bad_prices_name_the_vector(case, day):
    prices = np.full((3, 24), 500.0)
    prices[2, 7] = np.nan
    with pytest.raises(ValueError, match="hour 7 of price vector 2"):
        best_response_batch(case, day, prices)


def test_day_that_does_not_fit_the_case_is_rejected(case, day):
    other = sm.Day(fixed_load=day.fixed_load[:3], pv=day.pv[:3], base_p=day.base_p, base_q=day.base_q,
                   buy_price=day.buy_price, sell_price=day.sell_price)
    with pytest.raises(ValueError, match="day.fixed_load: shape"):
        sm.best_response(case, other, day.buy_price)
