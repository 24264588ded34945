"""Every public entry point names a bad argument (generated bad values), and every accepted input gives a
finite, documented result (generated good values)."""

import json
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import stackelberg_mop as sm
from stackelberg_mop import _validate, cli
from stackelberg_mop.algorithms import admm, fixed_point
from stackelberg_mop.bilevel import branch_and_bound, kkt, lagrangian
from stackelberg_mop.cases import CaseError, case_from_dict
from stackelberg_mop.envs import StackelbergMOPEnv, StackelbergMOPHourlyEnv
from stackelberg_mop.market.p2p import p2p_market
from stackelberg_mop.powerflow import DispatchModel
from stackelberg_mop.runner import benchmark
from stackelberg_mop.scoring import evaluate_hour

SLOW_OK = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- generated bad values -----------------------------------------------------------------------------
NOT_A_NUMBER = st.one_of(st.none(), st.text(max_size=5), st.booleans(), st.lists(st.floats(), max_size=2),
                         st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def bad_number(lo=None, hi=None, lo_open=False, inf_ok=False):
    """Values that are not a number in [lo, hi]: other types, NaN/inf (not +inf with inf_ok: "no
    limit"), and numbers outside."""
    outside = []
    if lo is not None:
        outside.append(st.floats(max_value=lo, exclude_max=not lo_open, allow_nan=False, allow_infinity=False,
                                 min_value=lo - 1e6))
    if hi is not None:
        outside.append(st.floats(min_value=hi, exclude_min=True, max_value=hi + 1e6, allow_nan=False))
    non_finite = st.sampled_from([math.nan, -math.inf]) if inf_ok else NON_FINITE
    return st.one_of(NOT_A_NUMBER, non_finite, *outside)


def bad_integer(lo=None, hi=None):
    """Values that are not an integer in [lo, hi]: non-integers, other types, NaN/inf, outside."""
    fractions = st.floats(-1e3, 1e3).filter(lambda x: not float(x).is_integer())
    outside = ([st.integers(max_value=lo - 1, min_value=lo - 10**6)] if lo is not None else []) + (
        [st.integers(min_value=hi + 1, max_value=hi + 10**6)] if hi is not None else [])
    return st.one_of(NOT_A_NUMBER, NON_FINITE, fractions, *outside)


def bad_choice(choices):
    return st.one_of(st.text(max_size=8), st.none(), st.integers(), st.booleans()).filter(
        lambda v: not any(v is c or (type(v) is type(c) and v == c) for c in choices))


def bad_prices(n=24):
    """Arrays that cannot be a price vector: NaN/inf inside, wrong shapes, strings, None."""
    with_nan = arrays(np.float64, n, elements=st.floats(400, 1100)).flatmap(
        lambda a: st.tuples(st.integers(0, n - 1), NON_FINITE).map(lambda iv: np.where(np.arange(n) == iv[0], iv[1], a)))
    wrong_shape = st.sampled_from([(23,), (25,), (3, 10), (2, 3, 24), (0,), ()]).map(lambda s: np.full(s, 500.0))
    return st.one_of(with_nan, wrong_shape, st.text(max_size=4), st.none(), st.just([[1.0, 2.0], [3.0]]))


# --- the entry points: (name, argument named in the error, bad values, call) ---------------------------
def _entries(case, day):
    env_days = [day]
    small_env = lambda **kw: StackelbergMOPEnv(case=case, days=env_days, split="reference", **kw)
    hourly_env = lambda **kw: StackelbergMOPHourlyEnv(case=case, days=env_days, split="reference", **kw)

    def reset_with(value):
        env = small_env()
        env.reset(seed=0, options={"day": value})

    def step_with(action):
        env = small_env()
        env.reset(seed=0)
        env.step(action)

    mops = ("opf", "off")
    return [
        ("evaluate prices", "prices", bad_prices(), lambda v: sm.evaluate(case, day, v)),
        ("evaluate day", "day", st.one_of(st.none(), st.text(max_size=3), st.integers()),
         lambda v: sm.evaluate(case, v, np.full(24, 500.0))),
        ("evaluate case", "case", st.one_of(st.none(), st.integers(), st.text(max_size=3)),
         lambda v: sm.evaluate(v, day, np.full(24, 500.0))),
        ("evaluate mop", "mop", st.one_of(bad_choice(mops + ("agent",)).filter(lambda v: isinstance(v, str)),
                                          bad_prices().filter(lambda v: not isinstance(v, str) and v is not None)),
         lambda v: sm.evaluate(case, day, np.full(24, 500.0), mop=v)),
        ("evaluate voltage_limits", "voltage_limits", bad_choice(("hard", "soft", "none")),
         lambda v: sm.evaluate(case, day, np.full(24, 500.0), voltage_limits=v)),
        ("evaluate formulation", "formulation", bad_choice(("socp", "lindistflow")),
         lambda v: sm.evaluate(case, day, np.full(24, 500.0), formulation=v)),
        ("evaluate ac", "ac", bad_choice(("sweep", "pandapower")),
         lambda v: sm.evaluate(case, day, np.full(24, 500.0), ac=v)),
        ("evaluate_hour hour", "hour", bad_integer(0, 23),
         lambda v: evaluate_hour(case, day, np.full(24, 500.0), v)),
        ("DispatchModel hours", "hours", bad_integer(1, 24), lambda v: DispatchModel(case, hours=v)),
        ("best_response prices", "prices", bad_prices(), lambda v: sm.best_response(case, day, v)),
        ("best_response day", "day", st.one_of(st.none(), st.integers()), lambda v: sm.best_response(case, v, day.buy_price)),
        ("replan hours", "hours", bad_integer(0, 24),
         lambda v: sm.market.replan(case, day, day.buy_price, sm.best_response(case, day, day.buy_price), v)),
        ("project_prices prices", "prices", bad_prices(), lambda v: sm.project_prices(case, day, v)),
        ("project_prices lower", "lower", st.one_of(st.just(np.full(24, np.nan)), st.text(max_size=3),
                                                    st.just(np.zeros(5))),
         lambda v: sm.project_prices(case, day, day.buy_price, lower=v)),
        ("simbench_day day_of_year", "day_of_year", bad_integer(0, 365), lambda v: sm.simbench_day(case, v)),
        ("simbench_day load_set", "load_set", bad_choice(("aggregate", "household")),
         lambda v: sm.simbench_day(case, 3, v)),
        ("days split", "split", bad_choice(("train", "val", "test")), lambda v: sm.days(case, v)),
        ("reference_day case", "case", st.one_of(st.none(), st.integers()), sm.reference_day),
        ("env reward_scale", "reward_scale", bad_number(lo=0, lo_open=True), lambda v: small_env(reward_scale=v)),
        ("env violation_penalty", "violation_penalty", bad_number(lo=0), lambda v: small_env(violation_penalty=v)),
        ("env failure_reward", "failure_reward", bad_number(), lambda v: small_env(failure_reward=v)),
        ("env price_per_prosumer", "price_per_prosumer", st.one_of(st.text(max_size=3), st.integers(), st.none()),
         lambda v: small_env(price_per_prosumer=v)),
        ("env mop", "mop", bad_choice(("opf", "agent", "off")), lambda v: small_env(mop=v)),
        ("env hv_prices", "hv_prices", bad_choice(("day", "sampled")), lambda v: small_env(hv_prices=v)),
        ("env reward_baseline", "reward_baseline", bad_choice((None, "tariff")), lambda v: small_env(reward_baseline=v)),
        ("env case", "case", st.one_of(st.none(), st.integers(), st.floats()),
         lambda v: StackelbergMOPEnv(case=v, split="reference")),
        ("hourly env failure_reward", "failure_reward", bad_number(), lambda v: hourly_env(failure_reward=v)),
        ("hourly env violation_penalty", "violation_penalty", bad_number(lo=0),
         lambda v: hourly_env(violation_penalty=v)),
        ("hourly env reward_scale", "reward_scale", bad_number(lo=0, lo_open=True), lambda v: hourly_env(reward_scale=v)),
        ("env reset day", "options['day']", st.one_of(st.booleans(), st.floats(0.1, 0.9), st.integers(1, 10**6),
                                                      st.integers(max_value=-1), st.text(min_size=1, max_size=4),
                                                      st.lists(st.integers(), max_size=2)), reset_with),
        ("env step action", "action", bad_prices(), step_with),
        ("kkt.solve time_limit", "time_limit", bad_number(lo=0, lo_open=True),
         lambda v: kkt.solve(case, day, time_limit=v)),
        ("kkt.solve gap", "gap", bad_number(lo=0, hi=1), lambda v: kkt.solve(case, day, gap=v)),
        ("kkt.solve threads", "threads", bad_integer(lo=1).filter(lambda v: v is not None),
         lambda v: kkt.solve(case, day, threads=v)),
        ("kkt.solve method", "method", bad_choice(kkt.METHODS), lambda v: kkt.solve(case, day, method=v)),
        ("kkt.solve mop", "mop", bad_choice(mops), lambda v: kkt.solve(case, day, mop=v)),
        ("fixed_point.solve rho", "rho", bad_number(lo=0, lo_open=True), lambda v: fixed_point.solve(case, day, rho=v)),
        ("fixed_point.solve max_iter", "max_iter", bad_integer(lo=1), lambda v: fixed_point.solve(case, day, max_iter=v)),
        ("fixed_point.solve damping", "damping", st.one_of(st.text(max_size=4).filter(lambda s: s not in ("proximal", "msa")),
                                                           bad_number(lo=0, hi=1, lo_open=True).filter(
                                                               lambda v: not isinstance(v, str) and v is not None)),
         lambda v: fixed_point.solve(case, day, damping=v)),
        ("fixed_point.solve initial_prices", "initial_prices",
         bad_prices().filter(lambda v: v is not None), lambda v: fixed_point.solve(case, day, initial_prices=v)),
        ("admm.solve rho", "rho", bad_number(lo=0, lo_open=True), lambda v: admm.solve(case, day, rho=v)),
        ("admm.solve max_iter", "max_iter", bad_integer(lo=1), lambda v: admm.solve(case, day, max_iter=v)),
        ("admm.solve initial_prices", "initial_prices", bad_prices().filter(lambda v: v is not None),
         lambda v: admm.solve(case, day, initial_prices=v)),
        ("lagrangian_bound time_limit", "time_limit", bad_number(lo=0, lo_open=True, inf_ok=True),
         lambda v: lagrangian.lagrangian_bound(case, day, time_limit=v)),
        ("lagrangian_bound max_evaluations", "max_evaluations", bad_integer(lo=1),
         lambda v: lagrangian.lagrangian_bound(case, day, max_evaluations=v)),
        ("branch_and_bound gap", "gap", bad_number(lo=0, hi=1),
         lambda v: branch_and_bound.branch_and_bound(case, day, day.buy_price, 1.0, gap=v)),
        ("benchmark.run backend", "backend", bad_choice(benchmark.BACKENDS),
         lambda v: benchmark.run(["tariff"], split="reference", backend=v, progress=False)),
        ("benchmark.run workers", "workers", bad_integer(lo=1).filter(lambda v: v is not None),
         lambda v: benchmark.run(["tariff"], split="reference", workers=v, progress=False)),
        ("benchmark.run split", "split", bad_choice(("test", "val", "train", "reference")),
         lambda v: benchmark.run(["tariff"], split=v, progress=False)),
        ("benchmark.run limit", "limit", bad_integer(lo=1).filter(lambda v: v is not None),
         lambda v: benchmark.run(["tariff"], split="test", limit=v, progress=False)),
        ("optimum day", "day", st.one_of(st.none(), st.text(max_size=3), st.integers()), lambda v: sm.optimum(case, v)),
        ("optimum case", "case", st.one_of(st.none(), st.text(max_size=0), st.integers()), lambda v: sm.optimum(v, day)),
        # None is each argument's default (the case's own platform, else 0.2 MW and γ = 10)
        ("p2p_market cap_mw", "cap_mw", st.one_of(NOT_A_NUMBER.filter(lambda v: v not in ([], [0.0], None)),
                                                  NON_FINITE), lambda v: p2p_market(case, cap_mw=v)),
        ("p2p_market trade_cost", "trade_cost", bad_number(lo=0, lo_open=True).filter(lambda v: v is not None),
         lambda v: p2p_market(case, trade_cost=v)),
        ("benchmark policy", "policy", st.sampled_from(["flat:abc", "flat:nan", "oracle", "agent:", "agent:/nowhere",
                                                        "optimum:/nowhere.jsonl", "admm:fast"]),
         benchmark.make_policy),
    ]


ENTRY_NAMES = [e[0] for e in _entries(None, None)]


@pytest.fixture(scope="module")
def entries(case, day):
    return {e[0]: e for e in _entries(case, day)}


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_generated_bad_values_are_named(entries, name, tmp_path, monkeypatch):
    """Each entry point, driven with generated bad values of one argument, raises ValueError whose
    message starts with (or names) that argument, before any solver runs."""
    monkeypatch.chdir(tmp_path)  # benchmark.run writes results/ relative to the working directory
    _, argument, values, call = entries[name]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(value=values)
    def check(value):
        with pytest.raises(ValueError) as err:
            call(value)
        assert argument in str(err.value), f"{name}: {err.value!r} does not name {argument!r}"

    check()


def test_the_generated_tests_drive_every_kind_of_entry_point():
    """The table covers the scorer, the followers, the price rules, the days, both environments
    (constructor, reset, step), every baseline's solve and the benchmark (the CLI: below)."""
    kinds = {name.split()[0] for name in ENTRY_NAMES}
    assert {"evaluate", "best_response", "replan", "project_prices", "simbench_day", "days", "reference_day",
            "env", "hourly", "kkt.solve", "fixed_point.solve", "admm.solve", "lagrangian_bound",
            "branch_and_bound", "benchmark.run", "benchmark", "optimum", "p2p_market"} <= kinds
    assert len(ENTRY_NAMES) >= 50


# --- case files ---------------------------------------------------------------------------------------
CASE_FIELDS = [("prosumers", "bus"), ("prosumers", "pv_capacity_mw"), ("prosumers", "kappa_cny_per_mw2h"),
               ("prosumers", "shift_fraction"), ("batteries", "capacity_mwh"), ("batteries", "soc_init"),
               ("batteries", "eta_charge"), ("mop", "s_max_mva"), ("mop", "loss_coefficient"),
               ("tariff", "buy_price_cny_per_mwh"), ("price_rules", "price_min_cny_per_mwh"),
               ("price_rules", "mean_cap"), ("objective", "omega_economic"), ("objective", "voltage_cost_cny_per_pu"),
               ("voltage", "v_min_pu"), ("network", "pandapower_case"), ("reference_profiles", "load")]
#: values no field of a case file can take: a word, NaN, a table for a list, null, an object, a boolean
BAD_FIELD_VALUES = st.one_of(st.just("six"), st.just(float("nan")), st.just([[1.0, 2.0], [3.0, 4.0]]), st.none(),
                             st.just({"a": 1}), st.just(True), st.just(["1", "2"]))


@SLOW_OK
@given(where=st.sampled_from(CASE_FIELDS), value=BAD_FIELD_VALUES)
def test_a_bad_case_field_is_named_with_its_file(spec, tmp_path_factory, where, value):
    """A case file with one field replaced by a value of the wrong kind fails to load with a
    CaseError naming the file, and the field (its section and name as the file writes them)."""
    section, key = where
    spec = json.loads(json.dumps(spec))
    spec[section][key] = value
    path = tmp_path_factory.mktemp("case") / "bad.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(CaseError) as err:
        sm.load_case(str(path))
    message = str(err.value)
    stem = re.sub(r"_(cny|mw|mva|mwh|pu)(_.*)?$", "", key)  # the field without its unit
    assert str(path) in message and f"{section}." in message and stem in message, message


def test_case_file_problems_name_the_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"name": "x",')
    with pytest.raises(CaseError, match=r"broken\.json.*not valid JSON"):
        sm.load_case(str(bad))
    with pytest.raises(CaseError, match=r"missing\.json.*no such file"):
        sm.load_case(str(tmp_path / "missing.json"))
    bad.write_text("[1, 2]")
    with pytest.raises(CaseError, match="JSON object"):
        sm.load_case(str(bad))


def test_prosumer_bus_must_be_whole_and_loss_coefficient_below_one(spec):
    spec["prosumers"]["bus"] = [6.5, 9, 14, 23, 28]
    with pytest.raises(CaseError, match=r"prosumers\.bus\[0\]: expected an integer, got 6\.5"):
        case_from_dict(spec)
    spec["prosumers"]["bus"] = [6, 9, 14, 23, 28]
    spec["mop"]["loss_coefficient"] = [0.02, 1.0, 0.02, 0.02]
    with pytest.raises(CaseError, match=r"mop\.loss_coefficient: must lie in \[0, 1\)"):
        case_from_dict(spec)


# --- the CLI: one line on stderr, exit code 2 -----------------------------------------------------------
@pytest.mark.parametrize("argv, flag", [
    (["benchmark", "--limit", "-1"], "--limit"), (["benchmark", "--workers", "0"], "--workers"),
    (["evaluate", "--policy", "tariff", "--limit", "two"], "--limit"), (["optima", "--gap", "nan"], "--gap"),
    (["optima", "--time-limit", "-3"], "--time-limit"), (["optima", "--gap", "2"], "--gap"),
    (["respond", "--day", "2016-13-01"], "--day"), (["respond", "--day", "2015-06-01"], "--day"),
    (["respond", "--prices", "flat:abc"], "--prices"), (["respond", "--prices", "flat:inf"], "--prices"),
    (["case", "no/such/case.json"], "no such file"), (["case", "ieee34"], "unknown case"),
    (["solve", "--policy", "agent:/nowhere"], "--policy"), (["train", "--total-timesteps", "-5"], "--total-timesteps"),
    (["train", "--algo", "sac", "--gamma", "1.5"], "--gamma"), (["train", "--mop", "auto"], "--mop"),
    (["train", "--n-envs", "two"], "--n-envs"), (["benchmark", "--split", "holdout"], "--split"),
    (["train", "--algo", "bc", "--loss", "l1"], "--loss"), (["train", "--algo", "bc", "--probe", "0"], "--probe"),
    (["train", "--algo", "td3", "--critic-warmup", "-1"], "--critic-warmup"),
])
def test_cli_bad_input_is_one_line_with_exit_code_2(argv, flag, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(argv)
    text = capsys.readouterr().err.strip()
    assert err.value.code == 2
    assert len(text.splitlines()) == 1 and flag in text and "Traceback" not in text, text


def test_cli_unknown_pandapower_network_is_named(spec, tmp_path, capsys):
    spec["network"]["pandapower_case"] = "case_nowhere"
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(SystemExit) as err:
        cli.main(["case", str(path)])
    assert err.value.code == 2 and "network.pandapower_case" in capsys.readouterr().err


def test_train_help_describes_every_flag(capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["train", "--algo", "td3", "--help"])
    text = capsys.readouterr().out
    assert err.value.code == 0
    options = text[text.index("options:"):]
    for flag, words in (("--total-timesteps", "environment steps"), ("--action-noise", "exploration noise"),
                        ("--init-from", "continue"), ("--learning-rate", "default: 0.0003")):
        entry = " ".join(options[options.index(flag):].split()[:16])
        assert words in entry, entry


# --- accepted inputs give finite, documented results ----------------------------------------------------
STATUSES = ("optimal", "optimal_inaccurate", "follower_failed", "infeasible", "solver_error", "ac_not_converged")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prices=arrays(np.float64, 24, elements=st.floats(-300, 3000)),
       mop=st.sampled_from(["opf", "off"]), limits=st.sampled_from(["hard", "soft", "none"]),
       formulation=st.sampled_from(["socp", "lindistflow"]))
def test_accepted_inputs_give_finite_documented_results(case, day, prices, mop, limits, formulation):
    """Any finite prices (inside the rules or not) with any documented option: a documented status;
    when it is optimal every cost is finite and the parts add up; the projection keeps the rules."""
    out = sm.evaluate(case, day, prices, mop=mop, voltage_limits=limits, formulation=formulation)
    assert out.status.split(":")[0] in STATUSES
    if out.status.startswith("optimal"):
        s = out.summary()
        assert all(np.isfinite(s[k]) for k in ("dno_objective", "dno_cost", "prosumer_cost", "welfare",
                                                "violation_rate", "price_violation"))
        assert out.dno_cost == pytest.approx(out.grid_cost - out.revenue + out.line_loss_cost + out.mop_loss_cost)
        assert out.hourly_objective.sum() == pytest.approx(out.dno_objective, rel=1e-9, abs=1e-6)
    elif out.status.startswith("follower_failed"):
        assert ":" in out.status  # the reason is given
    lam = sm.project_prices(case, day, prices)
    assert np.all(np.isfinite(lam)) and sm.market.price_bounds(case, day).violation(lam) <= 1e-9


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=arrays(np.float64, 24, elements=st.floats(-5, 5)), penalty=st.floats(0, 1e4),
       scale=st.floats(1.0, 1e6))
def test_accepted_env_options_give_finite_rewards(case, day, action, penalty, scale):
    env = StackelbergMOPEnv(case=case, days=[day], split="reference", violation_penalty=penalty, reward_scale=scale)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(action)
    assert terminated and np.isfinite(reward)
    assert info["status"].startswith("optimal") and info["price_violation"] <= 1e-6


def test_whole_floats_are_accepted_as_integers(case):
    assert sm.simbench_day(case, 3.0).name == sm.simbench_day(case, 3).name == "2016-01-04"
    assert _validate.integer("n", np.int64(5)) == 5


def test_a_follower_failure_says_why(case, day):
    out = sm.evaluate(case, day, np.full(24, -1e4))
    assert out.status.startswith("follower_failed: ") and "charge and discharge" in out.status
