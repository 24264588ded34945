"""The DNO's dispatch, its LMPs, the MOP, the AC checks and `evaluate` on the default case."""

import dataclasses

import numpy as np
import pandapower.networks as pn
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import stackelberg_mop as sm
from stackelberg_mop.cases import case_from_dict
from stackelberg_mop.papers.scenarios import run_scenarios, scenario_table
from stackelberg_mop.powerflow import DispatchModel, dispatch, feeder
from stackelberg_mop.powerflow.ac import bus_demand, pandapower_power_flow, sweep_power_flow
from stackelberg_mop.powerflow.clarabel_backend import ACCURATE_OPTIONS, CLARABEL_OPTIONS


@pytest.fixture(scope="module")
def tariff_response(case, day):
    return sm.best_response(case, day, case.tariff.buy_price)


@pytest.fixture(scope="module")
def opf(case, day, tariff_response):
    return dispatch(case, day, tariff_response.exchange_power)


@pytest.fixture(scope="module")
def scenarios(case, day):
    return run_scenarios(case, day)


def test_paper_scenarios_on_the_reference_day(case, day, scenarios):
    table = scenario_table(case, scenarios)
    assert (table.status == "optimal").all()
    full = table.loc["full strategy"]
    assert full.violation_rate == 0
    assert table.loc["no MOP"].violation_rate > 0.05
    assert table.loc["no MOP"].dno_objective > full.dno_objective
    assert table.dno_cost.idxmin() == "economy only"
    # MODEL.md's quick check of this case: no MOP -> min 0.923 p.u., ~14 % of bus-hours violate
    assert table.loc["no MOP"].v_min == pytest.approx(0.923, abs=1e-3)
    assert table.loc["no MOP"].violation_rate == pytest.approx(0.14, abs=0.01)
    assert 0.96 <= full.v_min and full.v_max <= 1.04


def test_full_strategy_relaxation_is_exact_against_pandapower(case, day, scenarios):
    full = scenarios["full strategy"]
    assert np.all(full.relaxation_gap <= 1e-6)
    vm, converged = pandapower_power_flow(case, day, full.exchange_power, full.mop_p, full.mop_q)
    assert converged.all()
    assert np.abs(vm - full.voltages_model).max() <= 1e-4


def test_power_balance_at_every_bus_and_hour(case, day, tariff_response, opf):
    fd = feeder(case)
    demand_p, demand_q = bus_demand(case, day, tariff_response.exchange_power, opf.mop_p, opf.mop_q)
    loss_p = fd.r[:, None] * opf.current_sq * case.s_base
    loss_q = fd.x[:, None] * opf.current_sq * case.s_base
    for flow, loss, demand, grid in ((opf.branch_p, loss_p, demand_p, opf.grid_power),
                                     (opf.branch_q, loss_q, demand_q, opf.grid_q)):
        arriving = np.zeros_like(demand)
        np.add.at(arriving, fd.to_pos, flow - loss)
        leaving = np.zeros_like(demand)
        np.add.at(leaving, fd.from_pos, flow)
        injection = -demand
        injection[fd.root] += grid
        assert np.abs(arriving - leaving + injection).max() < 1e-6  # MW / Mvar
    # and the voltage-drop equation on every branch
    drop = 2 * (fd.r[:, None] * opf.branch_p + fd.x[:, None] * opf.branch_q) / case.s_base
    drop -= (fd.r**2 + fd.x**2)[:, None] * opf.current_sq
    assert np.abs(opf.v[fd.to_pos] - opf.v[fd.from_pos] + drop).max() < 1e-7


def test_mop_dc_balance_capacity_and_losses(case, opf):
    apparent = np.hypot(opf.mop_p, opf.mop_q)
    assert np.all(apparent <= case.mop.s_max[:, None] + 1e-6)
    assert np.abs((opf.mop_p + opf.mop_loss).sum(axis=0)).max() < 1e-6
    # losses are priced, so the loss cone is tight: P^loss = A |S|
    np.testing.assert_allclose(opf.mop_loss, case.mop.loss_coefficient[:, None] * apparent, atol=1e-6)
    assert apparent.max() > 0.1  # the MOP is really used on this day


