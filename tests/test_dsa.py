"""Wang et al.'s (2024) DSA market (`papers.dsa_market`) on the case `substation-areas`: individual and cooperative operation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import stackelberg_mop as sm
from stackelberg_mop.cases.variants import line_limited_case
from stackelberg_mop.papers.dsa_market import operate, score
from stackelberg_mop.powerflow import feeder


@pytest.fixture(scope="module")
def dsa_case():
    return sm.load_case("substation-areas")


def test_the_case_is_the_papers_system(dsa_case):
    """DSAs at the paper's buses 11, 23, 29 (1-based) with PV, wind, PV, a battery each and demand
    response; the feeder carries only them; the three pairs may trade."""
    c = dsa_case
    np.testing.assert_array_equal(c.prosumers.bus + 1, [11, 23, 29])
    assert c.nominal_load[0].sum() == 0 and len(c.batteries) == 3 and (c.prosumers.shift_fraction > 0).all()
    assert (c.sharing.cap > 0).sum() == 6 and c.dsa.curtailable.all()


@settings(max_examples=6, deadline=None)
@given(prices=arrays(np.float64, 24, elements=st.floats(400.0, 1500.0)), dr=st.booleans())
def test_cooperation_never_costs_more(dsa_case, prices, dr):
    """Individual operation is feasible for the cooperative problem (the feeder's set is the same), so
    the coalition's cost is never higher, for any tariff scenario. Each operation re-scored from its
    reported quantities alone (`dsa.score`): the costs are the model's, the books balance per DSA and
    hour, and the AC power flow of the withdrawals keeps the voltage limits, within 1e-3 p.u. of
    LinDistFlow's voltages."""
    day = sm.reference_day(dsa_case)
    ind = operate(dsa_case, day, "individual", dr, buy_price=prices)
    coop = operate(dsa_case, day, "cooperative", dr, buy_price=prices)
    assert ind.status == coop.status == "optimal"
    scale = abs(ind.cost).sum()
    assert coop.total_cost <= ind.total_cost + 1e-6 * scale
    for op in (ind, coop):
        rescored = score(dsa_case, day, op, buy_price=prices)
        np.testing.assert_allclose(rescored["cost"], op.cost, rtol=0, atol=1e-6 * scale)
        assert rescored["balance"] <= 1e-6 and rescored["ac_converged"]
        vm = rescored["vm"][1:]
        assert vm.min() >= dsa_case.v_min - 1e-6 and vm.max() <= dsa_case.v_max + 1e-6
        assert np.abs(rescored["vm"] - np.sqrt(op.v)).max() <= 1e-3
    assert not ind.trades.any()
    np.testing.assert_allclose(coop.trades, -coop.trades.transpose(1, 0, 2), atol=1e-7)
    assert np.all(np.abs(coop.trades) <= dsa_case.sharing.cap[:, :, None] + 1e-7)
    if not dr:
        assert np.abs(ind.shift).max() < 1e-7 and np.abs(coop.shift).max() < 1e-7


def test_demand_response_and_cooperation_on_the_reference_day(dsa_case):
    """Demand response lowers both costs; cooperation buys and sells less with the network; the
    feeder stays within its voltage limits."""
    day = sm.reference_day(dsa_case)
    runs = {(m, dr): operate(dsa_case, day, m, dr) for m in ("individual", "cooperative") for dr in (False, True)}
    for m in ("individual", "cooperative"):
        assert runs[m, True].total_cost < runs[m, False].total_cost - 1
    ind, coop = runs["individual", False], runs["cooperative", False]
    assert coop.buy.sum() < ind.buy.sum() and coop.sell.sum() < ind.sell.sum()
    v = np.sqrt(coop.v)
    assert v.min() >= dsa_case.v_min - 1e-6 and v.max() <= dsa_case.v_max + 1e-6


def test_the_100_kw_line_binds_and_holds(dsa_case):
    """Wang et al.'s (2024) congested case: 100 kW on the line between the paper's buses 2 and 3 holds (and would
    be broken without it); cooperation still costs less than individual operation."""
    formulation = "lindistflow"
    limited = line_limited_case(dsa_case, 0.1)
    day = sm.reference_day(limited)
    b = int(np.flatnonzero(np.isfinite(feeder(limited).i_max))[0])
    free = operate(dsa_case, day, "individual", False, formulation=formulation)
    ind = operate(limited, day, "individual", False, formulation=formulation)
    coop = operate(limited, day, "cooperative", False, formulation=formulation)
    assert ind.status == coop.status == "optimal"
    assert np.abs(free.branch_p[b]).max() > 0.1 + 1e-3  # the limit would be broken without it
    assert np.abs(ind.branch_p[b]).max() <= 0.1 + 1e-5 and np.abs(coop.branch_p[b]).max() <= 0.1 + 1e-5
    assert coop.total_cost < ind.total_cost


def test_bad_input_is_named(dsa_case):
    day = sm.reference_day(dsa_case)
    with pytest.raises(ValueError, match="has no DSA market"):
        operate(sm.load_case(), sm.reference_day(sm.load_case()))
    with pytest.raises(ValueError, match="mode"):
        operate(dsa_case, day, "together")
    with pytest.raises(ValueError, match="the DSA market uses 'lindistflow'"):
        operate(dsa_case, day, formulation="socp")
    with pytest.raises(ValueError, match="buy_price: expected 24"):
        operate(dsa_case, day, buy_price=np.ones(5))


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["network"].__setitem__("load_scale", -1), r"network\.load_scale"),
    (lambda s: s["dsa"].__setitem__("admm_penalty_cny_per_mw2h", [500, 0, 500]), r"dsa\.admm_penalty: must be > 0"),
    (lambda s: s["dsa"].__setitem__("comfort_cost_cny_per_mwh", [50, 50]), r"dsa\.comfort_cost: expected 3 values"),
    (lambda s: s["dsa"].__setitem__("curtailable", [True, "no", True]), r"dsa\.curtailable"),
    (lambda s: s["dsa"].__setitem__("import_max_mw", [1, -1, 1]), r"dsa\.import_max: must be >= 0"),
    (lambda s: s.pop("p2p"), r"dsa: needs the section p2p"),
])
def test_dsa_fields_are_validated(edit, message):
    import json
    from importlib import resources

    from stackelberg_mop.cases import CaseError, case_from_dict

    spec = json.loads(resources.files("stackelberg_mop.cases").joinpath("substation-areas.json").read_text())
    edit(spec)
    with pytest.raises(CaseError, match=message):
        case_from_dict(spec)


