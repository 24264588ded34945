"""The one declared cache (`stackelberg_mop.cache`): models built once per case, answers that do not
depend on what was solved before."""

from __future__ import annotations

import numpy as np

import stackelberg_mop as sm
from stackelberg_mop import cache
from stackelberg_mop.algorithms import admm, fixed_point
from stackelberg_mop.market.p2p import p2p_market, p2p_response
from stackelberg_mop.scoring import evaluate_hour


def _calls(case):
    """Scorings that touch every cached model: evaluate (dispatch, followers, AC), the one-hour
    dispatch, ADMM, the fixed point, P2P sharing, the observation."""
    test = sm.days(case, "test")
    a, b = test[3], test[30]
    bounds = sm.market.price_bounds(case, b)
    lam = bounds.project(np.linspace(bounds.lower.min(), bounds.upper.max(), 24))
    market = p2p_market(case)
    return {
        "evaluate a": lambda: sm.evaluate(case, a, case.tariff.buy_price).dno_objective,
        "evaluate b": lambda: sm.evaluate(case, b, lam, mop="off", voltage_limits="soft").dno_objective,
        "hour b": lambda: evaluate_hour(case, b, lam, 13).objective,
        "admm b": lambda: admm.solve(case, b, max_iter=30).prices.tobytes(),
        "fixed point a": lambda: fixed_point.solve(case, a, max_iter=15).prices.tobytes(),
        "p2p b": lambda: p2p_response(case, b, lam, market).exchange_power.tobytes(),
        "features a": lambda: sm.envs.day_features(case, a).tobytes(),
    }


def test_the_same_calls_in_two_orders_give_identical_answers():
    forward = {name: call() for name, call in _calls(sm.load_case()).items()}
    backward = {name: call() for name, call in reversed(list(_calls(sm.load_case()).items()))}
    assert forward == backward                                      # bit for bit
    # and on one case, after everything else ran, each call still gives its first answer
    case = sm.load_case()
    calls = _calls(case)
    first = {name: call() for name, call in calls.items()}
    assert {name: call() for name, call in reversed(list(calls.items()))} == first


def test_the_cache_is_one_declared_entry_per_model_and_case():
    case = sm.load_case()
    assert cache.names(case) == []
    sm.evaluate(case, sm.reference_day(case), case.tariff.buy_price)
    built = cache.names(case)
    assert {"feeder", "dispatch_models"} <= set(built)
    assert {k for k in case.__dict__ if k.startswith("_")} == {cache.ATTRIBUTE}  # no other hidden state
    other = case.replace(objective=case.objective)
    assert cache.names(other) == []                                 # a replaced case starts empty
    cache.share(other, case, "feeder", "absent")
    assert cache.names(other) == ["feeder"] and cache.cached(other, "feeder", dict) is cache.cached(case, "feeder", dict)
    cache.clear(case)
    assert cache.names(case) == []