@pytest.mark.parametrize("bus, hour", [(17, 19), (6, 3), (24, 12)])
def test_lmp_matches_finite_difference(case, day, tariff_response, opf, bus, hour):
    model = DispatchModel(case)
    step = 1e-3  # MW
    values = []
    for sign in (-1, 1):
        base_p = day.base_p.copy()
        base_p[case.bus_position(bus), hour] += sign * step
        model.solve(dataclasses.replace(day, base_p=base_p), tariff_response.exchange_power)
        values.append(model.objective.value)
    finite_difference = (values[1] - values[0]) / (2 * step) / case.objective.omega_economic
    lmp = opf.lmp[case.bus_position(bus), hour]
    assert lmp == pytest.approx(finite_difference, rel=2e-3)
    assert opf.lmp[feeder(case).root, hour] == pytest.approx(day.buy_price[hour], rel=1e-4)  # substation: tariff


@settings(max_examples=3, deadline=None)
@given(day_of_year=st.integers(0, 365), seed=st.integers(0, 2**16))
def test_fast_power_flow_agrees_with_pandapower(case, day_of_year, seed):
    day = sm.simbench_day(case, day_of_year)
    rng = np.random.default_rng(seed)
    exchange = sm.best_response(case, day, rng.uniform(400, 1100, 24)).exchange_power
    mop_p = rng.uniform(-0.5, 0.5, (4, 24))
    mop_q = rng.uniform(-0.5, 0.5, (4, 24))
    fast = sweep_power_flow(case, day, exchange, mop_p, mop_q)
    vm, converged = pandapower_power_flow(case, day, exchange, mop_p, mop_q)
    assert fast.converged.all() and converged.all()
    assert np.abs(fast.vm - vm).max() < 1e-6


@settings(max_examples=4, deadline=None)
@given(day_of_year=st.integers(0, 365), seed=st.integers(0, 2**16), hour=st.integers(0, 23),
       mop=st.sampled_from(["opf", "off"]))
def test_one_hour_dispatch_is_that_hour_of_the_days(case, day_of_year, seed, hour, mop):
    """Hours are separable given the exchange power: the one-hour model's optimum is the 24-hour
    model's block of that hour (objective terms, voltages and LMPs to solver tolerance), and
    `evaluate_hour` gives that hour's share of `evaluate`."""
    from stackelberg_mop.powerflow import dispatch_model, join_windows
    from stackelberg_mop.scoring import evaluate_hour

    day = sm.simbench_day(case, day_of_year)
    rng = np.random.default_rng(seed)
    bounds = sm.market.price_bounds(case, day)
    prices = bounds.project(rng.uniform(bounds.lower, bounds.upper))
    full = sm.evaluate(case, day, prices, mop=mop)
    model = dispatch_model(case, mop=mop, hours=1)
    if not full.status.startswith("optimal"):  # e.g. the MOP off under hard limits: some hour is infeasible
        statuses = [model.solve(day, full.exchange_power, start=t).status for t in range(24)]
        assert full.status in statuses and not all(s.startswith("optimal") for s in statuses)
        return
    one = model.solve(day, full.exchange_power, start=hour)
    assert one.status == "optimal" and one.start == hour and one.v.shape == (case.buses.size, 1)
    assert np.abs(one.v[:, 0] - full.dispatch.v[:, hour]).max() < 1e-5           # p.u.², solver tolerance
    assert np.abs(one.lmp[:, 0] - full.dispatch.lmp[:, hour]).max() < 0.1           # ¥/MWh, unrefined duals
    assert one.grid_power[0] == pytest.approx(full.grid_power[hour], abs=1e-5)
    scored = evaluate_hour(case, day, prices, hour, response=full.response, mop=mop)
    assert scored.objective == pytest.approx(full.hourly_objective[hour], rel=1e-6, abs=1e-2)
    # the AC voltages follow the MOP set-points, which agree to the solver tolerance used for v above
    assert np.abs(scored.voltages_ac - full.voltages_ac[:, hour]).max() < 1e-5
    window = dispatch_model(case, mop=mop, hours=3).solve(day, full.exchange_power, start=min(hour, 21))
    assert np.abs(window.v - full.dispatch.v[:, min(hour, 21):min(hour, 21) + 3]).max() < 1e-5
    joined = join_windows([model.solve(day, full.exchange_power, start=t) for t in range(24)])
    assert joined.status == "optimal" and np.abs(joined.v - full.dispatch.v).max() < 1e-5
    rescored = sm.evaluate(case, day, prices, mop=mop, response=full.response, dispatch=joined)
    assert rescored.dno_objective == pytest.approx(full.dno_objective, rel=1e-6)


