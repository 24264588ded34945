"""Every file the package reads is checked before it is used: case files (unknown keys named with
their closest valid name), optimum tables (tests/test_optima.py), agent folders, benchmark rows;
arguments a case cannot support are refused where they enter. Nothing is written from bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stackelberg_mop as sm
from stackelberg_mop import cli
from stackelberg_mop.cases import case_from_dict
from stackelberg_mop.cases.schema import SECTIONS
from stackelberg_mop.runner import benchmark
from stackelberg_mop.runner.report import read_rows

SHIPPED = Path(sm.cases.__file__).parent / "ieee33-mop.json"


@pytest.fixture(scope="module")
def spec():
    return json.loads(SHIPPED.read_text())


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(grid={"import_limit": 1.0}), "grid.import_limit: unknown key; did you mean 'import_limit_mw'"),
    (lambda s: s.update(generators={"bus": [3], "cost_fixed_cny_per_hour": [1.0]}),
     "generators.cost_fixed_cny_per_hour: unknown key; did you mean 'cost_fixed_cny_per_h'"),
    (lambda s: s.update(generators={"p_max_MW": [1.0]}), "generators.p_max_MW: unknown key; did you mean 'p_max_mw'"),
    (lambda s: s.update(gridd={}), "gridd: unknown section; did you mean 'grid'"),
    (lambda s: s["voltage"].update(v_nominal_pu=1.0), "voltage.v_nominal_pu: unknown key"),
    (lambda s: s.update(prosumers=[1, 2]), "prosumers: expected a JSON object"),
])
def test_a_misspelled_key_or_section_is_named_with_its_closest_valid_name(spec, change, message, tmp_path):
    bad = json.loads(json.dumps(spec))
    change(bad)
    with pytest.raises(sm.CaseError, match=message.replace("(", r"\(")):
        case_from_dict(bad)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(sm.CaseError, match=f"case file '{path}'"):
        sm.load_case(str(path))
    child = tmp_path / "child.json"  # a file that extends a shipped case is checked as written
    child.write_text(json.dumps({"extends": "ieee33-mop", "name": "child",
                                 **{k: v for k, v in bad.items() if k not in spec or v != spec[k]}}))
    with pytest.raises(sm.CaseError):
        sm.load_case(str(child))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_case_files_round_trip_and_any_renamed_key_is_refused(spec, data):
    """The shipped layout written and read back gives the shipped case (same fingerprint); a key or
    section renamed at random (a typo: a letter dropped, doubled or upper-cased) is refused with a
    CaseError naming it, never accepted and never another exception."""
    assert case_from_dict(json.loads(json.dumps(spec))).fingerprint == sm.load_case().fingerprint
    section = data.draw(st.sampled_from([k for k in spec if isinstance(spec[k], dict)]))
    key = data.draw(st.sampled_from([None, *spec[section]]))
    name = section if key is None else key
    typo = data.draw(st.sampled_from(["drop", "double", "upper", "suffix"]))
    i = data.draw(st.integers(0, len(name) - 1))
    wrong = {"drop": name[:i] + name[i + 1:], "double": name[:i] + name[i] + name[i:],
             "upper": name[:i] + name[i].upper() + name[i + 1:], "suffix": name + "_x"}[typo]
    valid = set(SECTIONS) | {"name", "description", "extends"} if key is None else set(SECTIONS[section])
    if wrong in valid:
        return  # the typo is another valid name (e.g. upper-casing a digit)
    bad = json.loads(json.dumps(spec))
    if key is None:
        bad[wrong] = bad.pop(section)
    else:
        bad[section][wrong] = bad[section].pop(key)
    with pytest.raises(sm.CaseError, match=f"{wrong}"):
        case_from_dict(bad)


def test_environment_options_a_case_cannot_support_are_refused_at_construction():
    for env_id in ("StackelbergMOP-v1", "StackelbergMOPHourly-v1"):
        with pytest.raises(ValueError, match="mop: 'agent'.*has none"):
            gym.make(env_id, case="p2p-sharing", mop="agent")
        with pytest.raises(ValueError, match="days: expected a list of Day objects.*int"):
            gym.make(env_id, days=5)
        with pytest.raises(ValueError, match="days: expected a list"):
            gym.make(env_id, days="2016-07-04")


def test_batch_and_old_signatures_are_refused_by_name():
    case = sm.load_case()
    day = sm.reference_day(case)
    batch = sm.best_response_batch(case, day, np.full((2, 24), 600.0))
    with pytest.raises(ValueError, match="response: expected one day's BestResponse.*best_response_batch"):
        sm.kkt_residuals(case, day, batch)
    with pytest.raises(ValueError, match="project_prices.*the day is missing"):
        sm.project_prices(case, np.full(24, 600.0))
    with pytest.raises(ValueError, match="is not a file"):
        sm.optimum(case, day, table=Path(__file__).parent)


def _agent_copy(tmp_path) -> Path:
    run = tmp_path / "agent"
    shutil.copytree("benchmarks/agents/bc-regret", run)
    return run


@pytest.mark.parametrize("damage, message", [
    (lambda run: (run / "config.json").unlink(), "no config.json"),
    (lambda run: (run / "config.json").write_text("{not json"), "config.json is not valid JSON"),
    (lambda run: (run / "config.json").write_text("[1, 2]"), "must hold a JSON object"),
    (lambda run: (run / "config.json").write_text(json.dumps({"algo": "dqn"})), "algo: expected one of"),
    (lambda run: (run / "config.json").write_text(json.dumps({"algo": "td3", "mop": "auto"})), "mop: expected one of"),
    (lambda run: (run / "best_model.zip").write_bytes(b"not a zip"), "is not a loadable td3 model"),
    (lambda run: (run / "best_model_vecnormalize.pkl").write_bytes(b"\x80\x04junk"), "observation statistics"),
])
def test_a_damaged_agent_folder_is_named_before_the_benchmark_starts(tmp_path, damage, message):
    run = _agent_copy(tmp_path)
    damage(run)
    out = tmp_path / "rows.csv"
    with pytest.raises(ValueError, match=message):
        benchmark.run([f"agent:{run}"], split="test", limit=1, out=out, backend="serial", progress=False)
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("column, value, message", [
    ("dno_objective", "abc", "dno_objective: expected a number"),
    ("prices", "[1, 2, 3]", "prices: expected 24 hours"),
    ("prices", "not json", "prices: expected a JSON list"),
    ("policy", "", "policy: missing"),
])
def test_a_corrupt_row_of_a_resumed_benchmark_is_named_and_the_file_left_alone(tmp_path, column, value, message,
                                                                               capsys):
    out = tmp_path / "rows.csv"
    benchmark.run(["flat"], split="test", limit=1, out=out, backend="serial", progress=False)
    rows = read_rows(out)
    rows[1][column] = value
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = out.read_bytes()
    with pytest.raises(SystemExit) as exit_:
        cli.main(["benchmark", "--policies", "flat", "--limit", "1", "--backend", "serial", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"rows.csv:3: {message}" in err and "Traceback" not in err
    assert out.read_bytes() == before


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text("abcdefgh:-_", min_size=1, max_size=12), st.floats(-1e6, 1e6)), min_size=1,
                max_size=6), st.integers(0, 5), st.sampled_from(["x", "nan?", "1e400e"]))
def test_benchmark_rows_round_trip_and_a_corrupt_number_is_named(tmp_path_factory, rows, which, junk):
    from stackelberg_mop.runner.benchmark import FIELDS, _write_rows

    path = tmp_path_factory.mktemp("rows") / "rows.csv"
    written = [{"policy": p, "day": f"2016-01-{k + 1:02d}", "status": "optimal", "dno_objective": repr(j),
                "prices": json.dumps([500.0] * 24)} for k, (p, j) in enumerate(rows)]
    _write_rows(path, written, append=False)
    back = read_rows(path)
    assert [(r["policy"], float(r["dno_objective"])) for r in back] == [(p, j) for p, j in rows]
    assert list(back[0]) == FIELDS
    written[which % len(written)]["dno_objective"] = junk
    _write_rows(path, written, append=False)
    with pytest.raises(ValueError, match=rf"rows\.csv:{which % len(written) + 2}: dno_objective"):
        read_rows(path)


def _case_file(tmp_path, base: str, change) -> Path:
    spec = json.loads((SHIPPED.parent / f"{base}.json").read_text())
    change(spec)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize("base, change, message", [
    ("p2p-sharing", lambda s: s["p2p"].update(pairs_bus=5), "p2p.pairs_bus: expected \\[\\[bus, bus\\], ...\\] pairs that may trade, got 5"),
    ("p2p-sharing", lambda s: s["p2p"].update(pairs_bus=[3, 12, 12, 25, 3, 25]), "p2p.pairs_bus\\[0\\]: expected a list, got 3"),
    ("p2p-sharing", lambda s: s["p2p"].update(pairs_bus=[[3, 12], [12, 3], [3, 25]]), "given twice"),
    ("p2p-sharing", lambda s: s["prosumers"].update(curtailable=[[True], [True, False], True]),
     "prosumers.curtailable\\[0\\]: expected true or false, got \\[true\\]"),
    ("ieee33-mop", lambda s: s["price_rules"].update(lower_cny_per_mwh=True), "price_rules.lower_cny_per_mwh: expected a number, 24 numbers, .*got true"),
    ("ieee33-mop", lambda s: s["price_rules"].update(lower_cny_per_mwh=[[400] * 12] * 2), "price_rules.lower_cny_per_mwh: expected a number, 24 numbers"),
])
def test_case_values_that_numpy_would_bend_are_refused(tmp_path, base, change, message):
    with pytest.raises(sm.CaseError, match=message):
        sm.load_case(str(_case_file(tmp_path, base, change)))


def test_case_files_that_are_not_one_clean_json_object_are_named(tmp_path):
    text = SHIPPED.read_text()
    twice = tmp_path / "twice.json"
    twice.write_text(text.replace('"v_min_pu": 0.95,', '"v_min_pu": 0.90, "v_min_pu": 0.95,'))
    with pytest.raises(sm.CaseError, match="v_min_pu: given twice"):
        sm.load_case(str(twice))
    latin = tmp_path / "latin.json"
    latin.write_bytes(text.replace("IEEE", "IEEE é").encode("latin-1", errors="replace"))
    with pytest.raises(sm.CaseError, match="not a text"):
        sm.load_case(str(latin))
    with pytest.raises(sm.CaseError, match="is a directory"):
        sm.load_case(str(tmp_path))


def test_a_case_file_never_writes_into_a_shipped_table(tmp_path):
    """A case file has no shipped table: `optima` must be told where its table goes (its rows would
    otherwise land in, and hide, the shipped case's table); a file must name its case (a file that
    extends a shipped case no longer inherits that case's name silently)."""
    from stackelberg_mop.runner import optima

    child = tmp_path / "child.json"
    objective = {**json.loads(SHIPPED.read_text())["objective"], "omega_voltage": 0.7}
    child.write_text(json.dumps({"extends": "ieee33-mop", "objective": objective}))
    with pytest.raises(sm.CaseError, match="name: missing"):
        sm.load_case(str(child))
    child.write_text(json.dumps({"extends": "ieee33-mop", "name": "child", "objective": objective}))
    with pytest.raises(ValueError, match="--out: case .* is a case file"):
        optima.compute(str(child), "reference", backend="serial", progress=False)
    with pytest.raises(SystemExit):
        cli.main(["optima", "--case", str(child), "--merge", str(child)])


@pytest.mark.parametrize("make, message", [
    (lambda: gym.make("StackelbergMOP-v1", reward_scal=1.0), "reward_scal: not an option.*did you mean 'reward_scale'"),
    (lambda: gym.make("StackelbergMOPHourly-v1", p2p=True), "p2p: not an option of StackelbergMOPHourlyEnv"),
    (lambda: gym.make("StackelbergMOP-v1").reset(seed="x"), "seed: expected an integer"),
    (lambda: gym.make("StackelbergMOP-v1", p2p=0), "p2p: must be False, True"),
    (lambda: gym.make("StackelbergMOPHourly-v1", split="reference", price_expectation=lambda c, d: {"a": 1}).reset(),
     "price_expectation: must be a callable"),
    (lambda: gym.make("StackelbergMOPHourly-v1", split="reference", price_expectation=lambda c: None).reset(),
     "price_expectation: must be a callable"),
    (lambda: gym.make("StackelbergMOPHourly-v1", split="reference",
                      price_expectation=lambda c, d: np.full(24, 1e9)).reset(), "outside the day's bounds"),
])
def test_environment_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_policy_specs_and_mismatched_inputs_are_named(tmp_path):
    case, c3 = sm.load_case(), sm.load_case("p2p-sharing")
    day, day3 = sm.reference_day(case), sm.reference_day(c3)
    for spec, message in (("tariff:foo", "takes no option"), ("flat:-5", "PRICE in \\(0, 100000\\]"), ("flat:", "nothing after"),
                          ("kkt:fast", "takes no option")):
        with pytest.raises(ValueError, match=message):
            benchmark.make_policy(spec)
    bad = tmp_path / "t.jsonl"
    bad.write_text(json.dumps({"day": "reference", "hello": 1}) + "\n")
    with pytest.raises(ValueError, match="t.jsonl:1"):
        benchmark.make_policy(f"optimum:{bad}")
    with pytest.raises(ValueError, match="holds 3 prosumers, case 'ieee33-mop' has 5"):
        sm.kkt_residuals(case, day, sm.best_response(c3, day3, c3.tariff.buy_price))
    with pytest.raises(ValueError, match="case: expected a Case"):
        sm.kkt_residuals("ieee33-mop", day, sm.best_response(case, day, case.tariff.buy_price))
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match="afile is a file"):
        benchmark.run(["tariff"], split="reference", out=afile / "rows.csv", backend="serial", progress=False)
    run = _agent_copy(tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config | {"env_id": "StackelbergMOPHourly-v1"}))
    with pytest.raises(ValueError, match="observes 342 values; StackelbergMOPHourly-v1 on case 'ieee33-mop' gives 376"):
        benchmark.run([f"agent:{run}"], split="test", limit=1, out=tmp_path / "rows.csv", backend="serial",
                      progress=False)
    assert not (tmp_path / "rows.csv").exists()