def test_load_scale_scales_the_networks_own_loads(dsa_case):
    from stackelberg_mop.cases import case_from_dict

    half = case_from_dict({"extends": "ieee33-mop", "name": "half", "network": {"pandapower_case": "case33bw",
                                                                              "load_scale": 0.5}})
    full = sm.load_case()
    np.testing.assert_allclose(half.nominal_load[0], 0.5 * full.nominal_load[0])
    assert half.fingerprint != full.fingerprint and dsa_case.nominal_load[0].sum() == 0


def test_nash_bargaining_splits_the_savings_by_traded_energy(dsa_case):
    """Payments sum to zero, every DSA ends no worse off than alone, and each keeps its weight's share
    of the savings (B_n = w_n S, the log-form bargaining's solution), w_n its share of net energy traded."""
    from stackelberg_mop.papers import substation_areas

    day = sm.reference_day(dsa_case)
    ind, coop = operate(dsa_case, day, "individual", True), operate(dsa_case, day, "cooperative", True)
    b = substation_areas.bargain(ind, coop)
    assert b.savings > 0 and abs(b.payment.sum()) <= 1e-6 * b.savings and b.individually_rational
    np.testing.assert_allclose(b.alone - b.final, b.weight * b.savings, rtol=1e-3, atol=1e-2)  # exp-cone accuracy
    traded = np.abs(coop.trades.sum(axis=1)).sum(axis=-1)
    np.testing.assert_allclose(b.weight, traded / traded.sum())


def test_uncertain_prices_cannot_raise_the_expected_optimum(dsa_case):
    """Operated scenario by scenario, the expected cost is at most the cost at the scenarios' mean price
    (concave in the prices; k-means keeps the mean), in both modes; cooperation saves in every scenario."""
    from stackelberg_mop.data.hv_prices import hv_price_scenarios
    from stackelberg_mop.papers import substation_areas

    day = sm.reference_day(dsa_case)
    scenarios = hv_price_scenarios(day, n_samples=200, n_scenarios=5)
    mean_day = scenarios.expected_day(day)
    for mode in ("individual", "cooperative"):
        exp = substation_areas.expected_operation(dsa_case, day, scenarios, mode, dr=False)
        at_mean = operate(dsa_case, mean_day, mode, False)
        assert exp.total_cost <= at_mean.total_cost + 1e-6 * abs(at_mean.cost).sum()
    ind = substation_areas.expected_operation(dsa_case, day, scenarios, "individual", dr=False)
    coop = substation_areas.expected_operation(dsa_case, day, scenarios, "cooperative", dr=False)
    assert all(i.total_cost >= c.total_cost - 1e-6 for i, c in zip(ind.operations, coop.operations))
    b = substation_areas.bargain_expected(ind, coop)
    assert b.individually_rational and abs(b.payment.sum()) <= 1e-6 * b.savings