def test_a_dispatch_window_outside_the_day_is_named(case, day, tariff_response):
    from stackelberg_mop.powerflow import dispatch_model

    with pytest.raises(ValueError, match="hours"):
        DispatchModel(case, hours=0)
    with pytest.raises(ValueError, match="start"):
        dispatch_model(case, hours=2).solve(day, tariff_response.exchange_power, start=23)
    from stackelberg_mop.powerflow import join_windows

    two = dispatch_model(case, hours=12)
    halves = [two.solve(day, tariff_response.exchange_power, start=t) for t in (0, 12)]
    assert join_windows(halves[::-1]).v.shape == (case.buses.size, 24)   # order does not matter
    with pytest.raises(ValueError, match="cover hours"):
        join_windows(halves[:1])


def test_lindistflow_is_the_same_problem_without_losses(case, day, tariff_response, opf):
    lin = dispatch(case, day, tariff_response.exchange_power, formulation="lindistflow")
    assert lin.status == "optimal"
    assert np.all(lin.current_sq == 0) and np.all(lin.relaxation_gap == 0)
    assert np.abs(lin.voltage - opf.voltage).max() < 0.01  # the linearisation error on this feeder
    assert lin.grid_power.sum() < opf.grid_power.sum()  # no line losses to buy


@pytest.mark.parametrize("formulation", ["socp", "lindistflow"])
def test_both_formulations_keep_a_line_rating(case, day, tariff_response, formulation):
    """A 2 MVA rating on line 1–2 (Wang et al.'s (2024) line case) holds in either formulation (SOCP: ℓ <= I²;
    LinDistFlow: ||(P, Q)|| <= I at 1 p.u.), where the unlimited dispatch exceeds it."""
    from stackelberg_mop.cases.variants import line_limited_case
    from stackelberg_mop.powerflow import feeder

    limited = line_limited_case(case, 2.0)
    b = int(np.flatnonzero(np.isfinite(feeder(limited).i_max))[0])
    flow = lambda r: float(np.hypot(r.branch_p[b], r.branch_q[b]).max())  # MVA at the sending end
    free = dispatch(case, day, tariff_response.exchange_power, formulation=formulation)
    held = dispatch(limited, day, tariff_response.exchange_power, formulation=formulation)
    assert free.status == held.status == "optimal" and flow(free) > 2.1
    v = held.v[feeder(limited).from_pos[b]]
    if formulation == "socp":  # |S| = |I|·|V| <= I_max |V|
        assert np.all(np.hypot(held.branch_p[b], held.branch_q[b]) <= 2.0 * np.sqrt(v) + 1e-5)
    else:
        assert flow(held) <= 2.0 + 1e-5