def test_training_scripts_refuse_before_writing_and_in_one_line(tmp_path):
    """A training script's refusal writes nothing (no run folder is started for a run that cannot
    be), names the flag, and from the command line is one line with exit code 2."""
    import subprocess
    import sys

    from stackelberg_mop.rl import sac

    tiny = ["--total-timesteps", "16", "--learning-starts", "8", "--batch-size", "8", "--eval-every", "16",
            "--eval-days", "1", "--n-envs", "1", "--progress-bar", "false", "--out", str(tmp_path)]
    for flags, message in ((["--init-from", str(tmp_path / "nothing")], "--init-from: no model"),
                           (["--algo", "td3"], "--algo: this script trains 'sac'"),
                           (["--env-id", "Foo-v1"], "--env-id")):
        with pytest.raises((ValueError, FileNotFoundError, SystemExit)):
            sac.main([*tiny, "--name", "x", *flags])
        assert not (tmp_path / "x").exists(), flags
        out = subprocess.run([sys.executable, "-m", "stackelberg_mop.rl.sac", *tiny, "--name", "x", *flags],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, flags
    with pytest.raises(SystemExit):  # an abbreviated flag is a typo, not the flag it begins
        sac.main([*tiny, "--learning-rat", "0.1"])


@pytest.mark.parametrize("argv, message", [
    (["demo", "--prices", "flat:abc"], "--prices"),
    (["demo", "--agent", "/nonexistent"], "--agent"),
    (["benchmark", "--quick", "--policies", "foo"], "--policies"),
    (["scenarios", "--case", "p2p-sharing"], "no MOP terminals"),
    (["respond", "--prices", "flat:-1"], "--prices"),
    (["respond", "--prices", "flat:1e300"], "--prices"),
])
def test_a_refused_command_writes_nothing(tmp_path, argv, message, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, *(["--out", str(out)] if argv[0] != "respond" else [])])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err
    assert not out.exists()


