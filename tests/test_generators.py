"""The DNO's distributed generators (`cases.Generators`) and the substation's limits (`cases.Grid`):
validation, the dispatch's optimality conditions for a DG, the energy balance, the AC check and the
price of the state through `evaluate`'s one cost path."""

import copy

import numpy as np
import pytest
from conftest import DG_SECTIONS
from hypothesis import example, given, settings
from hypothesis import strategies as st

import stackelberg_mop as sm
from stackelberg_mop.cases import CaseError, case_from_dict
from stackelberg_mop.data.optimum_table import OptimumTable
from stackelberg_mop.powerflow import dispatch_model
from stackelberg_mop.scoring import evaluate_hour

#: ¥/MWh (2e-4 of the LMPs): what Clarabel's stopping tolerances leave between a DG's marginal cost and
#: its bus's LMP, measured up to 0.069 over 9 days × both MOP modes, with or without iterative
#: refinement (LMPs are the duals over ω_1 = 0.5); a wrong cost or injection scaling shows as >= 10 ¥/MWh
TOL_LMP = 0.2


def _dg_spec(edit):
    spec = {"extends": "ieee33-mop", "name": "dg", **copy.deepcopy(DG_SECTIONS)}
    edit(spec)
    return spec


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["generators"].__setitem__("bus", [9, 15, 18, 22, 40]), r"generators\.bus: bus \[40\] does not exist"),
    (lambda s: s["generators"].__setitem__("bus", [0, 15, 18, 22, 29]), r"generators\.bus: bus 0 is the substation"),
    (lambda s: s["generators"].__setitem__("bus", [9, 9, 18, 22, 29]), r"generators\.bus: one generator per bus"),
    (lambda s: s["generators"].__setitem__("p_min_mw", [0.9, 0, 0, 0, 0]), r"generators\.p_max: need 0 <= p_min"),
    (lambda s: s["generators"].__setitem__("p_max_mw", [0.8, 0.6, 0.0, 0.6, 0.7]), r"generators\.p_max"),
    (lambda s: s["generators"].__setitem__("q_max_mvar", [-0.5, 0.3, 0.4, 0.3, 0.35]), r"generators\.q_max"),
    (lambda s: s["generators"].__setitem__("cost_quadratic_cny_per_mw2h", [-1, 0, 0, 0, 0]),
     r"generators\.cost_quadratic: must be >= 0"),
    (lambda s: s["generators"].__setitem__("cost_linear_cny_per_mwh", [1, 2]), r"generators\.cost_linear: expected 5"),
    (lambda s: s["generators"].__setitem__("cost_linear_cny_per_mwh", [1, 2, float("nan"), 4, 5]),
     r"generators\.cost_linear"),
    (lambda s: s["generators"].pop("p_max_mw"), r"generators\.p_max: expected 5 values, got 0"),
    (lambda s: s["grid"].__setitem__("import_limit_mw", -1.0), r"grid\.import_limit: must be a number >= 0"),
    (lambda s: s["grid"].__setitem__("export_limit_mw", "lots"), r"grid\.export_limit"),
])
def test_generator_validation_names_the_field(edit, message):
    with pytest.raises(CaseError, match=message):
        case_from_dict(_dg_spec(edit))


def test_absent_parts_leave_the_shipped_fingerprint(case, dg_case):
    """Cases without DGs or grid limits keep the fingerprint their optimum tables were computed for;
    adding either changes it (data computed without them is refused)."""
    assert sm.optimum(case, sm.reference_day(case)).status == "optimal"  # refused if the fingerprint moved
    assert {row["case_fingerprint"] for row in OptimumTable(case).rows.values()} == {case.fingerprint}
    assert len(case.generators) == 0 and not case.grid.limited
    assert dg_case.fingerprint != case.fingerprint
    assert dg_case.replace(grid=sm.cases.Grid()).fingerprint not in (case.fingerprint, dg_case.fingerprint)