def test_set_point_scoring_reproduces_the_dispatch(case, day, scenarios):
    full = scenarios["full strategy"]
    fixed = sm.evaluate(case, day, case.tariff.buy_price, mop=np.stack([full.mop_p, full.mop_q]))
    assert fixed.status == "optimal"
    assert fixed.dno_objective == pytest.approx(full.dno_objective, abs=0.05)  # exact relaxation: same state
    np.testing.assert_allclose(fixed.voltages_ac, full.voltages_ac, atol=1e-6)


def test_hard_limits_without_mop_are_reported_infeasible(case, day):
    out = sm.evaluate(case, day, case.tariff.buy_price, mop="off", voltage_limits="hard")
    assert out.status == "infeasible" and np.isnan(out.dno_objective)


def test_branch_current_limit_binds(case, day, tariff_response, opf, spec):
    """The seed paper's line-capacity case: cap the branch between (1-based) buses 2 and 3 below its peak."""
    fd = feeder(case)
    net = pn.case33bw()
    line = net.line.index[(net.line.from_bus == 1) & (net.line.to_bus == 2)][0]
    k = int(np.flatnonzero(fd.line_index == line)[0])
    uncapped = np.sqrt(opf.current_sq[k]) * fd.i_base_ka[k]  # kA
    limit = 0.9 * uncapped.max()
    net.line.loc[line, "max_i_ka"] = limit
    capped = case_from_dict(spec, net=net)
    out = dispatch(capped, day, tariff_response.exchange_power)
    amps = np.sqrt(out.current_sq[k]) * feeder(capped).i_base_ka[k]
    assert out.status == "optimal"
    # 1e-5: Clarabel's feasibility tolerance without iterative refinement (CLARABEL_OPTIONS) is ~2e-6 here
    assert amps.max() <= limit * (1 + 1e-5) and amps.max() >= limit * (1 - 1e-4)
    objective = lambda r: (case.objective.omega_economic * (r.grid_cost + r.line_loss_cost + r.mop_loss_cost)
                           + case.objective.omega_voltage * r.voltage_deviation_cost)
    assert objective(out) > objective(opf) + 1.0  # a binding limit costs the DNO something


@pytest.mark.parametrize("kwargs, message", [
    ({"prices": np.full(24, np.nan)}, "prices: must be finite"),
    ({"mop": "on"}, "mop: must be one of"),
    ({"voltage_limits": "strict"}, "voltage_limits: must be one of"),
    ({"formulation": "ac"}, "formulation: must be one of"),
    ({"ac": "newton"}, "ac: must be one of"),
    ({"mop": np.zeros((2, 3, 24))}, r"mop: set-points must have shape"),
    ({"mop": np.stack([np.full((4, 24), 0.3), np.zeros((4, 24))])}, "mop: the DC balance"),
    ({"mop": np.stack([np.r_[np.full((2, 24), 1.5), np.full((2, 24), -1.5)], np.zeros((4, 24))])},
     "exceeds its 1.0 MVA rating"),
])
def test_evaluate_rejects_bad_input(case, day, kwargs, message):
    kwargs = {"prices": case.tariff.buy_price, **kwargs}
    with pytest.raises(ValueError, match=message):
        sm.evaluate(case, day, **kwargs)


def test_costs_are_priced_from_the_state_in_every_scenario(case, day, scenarios):
    """Scenario 1 has ω_2 = 0, so the model's deviation variable is free above |v − 1|: the scorer must not use it."""
    for name, o in scenarios.items():
        obj = case.objective
        v = o.voltages_model**2
        assert o.voltage_deviation_cost == pytest.approx(obj.voltage_cost * np.abs(v - 1).sum(), rel=1e-9), name
        assert o.grid_cost == pytest.approx(float((day.sell_price * o.grid_power + (day.buy_price - day.sell_price)
                                                   * np.maximum(o.grid_power, 0)).sum()), rel=1e-9), name