def test_empty_or_file_output_folders_are_named(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv in (["scenarios", "--out", ""], ["evaluate", "--policy", "tariff", "--out", ""],
                 ["solve", "--out", str(afile)]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2 and "--out" in capsys.readouterr().err
    from stackelberg_mop.rl import leaderboard

    with pytest.raises(SystemExit) as exit_:
        leaderboard.main(["--dry-run", "--out", str(afile)])
    assert exit_.value.code == 2 and "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--reward-baseline", "TARIFF"], "--reward-baseline"), (["--n-steps", "1", "--n-envs", "1"], "--n-steps"),
    (["--batch-size", "1"], "--batch-size"), (["--name", ""], "--name"), (["--name", "a/b"], "--name"),
])
def test_training_settings_that_cannot_run_are_refused_before_a_folder_exists(tmp_path, flags, message):
    from stackelberg_mop.rl import ppo

    with pytest.raises(SystemExit):
        ppo.main(["--total-timesteps", "16", "--out", str(tmp_path / "runs"), *flags])
    assert not (tmp_path / "runs").exists()


def test_python_policies_that_misbehave_become_statuses_or_named_errors(tmp_path):
    from stackelberg_mop.policies.baselines import Policy

    def broken(case, day):
        raise KeyError("a bug in the user's policy")

    rows = benchmark.run([broken], split="reference", out=tmp_path / "rows.csv", backend="serial", progress=False)
    row = next(r for r in rows if r["policy"] == "python:broken")
    assert row["status"].startswith("policy_error: KeyError")

    class Mine(Policy):
        def decide(self, case, day):
            return np.full(24, 500.0), "opf"

    with pytest.raises(ValueError, match="is a class; pass an instance"):
        benchmark.run([Mine], split="reference", out=tmp_path / "x.csv", backend="serial", progress=False)
    with pytest.raises(ValueError, match="two Python policies are named"):
        benchmark.run([lambda c, d: np.full(24, 500.0), lambda c, d: np.full(24, 600.0)], split="reference",
                      out=tmp_path / "y.csv", backend="serial", progress=False)


