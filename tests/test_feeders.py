"""The case family beyond IEEE 33: shipped feeders against their published power flows, case files that
name network files and extend other case files, the case generator, and the large cases' dispatch."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandapower as pp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stackelberg_mop as sm
from stackelberg_mop.cases import (
    CaseError,
    case_from_dict,
    generate_case,
    load_case,
    shipped_networks,
    write_case,
)
from stackelberg_mop.cases.loader import SHIPPED
from stackelberg_mop.data import days, reference_day
from stackelberg_mop.powerflow.ac import pandapower_power_flow, sweep_power_flow

# published AC power flows at nominal load: (minimum voltage p.u., at 0-based bus, losses kW)
PUBLISHED = {
    # Baran & Wu (1989): 0.9092 p.u. at bus 65 (1-based), 224.9 kW (often quoted 225 kW)
    "case69.json": (0.9092, 64, 224.95),
    # Zhang, Fu & Zhang (2007): 0.8688 p.u. at bus 77 (1-based), 1298.09 kW
    "case118zh.json": (0.8688, 76, 1298.09),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shipped_feeder_matches_its_published_power_flow(name):
    net = pp.from_json(str(SHIPPED / "networks" / name))
    pp.runpp(net, numba=False, tolerance_mva=1e-9)
    v_min, bus, losses = PUBLISHED[name]
    assert net.res_bus.vm_pu.min() == pytest.approx(v_min, abs=1e-4)
    assert int(net.res_bus.vm_pu.idxmin()) == bus
    assert net.res_line.pl_mw.sum() * 1e3 == pytest.approx(losses, abs=0.1)


def test_shipped_networks_are_listed():
    assert shipped_networks() == ["case118zh.json", "case69.json"]


def _write(path, spec):
    path.write_text(json.dumps(spec))
    return path


def test_case_file_names_a_network_file_relative_to_itself(tmp_path):
    (tmp_path / "nets").mkdir()
    shutil.copy(SHIPPED / "networks" / "case69.json", tmp_path / "nets" / "feeder.json")
    base = json.loads((SHIPPED / "ieee69-mop.json").read_text())
    spec = {**base, "name": "mine", "network": {**base["network"], "file": "nets/feeder.json"}}
    case = load_case(_write(tmp_path / "mine.json", spec))
    shipped = load_case("ieee69-mop")
    assert case.buses.size == 69
    np.testing.assert_allclose(case.nominal_load[0], shipped.nominal_load[0])
    # a network file named relative to the case file, not to the working directory
    (tmp_path / "sub").mkdir()
    spec["network"]["file"] = "../nets/feeder.json"
    assert load_case(_write(tmp_path / "sub" / "deeper.json", spec)).buses.size == 69


def test_network_file_errors_name_the_field(tmp_path):
    base = json.loads((SHIPPED / "ieee69-mop.json").read_text())
    with pytest.raises(CaseError, match=r"network\.file: 'nowhere\.json': no such file.*shipped network"):
        load_case(_write(tmp_path / "a.json", {**base, "network": {"file": "nowhere.json"}}))
    (tmp_path / "junk.json").write_text('{"not": "a network"}')
    with pytest.raises(CaseError, match=r"network\.file: .*junk\.json.* not a pandapower network"):
        load_case(_write(tmp_path / "b.json", {**base, "network": {"file": "junk.json"}}))
    with pytest.raises(CaseError, match=r"network\.pandapower_case, network\.file: give exactly one .*got both"):
        load_case(_write(tmp_path / "c.json", {**base, "network": {"file": "case69.json", "pandapower_case": "case33bw"}}))
    with pytest.raises(CaseError, match=r"network\.pandapower_case, network\.file: give exactly one .*got neither"):
        load_case(_write(tmp_path / "d.json", {**base, "network": {"s_base_mva": 10.0}}))


def test_extends_a_case_file_with_its_network_resolved_against_the_parent(tmp_path):
    (tmp_path / "parent").mkdir()
    shutil.copy(SHIPPED / "networks" / "case69.json", tmp_path / "parent" / "grid.json")
    base = json.loads((SHIPPED / "ieee69-mop.json").read_text())
    _write(tmp_path / "parent" / "p.json", {**base, "name": "p", "network": {**base["network"], "file": "grid.json"}})
    child = _write(tmp_path / "child.json", {"name": "child", "extends": "parent/p.json",
                                             "voltage": {"v_min_pu": 0.9, "v_max_pu": 1.1, "v_slack_pu": 1.0}})
    case = load_case(child)
    assert (case.name, case.buses.size, case.v_min, len(case.prosumers)) == ("child", 69, 0.9, 20)
    # a chain: grandchild → child → parent → the shipped ieee33-mop
    grand = _write(tmp_path / "grand.json", {"name": "grand", "extends": "child.json",
                                             "mop": {"bus": [64, 26], "s_max_mva": [0.5, 0.5],
                                                     "loss_coefficient": [0.02, 0.02]}})
    case = load_case(grand)
    assert (case.v_min, case.mop.bus.tolist()) == (0.9, [64, 26])


def test_extends_errors(tmp_path):
    _write(tmp_path / "a.json", {"name": "a", "extends": "b.json"})
    _write(tmp_path / "b.json", {"name": "b", "extends": "a.json"})
    with pytest.raises(CaseError, match="closes a cycle"):
        load_case(tmp_path / "a.json")
    with pytest.raises(CaseError, match=r"extends: 'missing\.json': no such case file"):
        load_case(_write(tmp_path / "c.json", {"name": "c", "extends": "missing.json"}))
    _write(tmp_path / "bad.json", {"name": "bad", "extends": "ieee33-mop", "voltage": {"v_min": 0.9}})
    with pytest.raises(CaseError, match=r"extends: 'bad\.json': voltage\.v_min: unknown key; did you mean 'v_min_pu'"):
        load_case(_write(tmp_path / "d.json", {"name": "d", "extends": "bad.json"}))
    with pytest.raises(CaseError, match="neither a shipped case"):
        load_case(_write(tmp_path / "e.json", {"name": "e", "extends": "ieee99-mop"}))


# --- the generator ------------------------------------------------------------------------------
def _leaves(net):
    lines = net.line[net.line.in_service]
    ends, count = np.unique(np.r_[lines.from_bus, lines.to_bus], return_counts=True)
    return set(ends[count == 1].tolist()) - {int(net.ext_grid.bus.iloc[0])}


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 30), seed=st.integers(0, 2**31), share=st.floats(0, 1))
def test_generated_case_properties(n, seed, share):
    kw = {"battery_share": share, "load_scale": 0.9}  # the scaling search has its own test
    layout = generate_case("case69.json", n, seed, **kw)
    assert layout == generate_case("case69.json", n, seed, **kw)  # a seed is a case
    case = case_from_dict(layout)
    pros, net = case.prosumers, case.net
    assert len(set(pros.bus.tolist())) == n
    p_nom = net.load.groupby("bus").p_mw.sum()
    assert all(p_nom.get(b, 0) > 0 for b in pros.bus)  # prosumers sit at loaded buses
    assert len(case.batteries) == round(share * n)
    assert set(case.mop.bus.tolist()) <= _leaves(net) and len(case.mop) == 4
    total = case.nominal_load[0].sum()
    assert pros.pv_capacity.sum() == pytest.approx(0.6 * total, rel=0.5)


def test_generator_scales_loads_to_the_target_voltage():
    layout = generate_case("case118zh.json", 10, 0, target_v_min=0.92)
    scale = layout["network"]["load_scale"]
    net = pp.from_json(str(SHIPPED / "networks" / "case118zh.json"))

    def v_min(s):
        n = pp.from_json(str(SHIPPED / "networks" / "case118zh.json"))
        n.load["scaling"] = s
        pp.runpp(n, numba=False)
        return n.res_bus.vm_pu.min()

    assert v_min(scale) >= 0.92 > v_min(scale + 0.002)  # the largest factor (to 3 digits) that keeps it
    assert net.load.scaling.eq(1).all()
    # the 33-bus feeder (0.913 p.u. at nominal load) keeps its loads, and its four ends get the MOP
    layout = generate_case("case33bw", 5, 0)
    assert layout["network"] == {"pandapower_case": "case33bw", "s_base_mva": 10.0, "load_scale": 1.0}
    assert sorted(layout["mop"]["bus"]) == [17, 21, 24, 32]


def test_generated_case_round_trip_through_a_file(tmp_path):
    layout = generate_case("case69.json", 8, 3, root=tmp_path)
    path = write_case(layout, tmp_path / "out" / "g.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(layout))
    case, direct = load_case(path), case_from_dict(layout, root=tmp_path)
    assert case.fingerprint == direct.fingerprint
    with pytest.raises(ValueError, match="exists"):
        write_case(layout, path)
    with pytest.raises(ValueError, match="ends in .json"):
        write_case(layout, tmp_path / "g.txt")
    # a network file given by a path relative to the working directory is written relative to the case
    shutil.copy(SHIPPED / "networks" / "case69.json", tmp_path / "feeder.json")
    layout = generate_case(tmp_path / "feeder.json", 4, 0, root=tmp_path / "cases")
    assert layout["network"]["file"] == "../feeder.json"
    assert load_case(write_case(layout, tmp_path / "cases" / "f.json")).buses.size == 69


def test_generator_bad_input():
    with pytest.raises(ValueError, match="prosumers: the feeder has 48 loaded buses below its substation, fewer than 49"):
        generate_case("case69.json", 49)
    with pytest.raises(ValueError, match="mop_terminals: the feeder has 4 ends, fewer than 5"):
        generate_case("case33bw", 5, mop_terminals=5)
    with pytest.raises(ValueError, match="battery_share"):
        generate_case("case69.json", 5, battery_share=1.5)
    with pytest.raises(CaseError, match="not a network of pandapower.networks"):
        generate_case("case9999", 5)


def test_case_command_generates_and_prints(tmp_path, capsys):
    from stackelberg_mop.cli import main

    main(["case", "--new", str(tmp_path / "c.json"), "--network", "case69.json", "--prosumers", "6", "--seed", "2"])
    out = capsys.readouterr().out
    assert "case c: 69 buses" in out and "MOP terminals at buses" in out
    assert load_case(tmp_path / "c.json").fingerprint == case_from_dict(
        generate_case("case69.json", 6, 2, name="c", root=tmp_path), root=tmp_path).fingerprint
    with pytest.raises(SystemExit):
        main(["case", "--new", str(tmp_path / "c.json"), "--prosumers", "6"])  # exists, no --force
    assert "exists" in capsys.readouterr().err


# --- the large shipped cases ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ieee69-mop", "zhang118-mop"])
def test_large_cases_dispatch_optimal_and_their_sweep_matches_pandapower(name):
    from stackelberg_mop.powerflow import SlowPathWarning, dispatch_model

    case = load_case(name)
    day = reference_day(case)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowPathWarning)  # the fast hour-by-hour path, not a silent fallback
        out = sm.evaluate(case, day, case.tariff.buy_price)
    assert dispatch_model(case).solve_path == "hourly"
    assert out.status == "optimal"
    assert out.violation_rate == 0.0
    # the cone is tight to the solver's tolerance: ~1e-5 p.u. on lines so short (r ~ 3e-5 p.u. on the
    # 69-bus feeder) that a slack ℓ costs nothing; the AC power flow at the dispatch agrees to ~1e-6
    assert np.max(out.relaxation_gap) < 1e-4
    assert np.abs(out.voltages_ac - out.voltages_model).max() < 1e-5
    sweep = sweep_power_flow(case, day, out.exchange_power, out.mop_p, out.mop_q)
    np.testing.assert_allclose(out.line_loss, sweep.line_loss, atol=1e-5)  # MW
    vm, converged = pandapower_power_flow(case, day, out.exchange_power, out.mop_p, out.mop_q, hours=[0, 12, 19])
    assert converged[[0, 12, 19]].all()
    np.testing.assert_allclose(sweep.vm[:, [0, 12, 19]], vm[:, [0, 12, 19]], atol=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ieee69-mop", "zhang118-mop"])
def test_large_cases_dispatch_optimal_on_every_test_day(name):
    case = load_case(name)
    for day in days(case, "test"):
        for prices in (case.tariff.buy_price, case.tariff.sell_price):
            assert sm.evaluate(case, day, prices).status == "optimal", day.name


def test_case_objects_through_the_benchmark(tmp_path):
    from stackelberg_mop.runner.benchmark import run

    case = case_from_dict(generate_case("case69.json", 4, 1))
    rows = run(["tariff", "flat:700"], case, limit=2, out=tmp_path / "rows.csv", backend="serial", progress=False)
    scored = {(r["policy"], r["day"]): r for r in rows if r["policy"] in ("tariff", "flat:700")}
    assert len(scored) == 4 and all(r["status"] == "optimal" for r in scored.values())
    for (spec, day_name), row in scored.items():
        day = next(d for d in days(case, "test") if d.name == day_name)
        prices = np.array(json.loads(row["prices"]) if isinstance(row["prices"], str) else row["prices"], float)
        if spec == "tariff":
            np.testing.assert_array_equal(prices, case.tariff.buy_price)
        assert float(row["dno_objective"]) == pytest.approx(sm.evaluate(case, day, prices).dno_objective, rel=1e-9)
    # the generated case has no optimum table: its yardstick rows say so, by name
    assert all("no optimum" in r["status"] for r in rows if r["policy"] == "optimum")


def test_case_objects_through_the_optimum_tables(tmp_path):
    from stackelberg_mop.runner.optima import compute

    case = case_from_dict(generate_case("case33bw", 2, 0, name="tiny"))
    with pytest.raises(ValueError, match="out: case 'tiny' is a Case object"):
        compute(case, "test", limit=1)
    rows = compute(case, "test", out=tmp_path / "t.jsonl", limit=1, time_limit=20, backend="serial", progress=False)
    (day_name, row), = rows.items()
    assert row["case"] == "tiny" and row["case_fingerprint"] == case.fingerprint and row["verified"]
    day = next(d for d in days(case, "test") if d.name == day_name)
    assert row["objective"] == pytest.approx(sm.evaluate(case, day, np.array(row["prices"])).dno_objective, rel=1e-6)
    assert row["bound"] <= row["objective"] + 1e-6


# --- review findings: the generator reproduces the shipped cases, and refuses what cannot work -----------
@pytest.mark.parametrize(("name", "network", "n"), [("ieee69-mop", "case69.json", 20), ("zhang118-mop", "case118zh.json", 40)])
def test_the_generator_makes_the_shipped_cases(name, network, n):
    layout = generate_case(network, n, 0, name=name, root=SHIPPED)
    assert layout == json.loads((SHIPPED / f"{name}.json").read_text())


def test_a_copy_of_a_shipped_case_loads_anywhere(tmp_path):
    shutil.copy(SHIPPED / "ieee69-mop.json", tmp_path / "copy.json")
    assert load_case(tmp_path / "copy.json").fingerprint == load_case("ieee69-mop").fingerprint


def test_generator_refusals_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match=r"target_v_min: 1 p\.u\. is not reached"):
        generate_case("case33bw", 3, target_v_min=1.0)
    with pytest.raises(ValueError, match="pv_share"):
        generate_case("case33bw", 3, pv_share=0)
    with pytest.raises(ValueError, match="network: .* is a directory"):
        generate_case(tmp_path, 3)
    with pytest.raises(ValueError, match="base: 'nope.json': no such case file"):
        generate_case("case33bw", 3, base="nope.json")
    with pytest.raises(ValueError, match="name: expected a non-empty name"):
        generate_case("case33bw", 3, name=" ")
    assert generate_case("case33bw", 3, battery_share=0)["batteries"]["owner_bus"] == []
    # a load at the substation is no prosumer's bus, whatever the seed
    net = pp.networks.case33bw()
    pp.create_load(net, 0, p_mw=0.1)
    pp.to_json(net, str(tmp_path / "rootload.json"))
    for seed in range(12):
        assert 0 not in generate_case(tmp_path / "rootload.json", 32, seed, load_scale=1.0)["prosumers"]["bus"]
    with pytest.raises(ValueError, match="fewer than 33 prosumers"):
        generate_case(tmp_path / "rootload.json", 33, load_scale=1.0)


def test_write_case_checks_before_writing(tmp_path):
    shutil.copy(SHIPPED / "networks" / "case69.json", tmp_path / "feeder.json")
    layout = generate_case(tmp_path / "feeder.json", 3, 0, root=tmp_path)  # named relative to tmp_path
    with pytest.raises(CaseError, match="network.file: '../feeder.json': no such file|network.file: 'feeder.json'"):
        write_case(layout, tmp_path / "sub" / "deeper" / "c.json")  # from there the network is elsewhere
    assert not (tmp_path / "sub").exists()
    for bad, match in ((None, "layout: expected a case layout"), ({"name": float("nan")}, "layout: not a JSON")):
        with pytest.raises(ValueError, match=match):
            write_case(bad, tmp_path / "x" / "bad.json")
        assert not (tmp_path / "x").exists()
    (tmp_path / "adir.json").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        write_case(layout, tmp_path / "adir.json", overwrite=True)
    layout["description"] = "spaced [  a ,   b  ] text, with 'x,   y'"
    written = write_case(layout, tmp_path / "ok.json")
    assert json.loads(written.read_text()) == layout  # strings are written as they are


def test_case_command_refuses_generation_flags_without_new(tmp_path, capsys):
    from stackelberg_mop.cli import main

    for argv, match in ((["case", "--prosumers", "5"], "--prosumers: generates a case, with --new FILE"),
                        (["case", "ieee69-mop", "--new", str(tmp_path / "n.json")], "drop the case name")):
        with pytest.raises(SystemExit):
            main(argv)
        assert match in capsys.readouterr().err
    assert not (tmp_path / "n.json").exists()


def test_a_case_file_changed_between_runs_is_scored_afresh(tmp_path):
    from stackelberg_mop.runner.benchmark import run

    base = json.loads((SHIPPED / "ieee33-mop.json").read_text())
    _write(tmp_path / "p.json", {"name": "p", "extends": "ieee33-mop", "mop": base["mop"]})
    child = _write(tmp_path / "c.json", {"name": "c", "extends": "p.json"})
    first = run(["tariff"], str(child), limit=1, out=tmp_path / "r1.csv", backend="serial", progress=False)
    _write(tmp_path / "p.json", {"name": "p", "extends": "ieee33-mop", "mop": {**base["mop"], "s_max_mva": [0.5] * 4}})
    second = run(["tariff"], str(child), limit=1, out=tmp_path / "r2.csv", backend="serial", progress=False)
    case = load_case(child)
    day = select = days(case, "test")[0]
    want = sm.evaluate(case, select, case.tariff.buy_price).dno_objective
    (row,) = [r for r in second if r["policy"] == "tariff"]
    assert float(row["dno_objective"]) == pytest.approx(want, rel=1e-9) and row["day"] == day.name
    (old,) = [r for r in first if r["policy"] == "tariff"]
    assert float(old["dno_objective"]) != pytest.approx(want, rel=1e-6)  # the edit changed the answer


@pytest.mark.parametrize("name", ["ieee69-mop", "zhang118-mop"])
def test_the_large_cases_optimum_tables_are_certified_and_rescore(name):
    """Their shipped tables (test days, computed at 120 s per day) hold verified rows for this case's
    data; each J* comes back through `evaluate`, and its bound is below it."""
    from stackelberg_mop.data.optimum_table import OptimumTable, day_hash

    case = load_case(name)
    table = OptimumTable(case)
    test_days = {d.name: d for d in days(case, "test")}
    assert table.rows and set(table.rows) <= set(test_days)
    for day_name, row in table.rows.items():
        day = test_days[day_name]
        assert row["case_fingerprint"] == case.fingerprint and row["day_hash"] == day_hash(day) and row["verified"]
        assert row["bound"] <= row["objective"]
        assert sm.optimum(case, day).objective == row["objective"]
    for day_name in sorted(table.rows)[::7]:
        row, day = table.rows[day_name], test_days[day_name]
        prices = np.array(row["prices"])
        assert sm.evaluate(case, day, prices).dno_objective == pytest.approx(row["objective"], rel=1e-6)