def test_outcome_accounting(case, scenarios):
    o = scenarios["full strategy"]
    assert o.dno_cost == pytest.approx(o.grid_cost - o.revenue + o.line_loss_cost + o.mop_loss_cost)
    assert o.revenue == pytest.approx(float((o.prices * o.exchange_power).sum()))
    obj = case.objective
    assert o.dno_objective == pytest.approx(obj.omega_economic * o.dno_cost + obj.omega_voltage * o.voltage_deviation_cost)
    assert o.welfare == pytest.approx(-(o.dno_cost + o.prosumer_costs.sum()))
    assert o.price_violation == 0
    flat = sm.evaluate(case, sm.reference_day(case), np.full(24, 1000.0))
    assert flat.price_violation == pytest.approx(1000 - case.tariff.buy_price.min())  # 1000 at a 450 ¥/MWh hour


@settings(max_examples=4, deadline=None)
@given(day_of_year=st.integers(0, 365), seed=st.integers(0, 2**16), limits=st.sampled_from(["hard", "soft"]))
@example(day_of_year=310, seed=263, limits="hard")  # a degenerate optimum: MOP flows 4e-5 MW apart
@example(day_of_year=194, seed=0, limits="soft")  # MOP flows 6e-4 MW apart
@example(day_of_year=1, seed=0, limits="hard")  # an hour ends inaccurate and is solved again with refinement
@example(day_of_year=1, seed=0, limits="soft")  # branch flows 5.04e-4 MW apart with the MOP's degenerate flows
@example(day_of_year=2, seed=0, limits="hard")  # an hour's LMPs are not unique (see the LMP check)
@example(day_of_year=161, seed=65536, limits="hard")
@example(day_of_year=191, seed=21403, limits="hard")  # an hour ends inaccurate on the hourly path  # 7 bus-hours whose duals only look unique
def test_direct_clarabel_path_equals_cvxpy(case, day_of_year, seed, limits):
    # the same model solved through cvxpy and through Clarabel directly (after its first, checked solve):
    # same status, state, costs and LMPs on days and prices it has not seen
    direct, plain = (DispatchModel(case, voltage_limits=limits, direct=flag) for flag in (True, False))
    rng = np.random.default_rng(seed)
    for day in (sm.simbench_day(case, (day_of_year + 100) % 366), sm.simbench_day(case, day_of_year)):
        exchange = sm.best_response(case, day, rng.uniform(400, 1100, 24)).exchange_power
        # cvxpy's side with iterative refinement: without it the 24-hour block's LMPs can sit ~3 ¥/MWh
        # from their refined values (day 1, hour 0), while the hour-by-hour solve's stay within 0.05
        a, b = direct.solve(day, exchange), plain.solve(day, exchange, accurate=True)
        # one hour may end "optimal_inaccurate" even with refinement where the 24-hour block is "optimal"
        # (day 191, seed 21403: the costs agree to 1e-3 ¥); solved or not must agree
        assert a.status.startswith("optimal") == b.status.startswith("optimal"), (a.status, b.status)
        if a.status.startswith("optimal"):
            # the objective is unique, to the solver's tolerance (the direct path solves the hours one by one,
            # cvxpy the 24-hour block: two interior-point paths, whose objectives differ by ~2e-7 relative, as
            # do two solves of the block with and without iterative refinement); the optimum need not be (the
            # MOP can move up to ~6e-4 MW at no cost, seen on days 310, 20 and 194, which moves v by up to 6e-5
            # p.u.² and ℓ by up to ~1e-5), so states and LMPs agree to physical, not solver, tolerances
            assert direct.objective.value == pytest.approx(plain.objective.value, rel=1e-6)
            # branch flows carry the MOP's degenerate flows, so they share its tolerance (day 1, soft: 5.04e-4)
            for field, atol in (("v", 2e-4), ("current_sq", 1e-4), ("grid_power", 1e-4), ("branch_p", 1e-3),
                                ("mop_p", 1e-3), ("mop_q", 1e-3)):
                np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=0, atol=atol, err_msg=field)
            # LMPs are duals, unique only where the dual optimum is: every hour's direct duals must be an
            # optimal dual certificate, and equal cvxpy's (1 ¥/MWh) wherever cvxpy pins them down itself (its
            # refined and unrefined solves agree); day 2, seed 0, hard: an hour's refined and unrefined cvxpy
            # duals differ by 4.2 ¥/MWh and the direct ones sit 2.4 from the refined, a third optimal dual
            _assert_optimal_duals(direct, a)
            # Agreeing refined and unrefined solves only suggest a unique dual: day 161, seed 65536, hard has
            # 7 of 792 bus-hours where both cvxpy solves agree and the certified direct duals sit 3.5 ¥/MWh away
            unrefined = plain.solve(day, exchange)
            unique = np.abs(unrefined.lmp - b.lmp).max(axis=0) <= 1.0
            assert (np.abs(a.lmp - b.lmp)[:, unique] <= 1.0).mean() >= 0.98, "lmp"
            assert unique.sum() >= 20  # non-unique LMPs are the exception, not the rule
    # the day is solved hour by hour with the one-hour model's solver, not compiled itself
    from stackelberg_mop.powerflow.clarabel_backend import HourlyClarabel

    assert isinstance(direct._direct, HourlyClarabel) and direct.solve_path == "hourly"