def test_yardstick_arguments_are_named():
    from stackelberg_mop.scoring import yardstick as y

    with pytest.raises(ValueError, match="one value per day each"):
        y.aggregate_regret([1, 2], [0], [3, 4])
    with pytest.raises(ValueError, match="objective: expected numbers"):
        y.aggregate_regret(["a"], [0], [1])
    with pytest.raises(ValueError, match="level"):
        y.bootstrap_interval([1, 2], [0, 0], [3, 4], level=2)
    with pytest.raises(ValueError, match="resamples"):
        y.bootstrap_interval([1, 2], [0, 0], [3, 4], resamples=10.5)
    with pytest.raises(ValueError, match="values"):
        y.seed_interval(["a", "b"])


def test_render_before_reset_is_named():
    env = sm.StackelbergMOPEnv(render_mode="rgb_array")
    with pytest.raises(RuntimeError, match="reset"):
        env.render()


def test_a_response_of_another_day_is_refused_by_evaluate():
    """A best response to the same prices on another day does not balance this day's loads and PV:
    `evaluate` names it instead of scoring another day's schedules."""
    case = sm.load_case()
    day, other = sm.reference_day(case), sm.days(case, "test")[0]
    prices = case.tariff.buy_price
    with pytest.raises(ValueError, match="response: was computed for another day"):
        sm.evaluate(case, day, prices, response=sm.best_response(case, other, prices))
    assert sm.evaluate(case, day, prices, response=sm.best_response(case, day, prices)).status == "optimal"


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_agent_configs_and_run_scores_round_trip_and_corruptions_are_named(data, tmp_path_factory):
    """An agent folder's config.json and a leaderboard run's scores.json read back as written; a
    field the reader needs, corrupted at random (another type, an unknown value, removed, the file
    not JSON), is a ValueError naming the file and field, never another exception."""
    from stackelberg_mop.policies.agent import read_config
    from stackelberg_mop.rl import leaderboard

    folder = tmp_path_factory.mktemp("agent")
    config = json.loads(Path("benchmarks/agents/bc-regret/config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config))
    assert read_config(folder) == config
    key = data.draw(st.sampled_from(["algo", "env_id", "mop"]))
    how = data.draw(st.sampled_from(["number", "unknown", "list", "broken"]))
    bad = dict(config)
    bad[key] = {"number": 3, "unknown": "sac2", "list": [config.get(key)]}.get(how)
    (folder / "config.json").write_text(json.dumps(bad) if how != "broken" else json.dumps(bad)[:-3])
    with pytest.raises(ValueError, match="config.json" + ("" if how == "broken" else f".*{key}")):
        read_config(folder)

    out = tmp_path_factory.mktemp("board")
    run = leaderboard.Run("sac", "scale1e2", 0, out)
    run.folder.mkdir(parents=True)
    scores = {"algo": "sac", "env_id": "StackelbergMOP-v1", "env_steps": 30_000, "wall_s": 1700.0,
              "val_aggregate_regret": data.draw(st.floats(0, 2))}
    (run.folder / "scores.json").write_text(json.dumps(scores))
    assert run.scores() == scores
    field = data.draw(st.sampled_from(sorted(scores)))
    del scores[field]
    (run.folder / "scores.json").write_text(json.dumps(scores) if data.draw(st.booleans()) else "{not json")
    with pytest.raises(ValueError, match="scores.json"):
        run.scores()


def _shipped_row(day="2016-01-22", **changes):
    from stackelberg_mop.data.optimum_table import table_path

    rows = {json.loads(line)["day"]: json.loads(line) for line in table_path("ieee33-mop").read_text().splitlines()}
    return {**rows[day], **changes}


@pytest.mark.parametrize("row, message", [
    (_shipped_row(threads=10**30), "threads"), (_shipped_row(time_limit=-600.0), "time_limit"),
    (_shipped_row(solve_time=1e12), "solve_time"), (_shipped_row(runs=None), "runs"),
    (_shipped_row(gap=1e-9, bound=10.0), "gap"), (_shipped_row(status="time_limit", gap=1e300), "gap"),
    (_shipped_row(time_to_gap={"nan": 3.0}), "time_to_gap"), (_shipped_row(day="2016-01-22") | {"day": "2016-02-30"}, "day"),
    (_shipped_row(status="time_limit", objective=float("-inf")), "objective"), (_shipped_row(split="winter"), "split"),
])
def test_table_rows_that_contradict_themselves_are_named(tmp_path, row, message):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=f"t.jsonl:1: .*{message}"):
        sm.data.optimum_table.read_table(path)


def test_table_rows_that_do_not_fit_the_case_or_day_are_refused(tmp_path):
    case = sm.load_case()
    day = sm.days(case, "test")[0]
    path = tmp_path / "t.jsonl"
    for row, message in ((_shipped_row(prices=[-1000.0] * 24), "price rules"),
                         (_shipped_row(mop_setpoints=[[[1e6] * 24] * 4] * 2), "ratings"),
                         (_shipped_row(split="val"), "split")):
        path.write_text(json.dumps(row) + "\n")
        with pytest.raises(ValueError, match=message):
            sm.optimum(case, day, table=path)
    whole = json.dumps(_shipped_row())
    path.write_text(whole[:-1] + ', "threads": 0, "threads": 1}\n')  # a key given twice: which one?
    with pytest.raises(ValueError, match="threads: given twice"):
        sm.optimum(case, day, table=path)
    path.write_text(json.dumps(_shipped_row(threads=0)))  # whole but wrong, no newline: not a torn write
    with pytest.raises(ValueError, match="threads"):
        sm.optimum(case, day, table=path)
    path.write_bytes(b"\xef\xbb\xbf" + whole.encode())  # a byte-order mark before the first row
    assert sm.optimum(case, day, table=path).objective == _shipped_row()["objective"]
    path.write_text(json.dumps(_shipped_row(status="time_limit", objective=None, gap=None)) + "\n")
    with pytest.raises(sm.OptimumError, match="holds no solution"):
        sm.optimum(case, day, table=path)


@pytest.mark.parametrize("base, change, message", [
    ("p2p-sharing", lambda s: s["generators"].update(bus=None), "generators.bus"),
    ("p2p-sharing", lambda s: s["p2p"].update(pairs_bus=[[3, 12], [12, 3], [3, 25]], caps_mw=[0.0, 0.2, 0.18]),
     "given twice"),
    ("p2p-sharing", lambda s: s.update(p2p={}), "p2p: missing field"),
    ("substation-areas", lambda s: s.update(dsa={}), "dsa: missing field"),
    ("p2p-sharing", lambda s: s["reference_profiles"].update(wind=[3.0] * 24), "reference_profiles.wind"),
])
def test_optional_sections_given_empty_or_contradictory_are_refused(tmp_path, base, change, message):
    with pytest.raises(sm.CaseError, match=message):
        sm.load_case(str(_case_file(tmp_path, base, change)))


def test_the_shipped_json_schema_is_the_case_models_schema():
    """cases/case.schema.json (for editors) is generated from the models the loader validates with, so
    it cannot drift from what `load_case` accepts; every section and key of the loader is in it."""
    from importlib import resources

    from stackelberg_mop.cases import schema

    shipped = json.loads((resources.files("stackelberg_mop.cases") / "case.schema.json").read_text())
    assert shipped == json.loads(json.dumps(schema.json_schema())), "regenerate it with cases.schema.write_json_schema"
    assert "case.schema" not in sm.available_cases()
    props = shipped["properties"]
    for section, keys in SECTIONS.items():
        target = props[section].get("$ref") or next(a["$ref"] for a in props[section]["anyOf"] if "$ref" in a)
        assert set(shipped["$defs"][target.split("/")[-1]]["properties"]) == set(keys)
    # the sections a case must give are required unless the file extends a shipped case
    required = next(a["required"] for a in shipped["anyOf"] if "extends" not in a["required"])
    assert set(required) == {"name"} | set(SECTIONS) - set(schema.OPTIONAL)


def test_a_case_file_may_name_its_schema(tmp_path):
    spec = json.loads((Path(sm.cases.__file__).parent / "ieee33-mop.json").read_text())
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"$schema": "./case.schema.json", **spec}))
    assert sm.load_case(str(path)).fingerprint == sm.load_case().fingerprint
    path.write_text(json.dumps({"$schema": 3, **spec}))
    with pytest.raises(sm.CaseError, match=r"\$schema: expected a string"):
        sm.load_case(str(path))


