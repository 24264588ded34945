"""The shipped case has MODEL.md's values; validation names the field that cannot work."""

import numpy as np
import pandapower.networks as pn
import pytest

import stackelberg_mop as sm
from stackelberg_mop import cache
from stackelberg_mop.cases import CaseError, case_from_dict


def test_default_case_matches_model(case):
    assert case.buses.size == 33 and case.slack_bus == 0
    p, q = case.nominal_load
    assert p.sum() == pytest.approx(3.715) and q.sum() == pytest.approx(2.3)
    np.testing.assert_array_equal(case.prosumers.bus, [6, 9, 14, 23, 28])
    np.testing.assert_array_equal(case.prosumers.bus[case.batteries.owner], [9, 28])
    np.testing.assert_array_equal(case.mop.bus, [17, 21, 24, 32])
    assert case.price_rules.mean_cap == pytest.approx(np.mean(case.tariff.buy_price))
    assert sorted(set(case.tariff.buy_price)) == [450, 750, 1100]
    assert case.batteries.e_init.tolist() == pytest.approx([0.25, 0.4])
    assert sm.available_cases() == ["ieee33-mop", "ieee33-mop-flatcap", "ieee69-mop", "p2p-sharing", "substation-areas",
                                    "zhang118-mop"]
    assert case.price_rules.lower == "sell" and case.price_rules.upper == "buy"  # Lou et al.'s (2025) rule


def test_case_arrays_are_read_only(case):
    with pytest.raises(ValueError):
        case.prosumers.kappa[0] = 1.0


@pytest.mark.parametrize("edit, field", [
    (lambda s: s["prosumers"].__setitem__("bus", [6, 9, 14, 99, 28]), r"prosumers\.bus: bus \[99\] does not exist"),
    (lambda s: s["mop"].__setitem__("bus", [17, 21, 24, 40]), r"mop\.bus: bus \[40\] does not exist"),
    (lambda s: s["prosumers"].__setitem__("bus", [0, 9, 14, 23, 28]), r"prosumers\.bus: bus 0 is the substation"),
    (lambda s: s["tariff"].__setitem__("sell_price_cny_per_mwh", [500.0] * 24), r"tariff\.buy_price: below"),
    (lambda s: s["prosumers"].__setitem__("pv_capacity_mw", [0.4, -0.5, 0.3, 0.6, 0.5]), r"prosumers\.pv_capacity"),
    (lambda s: s["batteries"].__setitem__("capacity_mwh", [0.5, -0.8]), r"batteries\.capacity"),
    (lambda s: s["batteries"].__setitem__("power_mw", [0.15, -0.2]), r"batteries\.p_charge_max"),
    (lambda s: s["price_rules"].__setitem__("price_min_cny_per_mwh", 1200.0), r"price_rules\.price_min: .* exceeds"),
    (lambda s: s["price_rules"].__setitem__("mean_cap", 300.0), r"price_rules\.mean_cap"),
    (lambda s: s["price_rules"].__setitem__("lower_cny_per_mwh", [400.0] * 5 + [500.0] + [400.0] * 18),
     r"price_rules\.lower/upper: hour 5's lower bound 500 exceeds its upper bound 450"),
    (lambda s: s["price_rules"].__setitem__("upper_cny_per_mwh", "peak"), r"price_rules\.upper_cny_per_mwh: expected a number, 24 numbers, or 'sell' / 'buy', got \"peak\""),
    (lambda s: s["price_rules"].__setitem__("upper_cny_per_mwh", [900.0] * 23), r"price_rules\.upper_cny_per_mwh: expected a number, 24 numbers"),
    (lambda s: s["price_rules"].__setitem__("lower_cny_per_mwh", [float("nan")] * 24), r"price_rules\.lower: must be finite"),
    (lambda s: s["price_rules"].__setitem__("lower_cny_per_mwh", 800.0), r"price_rules\.mean_cap: .* below the mean"),
    (lambda s: s["prosumers"].__setitem__("kappa_cny_per_mw2h", [3000, 0, 3500, 2000, 3000]), r"prosumers\.kappa"),
    (lambda s: s["batteries"].__setitem__("soc_init", [0.05, 0.5]), r"batteries\.soc_init"),
    (lambda s: s["batteries"].__setitem__("owner_bus", [9, 30]), r"batteries\.owner_bus: no prosumer at bus \[30\]"),
    (lambda s: s["tariff"].__setitem__("buy_price_cny_per_mwh", [450.0] * 23), r"tariff\.buy_price: expected 24"),
    (lambda s: s["prosumers"].__setitem__("kappa_cny_per_mw2h", [3000, float("nan"), 1, 1, 1]), r"kappa: must be finite"),
    (lambda s: s["voltage"].__setitem__("v_min_pu", 1.02), r"case\.v_min"),
    (lambda s: s.pop("tariff"), r"missing section 'tariff'"),
])
def test_validation_names_the_field(spec, edit, field):
    edit(spec)
    with pytest.raises(CaseError, match=field):
        case_from_dict(spec)