def _assert_optimal_duals(model, result):
    """Each hour of `model`'s last solve (the hourly direct path) re-solved to get Clarabel's (x, s, z) for
    min c'x s.t. Ax + s = b, s ∈ K: z is dual feasible (A'z + c = 0, z ∈ K*, K self-dual), the duality
    gap c'x + b'z is zero to the solver's tolerance, and `result.lmp` is read from this z: so the LMPs
    are an optimal dual, whether or not the dual optimum is unique."""
    hourly = model._direct
    one, (c, b) = hourly.one, hourly.data()
    for t in range(model.hours):
        status, x, z = one.solve_data(c[:, t], b[:, t], CLARABEL_OPTIONS)
        if status != "optimal":  # the dispatch's rule: an inaccurate hour is solved again with refinement
            status, x, z = one.solve_data(c[:, t], b[:, t], ACCURATE_OPTIONS)
        assert status.startswith("optimal")
        scale = 1.0 + np.abs(c[:, t]).max()
        assert np.abs(one.A.T @ z + c[:, t]).max() <= 1e-6 * scale                       # stationarity
        assert abs(c[:, t] @ x + b[:, t] @ z) <= 1e-6 * (1.0 + abs(c[:, t] @ x))          # zero duality gap
        row = 0
        for cone in one.cones:
            block, row = z[row:row + cone.dim], row + cone.dim
            kind = type(cone).__name__
            if kind == "NonnegativeConeT":
                assert block.min() >= -1e-8
            elif kind == "SecondOrderConeT":
                assert block[0] >= np.linalg.norm(block[1:]) - 1e-8
            else:
                assert kind == "ZeroConeT", kind                                           # free duals
        lmp = -z[hourly.dual_rows] / model.case.s_base / model.case.objective.omega_economic
        np.testing.assert_allclose(result.lmp[:, t], lmp, rtol=0, atol=1e-9)