def test_the_docs_case_schema_table_is_the_schema():
    from stackelberg_mop.cases.schema import markdown_table

    page = (Path(__file__).resolve().parents[1] / "docs" / "cases.md").read_text()
    assert markdown_table() in page, "docs/cases.md: paste cases.schema.markdown_table() in place of its table"


# --- a fourth outside review: every probe that crashed or misled, named now ---------------------------
def _bad_calls(case, day, spec):
    from stackelberg_mop.data.hv_prices import hv_price_scenarios
    from stackelberg_mop.powerflow import DispatchModel
    from stackelberg_mop.runner.report import report
    from stackelberg_mop.scoring import evaluate_expected

    exchange = np.zeros((len(case.prosumers), 24))
    scenarios = hv_price_scenarios(day, 20, 2)
    setpoints = np.zeros((2, len(case.mop), 24))
    return [
        (lambda: report([{"policy": "x"}]), r"rows\[0\]: day: missing"),
        (lambda: report(None), "rows: expected a CSV path or a list"),
        (lambda: report([5]), r"rows\[0\]: expected a benchmark row"),
        (lambda: report([{"policy": "t", "day": "d", "status": "optimal", "dno_objective": "abc"}]), "dno_objective"),
        (lambda: report([{"policy": "t", "day": "d", "status": "optimal", "dno_objective": float("nan")}]),
         "needs a finite objective"),
        (lambda: DispatchModel("ieee33-mop"), "case: expected a Case"),
        (lambda: DispatchModel(case, solver="GUROBI"), "solver: must be one of"),
        (lambda: DispatchModel(case, direct="no"), "direct: expected True or False"),
        (lambda: DispatchModel(case).solve(None, exchange), "day: expected a Day"),
        (lambda: DispatchModel(case).solve(day, "x"), "exchange_power: expected numbers"),
        (lambda: DispatchModel(case).solve(day, exchange, accurate="no"), "accurate: expected True or False"),
        (lambda: hv_price_scenarios(None, 20, 2), "day: expected a Day"),
        (lambda: hv_price_scenarios(day, -1, 2), "n_samples: must be >= 1"),
        (lambda: hv_price_scenarios(day, 1.5, 1), "n_samples: expected an integer"),
        (lambda: case_from_dict({**spec, 5: 1}), "5: a section's name is a string"),
        (lambda: case_from_dict({k: v for k, v in spec.items() if k != "name"}), "name: missing"),
        (lambda: evaluate_expected(case, day, case.tariff.buy_price, scenarios, foo=1), "foo: not an argument"),
        (lambda: sm.evaluate(case, day, case.tariff.buy_price, mop=setpoints, dispatch=5), "dispatch: a dispatch belongs"),
        (lambda: sm.powerflow.set_dispatch_threads(0), "threads: must be >= 1"),
    ]