def test_generator_cost_is_the_quadratic(dg_case):
    gen = dg_case.generators
    p = np.linspace(0, 1, 5)[None, :] * gen.p_max[:, None]
    expected = gen.cost_quadratic[:, None] * p**2 + gen.cost_linear[:, None] * p + gen.cost_fixed[:, None]
    np.testing.assert_allclose(gen.cost(p), expected, rtol=1e-15)


@settings(max_examples=4, deadline=None)
@given(day_of_year=st.integers(0, 365), seed=st.integers(0, 2**16), mop=st.sampled_from(["opf", "off"]))
@example(day_of_year=-1, seed=0, mop="opf")  # the reference day
@example(day_of_year=188, seed=65536, mop="opf")  # noon ends at Clarabel's reduced accuracy (2016-07-07; found by CI)
def test_dispatch_runs_each_dg_at_its_marginal_cost(dg_case, day_of_year, seed, mop):
    """The dispatch's optimality conditions for each DG i at bus β(i): 2a P + b = LMP_β where the DG
    is inside its range, ≤ at P_max, ≥ at P_min; the epigraph is tight (e = p̃²) so that the reported
    cost is the model's; the import limit holds; generation and import cover load and losses; the
    direct Clarabel path is in use; and the one-hour model gives that hour of the day."""
    case = dg_case
    day = sm.reference_day(case) if day_of_year < 0 else sm.simbench_day(case, day_of_year)
    bounds = sm.market.price_bounds(case, day)
    prices = bounds.project(np.random.default_rng(seed).uniform(bounds.lower, bounds.upper))
    exchange = sm.best_response(case, day, prices).exchange_power
    model = dispatch_model(case, "socp", mop)
    res = model.solve(day, exchange)
    # "optimal_inaccurate": some hour reached only Clarabel's reduced accuracy (residuals ~1e-7, four
    # DGs idle at the cone's boundary); the optimality conditions below still hold to TOL_LMP
    assert res.status in ("optimal", "optimal_inaccurate") and model.direct_solver() is not None
    gen = case.generators
    p, lmp = res.dg_p, res.lmp[case.bus_position(gen.bus)]
    marginal = 2 * gen.cost_quadratic[:, None] * p + gen.cost_linear[:, None]
    lo, hi = gen.p_min[:, None] + 1e-3, gen.p_max[:, None] - 1e-3
    inside = (p > lo) & (p < hi)
    assert inside.any()
    assert np.abs(marginal - lmp)[inside].max() <= TOL_LMP
    assert (marginal - lmp)[p >= hi].max(initial=-1) <= TOL_LMP
    assert (lmp - marginal)[p <= lo].max(initial=-1) <= TOL_LMP
    assert np.all(p >= gen.p_min[:, None] - 1e-7) and np.all(p <= gen.p_max[:, None] + 1e-7)
    assert np.all(res.dg_q >= gen.q_min[:, None] - 1e-7) and np.all(res.dg_q <= gen.q_max[:, None] + 1e-7)
    epi, tilde = model.vars["dg_epi"].value, model.vars["dg_p"].value
    assert np.abs(epi - tilde**2).max() <= 1e-6
    assert res.dg_cost == pytest.approx(float(gen.cost(p).sum()), rel=1e-12)
    assert res.grid_power.max() <= case.grid.import_limit + 1e-6
    demand = day.base_p.sum(axis=0) + exchange.sum(axis=0)
    supply = res.grid_power + p.sum(axis=0)
    np.testing.assert_allclose(supply, demand + res.line_loss + res.mop_loss.sum(axis=0), atol=1e-5)  # 10 W
    t = int(np.random.default_rng(seed).integers(24))
    one = dispatch_model(case, "socp", mop, hours=1).solve(day, exchange, start=t)
    np.testing.assert_allclose(one.dg_p[:, 0], p[:, t], atol=1e-4)