def test_meshed_network_is_rejected(spec):
    net = pn.case33bw()
    net.line.loc[32, "in_service"] = True  # close the tie line 20-7
    with pytest.raises(CaseError, match="case.net: the network is meshed"):
        case_from_dict(spec, net=net)


def test_disconnected_network_is_rejected(spec):
    net = pn.case33bw()
    net.line.loc[5, "in_service"] = False
    with pytest.raises(CaseError, match="case.net: the network is disconnected"):
        case_from_dict(spec, net=net)


def test_user_case_on_another_radial_network(spec):
    """A smaller radial feeder (pandapower's case33bw cut to its first 18 buses) with two prosumers."""
    net = pn.case33bw()
    keep = list(range(18))
    net.bus.loc[~net.bus.index.isin(keep), "in_service"] = False
    net.line.loc[~(net.line.from_bus.isin(keep) & net.line.to_bus.isin(keep)), "in_service"] = False
    net.load.loc[~net.load.bus.isin(keep), "in_service"] = False
    spec["prosumers"] = {"bus": [6, 14], "pv_capacity_mw": [0.3, 0.2], "kappa_cny_per_mw2h": [2000, 3000],
                         "shift_fraction": [0.2, 0.2]}
    spec["batteries"] = {k: v[:1] for k, v in spec["batteries"].items()}
    spec["batteries"]["owner_bus"] = [14]
    spec["mop"] = {"bus": [12, 17], "s_max_mva": [0.5, 0.5], "loss_coefficient": [0.02, 0.02]}
    small = case_from_dict(spec, net=net)
    assert small.buses.size == 18 and small.battery_of.tolist() == [-1, 0]
    day = sm.reference_day(small)
    response = sm.best_response(small, day, small.tariff.buy_price)
    assert max(sm.kkt_residuals(small, day, response).values()) < 1e-6


def test_load_case_errors_name_the_case():
    with pytest.raises(CaseError, match="unknown case 'ieee34'"):
        sm.load_case("ieee34")


def test_a_used_case_pickles_without_its_caches(case, day):
    """A case that has built solvers (cached on it) can be sent to a worker process: the copy drops
    the caches, rebuilds them, and scores prices exactly as the original."""
    import pickle

    prices = np.linspace(400.0, 1100.0, 24)
    before = sm.evaluate(case, day, prices).dno_objective
    assert "dispatch_models" in cache.names(case)
    copy = pickle.loads(pickle.dumps(case))
    assert not any(k.startswith("_") for k in vars(copy))
    assert sm.evaluate(copy, day, prices).dno_objective == pytest.approx(before, rel=1e-9, abs=1e-6)


def test_flat_cap_variant_extends_the_default(case):
    flat = sm.load_case("ieee33-mop-flatcap")
    assert flat.name == "ieee33-mop-flatcap"
    assert flat.price_rules.lower is None and flat.price_rules.upper is None
    assert (flat.price_rules.price_min, flat.price_rules.price_max) == (400.0, 1100.0)
    assert flat.price_rules.mean_cap == case.price_rules.mean_cap
    np.testing.assert_array_equal(flat.prosumers.kappa, case.prosumers.kappa)  # the rest is the default's


def test_extends_an_unknown_case_is_named(spec):
    spec["extends"] = "no-such-case"
    with pytest.raises(CaseError, match="extends: 'no-such-case'"):
        case_from_dict(spec)


#: Song et al.'s (2024) kind of prosumer (docs/plans/seed003-p2p.md): wind, own fixed-load peaks, elastic load
SEED003_PROSUMERS = {"bus": [3, 12, 25], "pv_capacity_mw": [0.55, 0.0, 0.45], "wind_capacity_mw": [0.0, 0.45, 0.0],
                     "shift_fraction": [0.0, 0.0, 0.0], "fixed_load_peak_mw": [0.45, 0.5, 0.35],
                     "elastic_max_mw": [0.1, 0.1, 0.1], "utility_quadratic_cny_per_mw2h": [1600, 1600, 1300],
                     "utility_linear_cny_per_mwh": [1300, 1300, 1400], "bid_min_mw": [0, 0, 0],
                     "bid_max_mw": [0.5, 0.55, 0.4], "curtailable": [True, True, True]}
WIND = [0.797, 0.853, 0.888, 0.9, 0.888, 0.853, 0.797, 0.725, 0.641, 0.55, 0.459, 0.375, 0.303, 0.247, 0.212, 0.2,
        0.212, 0.247, 0.303, 0.375, 0.459, 0.55, 0.641, 0.725]