def test_fourth_review_probes_are_refused_by_name(case, day, spec):
    for call, message in _bad_calls(case, day, spec):
        with pytest.raises(ValueError, match=message):
            call()


def test_fourth_review_values_that_work(case, day, spec, tmp_path, monkeypatch):
    """NumPy values where a file would hold JSON numbers, NumPy seeds and thread counts, the papers'
    old case names in `extends`, an optimum table's missing day caught as a ValueError, and a merge
    into a new folder (made only once everything is checked)."""
    from stackelberg_mop.powerflow import dispatch_threads, set_dispatch_threads
    from stackelberg_mop.runner import optima

    numpy_spec = json.loads(json.dumps(spec))
    numpy_spec["prosumers"]["bus"] = np.array(numpy_spec["prosumers"]["bus"])
    numpy_spec["voltage"]["v_min_pu"] = np.float64(0.95)
    assert case_from_dict(numpy_spec).fingerprint == case.fingerprint
    env = gym.make("StackelbergMOP-v1")
    assert np.array_equal(env.reset(seed=np.int64(3))[0], env.reset(seed=3)[0])
    set_dispatch_threads(np.int64(1))
    assert dispatch_threads() == 1
    set_dispatch_threads(None)
    with pytest.warns(DeprecationWarning, match="now called 'p2p-sharing'"):
        assert case_from_dict({"extends": "seed003-p2p", "name": "mine"}).name == "mine"
    with pytest.raises(ValueError, match="optima"):  # OptimumError is a ValueError like every bad input
        sm.optimum(case, sm.days(case, "train")[0])
    monkeypatch.setenv("STACKELBERG_MOP_THREADS", "²")
    with pytest.raises(ValueError, match="STACKELBERG_MOP_THREADS"):
        sm.powerflow.dispatch_threads()
    table = sm.data.optimum_table.table_path("ieee33-mop")
    out = tmp_path / "new" / "merged.jsonl"
    assert len(optima.merge(out, table, case=case)) > 90 and out.is_file()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        optima.merge(tmp_path / "file" / "x.jsonl", table)