def test_evaluate_prices_the_dgs_and_checks_them_in_ac(dg_case):
    """`evaluate` charges the DGs' cost (from their output, the one cost path), counts it in the DNO's
    operating cost and hourly objective, and its AC check injects their output: the sweep agrees with
    pandapower and with the exact relaxation's voltages."""
    case = dg_case
    day = sm.reference_day(case)
    prices = np.asarray(case.tariff.buy_price, float)
    out = sm.evaluate(case, day, prices)
    assert out.status == "optimal"
    gen = case.generators
    assert out.dg_cost == pytest.approx(float(gen.cost(out.dg_p).sum()), rel=1e-12) and out.dg_cost > 0
    economic = out.grid_cost + out.dg_cost - out.revenue + out.line_loss_cost + out.mop_loss_cost
    assert out.dno_cost == pytest.approx(economic, rel=1e-12)
    assert out.hourly_objective.sum() == pytest.approx(out.dno_objective, rel=1e-10)
    assert out.relaxation_gap.max() < 1e-6 and out.ac_mismatch.max() < 1e-4
    ac = sm.evaluate(case, day, prices, ac="pandapower", response=out.response, dispatch=out.dispatch)
    np.testing.assert_allclose(ac.voltages_ac, out.voltages_ac, atol=1e-8)
    without = sm.powerflow.ac.sweep_power_flow(case, day, out.exchange_power, out.mop_p, out.mop_q,
                                               0 * out.dg_p, 0 * out.dg_q)
    assert np.abs(without.vm - out.voltages_ac).max() > 1e-3  # the DGs' injections do reach the AC check
    hour = evaluate_hour(case, day, prices, 19)
    assert hour.objective == pytest.approx(out.hourly_objective[19], rel=1e-6)


def test_setpoints_are_refused_for_a_case_with_generators(dg_case):
    day = sm.reference_day(dg_case)
    with pytest.raises(ValueError, match="set-points are not supported for a case with generators"):
        sm.evaluate(dg_case, day, np.full(24, 700.0), mop=np.zeros((2, 4, 24)))


def test_import_limit_raises_the_lmps(case, dg_case):
    """Without the limit the DGs compete with the tariff; with it they are marginal in the hours it
    binds, and the LMPs there follow their costs, above what the same DGs give without the limit."""
    day = sm.reference_day(dg_case)
    prices = np.asarray(case.tariff.buy_price, float)
    exchange = sm.best_response(dg_case, day, prices).exchange_power
    limited = dispatch_model(dg_case).solve(day, exchange)
    free = dispatch_model(dg_case.replace(grid=sm.cases.Grid())).solve(day, exchange)
    binds = limited.grid_power >= dg_case.grid.import_limit - 1e-6
    assert binds.any() and free.grid_power[binds].min() > dg_case.grid.import_limit
    assert np.all(limited.lmp[:, binds] >= free.lmp[:, binds] - TOL_LMP)
    assert limited.dg_cost > free.dg_cost


def test_export_limit_caps_what_the_feeder_sends_up(dg_case):
    """With cheap DGs and no load to serve, the DNO exports at the sell price; an export limit caps it."""
    import dataclasses

    gen = dataclasses.replace(dg_case.generators, cost_quadratic=np.full(5, 100.0), cost_linear=np.full(5, 50.0))
    free = dg_case.replace(generators=gen, grid=sm.cases.Grid(import_limit=1.8))
    capped = free.replace(grid=sm.cases.Grid(import_limit=1.8, export_limit=0.2))
    day = sm.reference_day(free)
    exchange = sm.best_response(free, day, np.asarray(free.tariff.buy_price, float)).exchange_power
    sent = dispatch_model(free).solve(day, exchange)
    held = dispatch_model(capped).solve(day, exchange)
    assert sent.status == held.status == "optimal"
    assert sent.grid_power.min() < -0.2 and held.grid_power.min() >= -0.2 - 1e-6
    assert held.dg_p.sum() < sent.dg_p.sum()