@settings(max_examples=3, deadline=None)
@given(day_of_year=st.integers(0, 365), seed=st.integers(0, 2**16), mop=st.sampled_from(["opf", "off"]))
def test_the_dispatch_does_not_depend_on_its_thread_count(case, day_of_year, seed, mop):
    # hour t goes to solver t mod k, every solver set up on the same data: the same answer bit for bit
    from stackelberg_mop.powerflow import dispatch_model, set_dispatch_threads

    day = sm.simbench_day(case, day_of_year)
    bounds = sm.market.price_bounds(case, day)
    exchange = sm.best_response(case, day, bounds.project(
        np.random.default_rng(seed).uniform(bounds.lower, bounds.upper))).exchange_power
    results = []
    try:
        for threads in (1, 2, 3, 1):
            set_dispatch_threads(threads)
            results.append(dispatch_model(case, mop=mop).solve(day, exchange))
    finally:
        set_dispatch_threads(None)
    for other in results[1:]:
        for f in dataclasses.fields(other):
            if f.name != "solve_time":
                a, b = getattr(other, f.name), getattr(results[0], f.name)
                assert a == b if isinstance(a, str) else np.array_equal(a, b, equal_nan=True), f.name


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_thread_count_is_named(monkeypatch, value):
    from stackelberg_mop.powerflow import threads

    monkeypatch.setattr(threads, "_threads", None)
    monkeypatch.setenv("STACKELBERG_MOP_THREADS", value)
    with pytest.raises(ValueError, match="STACKELBERG_MOP_THREADS"):
        threads.dispatch_threads()
    monkeypatch.setenv("STACKELBERG_MOP_THREADS", "3")
    assert threads.dispatch_threads() == 3
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            threads.set_dispatch_threads(bad)


@pytest.mark.parametrize("wrong", ["hourly", "both"])
def test_direct_path_that_disagrees_is_dropped(case, day, tariff_response, opf, monkeypatch, wrong):
    # a direct solve with wrong data (here: the objective's prices halved) fails its first-solve check:
    # a wrong hourly solver (checked hour by hour against the one-hour model) gives way to the day's
    # own compiled direct path (checked against cvxpy); when that is wrong too, cvxpy's path stays.
    # Each step down is reported by a SlowPathWarning naming why, never silent
    from stackelberg_mop.powerflow import SlowPathWarning, clarabel_backend

    case = case.replace(name=case.name)  # a case of its own, with an empty cache: its one-hour model is new too
    halve = lambda data: lambda self: (data(self)[0] * 0.5, data(self)[1])
    monkeypatch.setattr(clarabel_backend.HourlyClarabel, "data", halve(clarabel_backend.HourlyClarabel.data))
    if wrong == "both":
        monkeypatch.setattr(clarabel_backend.DirectClarabel, "data", halve(clarabel_backend.DirectClarabel.data))
    model = DispatchModel(case)
    with pytest.warns(SlowPathWarning) as caught:
        result = model.solve(day, tariff_response.exchange_power)
    assert any("hourly path" in str(w.message) for w in caught)
    assert model.solve_path == ("cvxpy" if wrong == "both" else "direct")
    assert str(caught[-1].message).endswith(f"solved by the slower {model.solve_path} path")
    assert (model._direct is None) if wrong == "both" else (type(model._direct) is clarabel_backend.DirectClarabel)
    np.testing.assert_allclose(result.lmp, opf.lmp, atol=0.05)
    assert result.grid_cost == pytest.approx(opf.grid_cost, rel=1e-7)


def test_the_fast_path_fits_the_installed_cvxpy(case, day, tariff_response):
    # the dispatch drives Clarabel through cvxpy's private internals (`clarabel_backend`); a cvxpy
    # release that moved them would make every step slower without a word: this fails loudly instead
    from stackelberg_mop.powerflow import clarabel_backend

    assert clarabel_backend.cvxpy_version() in clarabel_backend.TESTED_CVXPY, (
        f"cvxpy {clarabel_backend.cp.__version__} is untested with the direct Clarabel path: check it, then "
        "add its version to TESTED_CVXPY")
    import warnings

    for hours in (1, 24):
        model = DispatchModel(case.replace(name=case.name), hours=hours)
        with warnings.catch_warnings():
            warnings.simplefilter("error", sm.powerflow.SlowPathWarning)
            model.solve(day, tariff_response.exchange_power)
        assert model.solve_path == ("direct" if hours == 1 else "hourly")