# --- a fifth outside review: files and folders the package reads, and the RL command lines ----------
def test_merge_refuses_rows_that_optimum_would_refuse(tmp_path, case):
    """A source row whose split is not its day's, or whose prices break the day's rules, is refused
    before a byte is written: `merge` never writes a row `optimum` would then refuse."""
    from stackelberg_mop.runner import optima

    shipped = sm.data.optimum_table.table_path("ieee33-mop")
    out = tmp_path / "table.jsonl"
    shutil.copy(shipped, out)
    before = out.read_bytes()
    rows = [json.loads(line) for line in shipped.read_text().splitlines()]
    test_row = next(r for r in rows if r.get("split") == "test" and r.get("objective") is not None)
    for field, value, message in (("split", "train", "split: the row says 'train'"),
                                  ("prices", [1e5] * 24, "prices: outside the case's price rules")):
        source = tmp_path / f"bad-{field}.jsonl"
        source.write_text(json.dumps({**test_row, field: value}) + "\n")
        with pytest.raises(ValueError, match=message):
            optima.merge(out, source, case=case)
        assert out.read_bytes() == before
    with pytest.raises(ValueError, match="--out .* cannot be written"):
        optima.merge("/proc/1/x.jsonl", shipped)


def test_agent_folders_that_would_post_other_prices_are_refused(tmp_path, case, day):
    from stackelberg_mop.policies.agent import AgentPolicy

    shipped = Path(__file__).resolve().parents[1] / "benchmarks" / "agents" / "ppo"
    good = AgentPolicy(shipped)
    good.check(case)
    folder = tmp_path / "ppo"
    shutil.copytree(shipped, folder)
    (folder / "best_model_vecnormalize.pkl").unlink()
    with pytest.raises(ValueError, match="best_model_vecnormalize.pkl is missing"):
        AgentPolicy(folder)
    shutil.copy(shipped / "best_model_vecnormalize.pkl", folder)
    config = json.loads((shipped / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "mop": "agent"}))
    with pytest.raises(ValueError, match="acts with 24 values.*takes 216"):
        AgentPolicy(folder).check(case)
    (folder / "config.json").write_text(json.dumps({**config, "algo": "sac"}))
    with pytest.raises(ValueError, match="holds a ppo policy, config.json says sac"):
        AgentPolicy(folder)
    with pytest.raises(ValueError, match="day: expected a Day"):
        good(case, "reference")
    assert np.array_equal(good(case, day)[0], AgentPolicy(shipped)(case, day)[0])