def test_algorithm1_reaches_the_centralised_optimum(dsa_case):
    """Wang et al.'s (2024) decentralised ADMM (neighbours only, one ρ per DSA, per-DSA residual stop) ends with
    every DSA's residuals within tolerance, at the centralised coalition cost within 1 % of the savings
    and trades within 0.02 MW (ε_pri = 1e-4 MW per entry, ε_dual = 0.1 ¥/MWh); tighter tolerances get closer."""
    from stackelberg_mop.papers.dsa_admm import algorithm1

    day = sm.reference_day(dsa_case)
    central, alone = operate(dsa_case, day, "cooperative", True), operate(dsa_case, day, "individual", True)
    savings = alone.total_cost - central.total_cost
    res = algorithm1(dsa_case, day, "cooperative", True)
    assert res.status == "optimal" and res.primal[-1] <= 1 and res.dual[-1] <= 1 and res.primal[0] > 1
    op = res.operation
    assert abs(op.total_cost - central.total_cost) <= 0.01 * savings
    rescored = score(dsa_case, day, op)  # the agreed trades against each DSA's own: the residuals' size
    assert np.abs(rescored["cost"] - op.cost).max() <= 1e-4 * savings and rescored["balance"] <= 1e-3
    assert np.abs(op.trades - central.trades).max() <= 0.02
    np.testing.assert_allclose(op.trades, -op.trades.transpose(1, 0, 2), atol=1e-12)
    tight = algorithm1(dsa_case, day, "cooperative", True, eps_pri=1e-6, eps_dual=1e-3)
    assert tight.iterations > res.iterations
    assert abs(tight.operation.total_cost - central.total_cost) < abs(op.total_cost - central.total_cost)


def test_the_papers_qualitative_claims(dsa_case):
    """Wang et al.'s (2024) Tables 1–3 in kind (`papers.substation_areas.reproduce`): cooperation saves in every row and
    the bargaining leaves every DSA better off; demand response lowers both costs in every row; the
    coalition buys and sells less with the network; batteries are used less in cooperation; voltages stay
    within limits with DSA 1's range the widest and DSA 2's the narrowest; the coalition buys at night and
    does not buy at 10–15 h; Algorithm 1 agrees with the centralised solve."""
    from stackelberg_mop.data.hv_prices import hv_price_scenarios
    from stackelberg_mop.papers.substation_areas import reproduce

    day = sm.reference_day(dsa_case)
    r = reproduce(dsa_case, day, scenarios=hv_price_scenarios(day, n_samples=200, n_scenarios=5))
    for (prices, dr, line), row in r["tables"].items():
        assert row["saving_pct"] > 0
        assert all(f <= i + 1e-6 for f, i in zip(row["final"], row["individual"]))
        if dr:
            without = r["tables"][prices, False, line]
            assert row["individual_total"] < without["individual_total"]
            assert row["cooperative_total"] < without["cooperative_total"]
    buy, sell = r["table3"]["buy"], r["table3"]["sell"]
    assert sum(buy[1]) < sum(buy[0]) and sum(sell[1]) < sum(sell[0])
    assert r["throughput"]["normal"]["cooperative"] < r["throughput"]["normal"]["individual"]
    # the batteries relieve the congested line: the coalition cycles them more under the 100 kW limit
    assert r["throughput"]["100 kW"]["cooperative"] >= r["throughput"]["normal"]["cooperative"] - 1e-3
    ranges = [hi - lo for lo, hi in r["voltage"]["cooperative"]]
    assert ranges[0] == max(ranges) and ranges[1] == min(ranges)
    assert all(0.95 <= lo and hi <= 1.05 for mode in r["voltage"].values() for lo, hi in mode)
    assert r["coalition"]["night_buy"] > 0 and r["coalition"]["midday_net"] <= 1e-3
    assert r["admm"]["status"] == "optimal" and abs(r["admm"]["gap_of_savings"]) <= 0.01
