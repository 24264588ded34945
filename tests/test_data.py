"""Days: the reference day follows MODEL.md; SimBench days are scaled, deterministic and split by weeks."""

import numpy as np
import pytest

import stackelberg_mop as sm
from stackelberg_mop.data import day_indices, simbench_day


def test_reference_day_follows_model(case, day):
    p_nom, q_nom = case.nominal_load
    pos = case.bus_position(case.prosumers.bus)
    np.testing.assert_allclose(day.fixed_load, p_nom[pos, None] * case.reference_load)
    assert np.all(day.base_p[pos] == 0)  # the prosumer's fixed load replaces the bus's base load
    np.testing.assert_allclose(day.base_q[pos], q_nom[pos, None] * case.reference_load)
    np.testing.assert_allclose(day.base_p.sum(0) + day.fixed_load.sum(0), p_nom.sum() * case.reference_load)
    np.testing.assert_allclose(day.pv.max(1), case.prosumers.pv_capacity * case.reference_pv.max())
    assert day.pv[:, :6].sum() == 0 and day.pv[:, 19:].sum() == 0  # sin((t + 0.5 − 6)π/13) > 0 only for 6 <= t <= 18
    np.testing.assert_array_equal(day.buy_price, case.tariff.buy_price)


def test_splits_are_disjoint_whole_weeks_and_cover_the_year():
    sets = {s: set(day_indices(s).tolist()) for s in sm.data.SPLITS}
    assert sum(map(len, sets.values())) == 366 == len(set().union(*sets.values()))
    assert (len(sets["train"]), len(sets["val"]), len(sets["test"])) == (275, 42, 49)
    for split, members in sets.items():
        weeks = {d // 7 for d in members}
        for w in weeks:  # a week is never shared between splits
            assert set(range(7 * w, min(7 * w + 7, 366))) <= members, (split, w)


def test_splits_are_deterministic(case):
    a, b = sm.days(case, "test"), sm.days(case, "test")
    assert [d.name for d in a] == [d.name for d in b]
    for x, y in zip(a[:5], b[:5]):
        np.testing.assert_array_equal(x.fixed_load, y.fixed_load)
        np.testing.assert_array_equal(x.pv, y.pv)
    assert {d.split for d in a} == {"test"}


def test_simbench_days_are_scaled_to_the_case_peaks(case):
    year = [simbench_day(case, d) for d in range(366)]
    p_nom, _ = case.nominal_load
    bus_p = np.stack([d.base_p for d in year])  # (days, buses, 24)
    pos = case.bus_position(case.prosumers.bus)
    bus_p[:, pos] = np.stack([d.fixed_load for d in year])
    np.testing.assert_allclose(bus_p.max(axis=(0, 2)), p_nom * case.reference_load.max(), rtol=1e-6)
    pv = np.stack([d.pv for d in year])
    np.testing.assert_allclose(pv.max(axis=(0, 2)), case.prosumers.pv_capacity, rtol=1e-6)
    # real variety: winter days carry more load and less PV than summer days
    assert pv[:31].sum() < 0.5 * pv[152:183].sum()


@pytest.mark.parametrize("kwargs, message", [
    ({"day_of_year": 366}, "day_of_year"), ({"day_of_year": 3, "load_set": "x"}, "load_set")])
def test_bad_day_requests(case, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simbench_day(case, **kwargs)


def test_bad_split(case):
    with pytest.raises(ValueError, match="split: must be one of"):
        sm.days(case, "validation")


def test_day_validation(day):
    with pytest.raises(ValueError, match="day.pv: must be finite"):
        sm.Day(fixed_load=day.fixed_load, pv=np.full_like(day.pv, np.nan), base_p=day.base_p, base_q=day.base_q,
               buy_price=day.buy_price, sell_price=day.sell_price)


def test_a_day_is_refused_by_a_case_it_was_not_made_for(case):
    """Same shapes are not enough: a day scaled from other loads or prosumers is named, not scored; cases
    that differ only in what a day does not depend on (rules, objective, tariff) share their days."""
    import dataclasses

    day = sm.simbench_day(case, 10)
    more_pv = case.replace(prosumers=dataclasses.replace(case.prosumers, pv_capacity=case.prosumers.pv_capacity * 2))
    assert sm.simbench_day(more_pv, 10).pv.shape == day.pv.shape
    with pytest.raises(ValueError, match="day: 2016-01-11 was made for another case"):
        sm.evaluate(more_pv, day, case.tariff.buy_price)
    with pytest.raises(ValueError, match="made for another case"):
        sm.best_response(more_pv, day, case.tariff.buy_price)
    other_rules = sm.load_case("ieee33-mop-flatcap")
    assert sm.evaluate(other_rules, day, other_rules.tariff.buy_price * 0 + 700).status == "optimal"
    by_hand = dataclasses.replace(day, source=None)
    assert by_hand.check(more_pv) is by_hand  # a day built by hand carries no mark: shapes are checked


def test_the_tariffs_score_is_kept_per_days_data(case):
    """`TariffScore` caches J_tariff per day's data, not per date: the same date with SimBench's household
    load profiles is another day, with its own J_tariff (each equal to scoring the tariff directly)."""
    from stackelberg_mop.market import project_prices
    from stackelberg_mop.scoring.yardstick import TariffScore

    score = TariffScore(case)
    for load_set in ("aggregate", "household", "aggregate"):
        day = sm.simbench_day(case, 100, load_set)
        direct = sm.evaluate(case, day, project_prices(case, day, day.buy_price)).dno_objective
        assert score(day) == pytest.approx(direct, rel=1e-9)
    assert len(score._scores) == 2