def test_bc_refuses_another_game_or_another_runs_folder(tmp_path):
    """Behaviour cloning's labels are the day-ahead OPF game's optimum: another game is refused, and so
    is a folder that holds another run (it would be overwritten and mixed), before anything is written."""
    from stackelberg_mop.rl import bc

    labels = Path(__file__).resolve().parents[1] / "benchmarks" / "agents" / "labels" / "ieee33-mop-train.jsonl"
    common = ["--labels", str(labels), "--out", str(tmp_path), "--epochs", "1", "--progress-bar", "false"]
    for flags, message in ((["--mop", "agent"], "--mop"), (["--env-id", "StackelbergMOPHourly-v1"], "--env-id")):
        with pytest.raises(ValueError, match=message):
            bc.main([*common, *flags, "--name", "x"])
    assert not any(tmp_path.iterdir())
    shutil.copytree(Path(__file__).resolve().parents[1] / "benchmarks" / "agents" / "ppo", tmp_path / "ppo")
    before = (tmp_path / "ppo" / "config.json").read_bytes()
    with pytest.raises(ValueError, match="holds a run with other settings"):
        bc.main([*common, "--name", "ppo"])
    assert (tmp_path / "ppo" / "config.json").read_bytes() == before
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match="--out: .*afile is a file"):
        bc.main([*common[:3], str(tmp_path / "afile"), *common[4:], "--name", "y"])


def test_kkt_residuals_of_a_response_with_nan_are_not_exact(case, day):
    import dataclasses

    response = sm.best_response(case, day, case.tariff.buy_price)
    assert max(sm.kkt_residuals(case, day, response).values()) < 1e-6
    broken = dataclasses.replace(response, exchange_power=np.full((len(case.prosumers), 24), np.nan))
    assert np.isnan(sm.kkt_residuals(case, day, broken)["exchange"])
    with pytest.raises(ValueError, match=r"response.prices: expected shape \(5, 24\)"):
        sm.kkt_residuals(case, day, dataclasses.replace(response, prices=np.zeros((5, 23))))