def _p2p_sharing_spec(spec, edit=lambda s: None):
    spec["prosumers"] = dict(SEED003_PROSUMERS)
    spec.pop("batteries")
    spec["reference_profiles"]["wind"] = list(WIND)
    edit(spec)
    return spec


def test_optional_prosumer_parts_build_the_days(spec, case):
    """Wind, own fixed-load peaks: the reference day and SimBench days carry them (wind in the net
    load, clipped at 0 where SimBench's profiles dip ~1e-5 below), and a case without them keeps its
    fingerprint and day hashes (checked by reading the shipped optimum)."""
    assert sm.optimum(case, sm.reference_day(case)).status == "optimal"
    assert not case.prosumers.extended and not case.reference_wind.any()
    c = case_from_dict(_p2p_sharing_spec(spec))
    assert c.prosumers.hourly.all() and c.prosumers.extended and c.fingerprint != case.fingerprint
    ref = sm.reference_day(c)
    np.testing.assert_allclose(ref.wind, np.outer([0.0, 0.45, 0.0], WIND))
    np.testing.assert_allclose(ref.fixed_load, np.outer([0.45, 0.5, 0.35], c.reference_load))
    np.testing.assert_allclose(ref.net_load, ref.fixed_load - ref.pv - ref.wind)
    for d in (0, 180):
        day = sm.simbench_day(c, d)
        assert day.wind[1].max() > 0 and (day.wind >= 0).all() and not day.wind[[0, 2]].any()
        assert day.fixed_load.max() <= 0.5 * c.reference_load.max() + 1e-12


@pytest.mark.parametrize("edit, field", [
    (lambda s: s["prosumers"].__setitem__("wind_capacity_mw", [0, -0.1, 0]), r"prosumers\.wind_capacity"),
    (lambda s: s["reference_profiles"].pop("wind"), r"reference_profiles\.wind: needed"),
    (lambda s: s["prosumers"].__setitem__("utility_quadratic_cny_per_mw2h", [1600, 0, 1300]),
     r"prosumers\.utility_quadratic: must be > 0"),
    (lambda s: s["prosumers"].__setitem__("elastic_max_mw", [0.1, -0.1, 0.1]), r"prosumers\.elastic_max"),
    (lambda s: s["prosumers"].__setitem__("bid_min_mw", [0, 0.6, 0]), r"prosumers\.bid_max: need bid_min <= bid_max"),
    (lambda s: s["prosumers"].__setitem__("curtailable", [True, 2, True]), r"prosumers\.curtailable\[1\]: expected true or false, got 2"),
    (lambda s: s["prosumers"].update(shift_fraction=[0.3, 0, 0]), r"prosumers: missing field 'kappa_cny_per_mw2h'"),
    (lambda s: s["prosumers"].update(shift_fraction=[0.3, 0, 0], kappa_cny_per_mw2h=[3000, 1, 1]),
     r"prosumers\.shift_fraction: must be 0"),
    (lambda s: s["prosumers"].__setitem__("fixed_load_peak_mw", [0.45, 0.5]), r"prosumers\.fixed_load_peak: expected 3"),
    (lambda s: s.__setitem__("batteries", {"owner_bus": [3], "power_mw": [0.1], "capacity_mwh": [0.2],
                                           "soc_min": [0.1], "soc_max": [0.9], "soc_init": [0.5],
                                           "eta_charge": [0.95], "eta_discharge": [0.95],
                                           "degradation_cny_per_mwh": [20.0], "regularisation_cny_per_mw2h": [1.0]}),
     r"batteries\.owner: the prosumer\(s\) at bus \[3\]"),
])
def test_optional_prosumer_parts_are_validated(spec, edit, field):
    with pytest.raises(CaseError, match=field):
        case_from_dict(_p2p_sharing_spec(spec, edit))


def test_a_wind_case_needs_wind_profiles(spec, monkeypatch):
    """A profile file without wind profiles is refused for a case with wind, never replaced by another."""
    import importlib

    days_module = importlib.import_module("stackelberg_mop.data.days")  # the module, not `data.days()`
    c = case_from_dict(_p2p_sharing_spec(spec))
    profiles = {k: v for k, v in days_module._profiles().items() if not k.startswith("wind")}
    monkeypatch.setattr(days_module, "_profiles", lambda: profiles)
    with pytest.raises(ValueError, match="has wind, but the shipped profile file has no wind profiles"):
        sm.simbench_day(c, 10)


@pytest.mark.parametrize("old, new", [("seed001-dsa", "substation-areas"), ("seed003-p2p", "p2p-sharing")])
def test_the_papers_cases_former_names_still_load(old, new):
    with pytest.warns(DeprecationWarning, match=f"now called '{new}'"):
        case = sm.load_case(old)
    assert case.fingerprint == sm.load_case(new).fingerprint and case.name == new
    assert old not in sm.available_cases()
