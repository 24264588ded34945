"""The shipped bi-level optimum table: every row re-scores to its J* through `evaluate`, keeps the price
rules and carries its certificate; the paper's qualitative claims on the reference day; stale or
missing rows are refused with the command that computes them; `optima.compute` resumes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stackelberg_mop as sm
from stackelberg_mop.data.optimum_table import OptimumTable, day_hash, read_table, table_path
from stackelberg_mop.market import price_bounds
from stackelberg_mop.runner import optima


@pytest.fixture(scope="module")
def table(case):
    return OptimumTable(case)


def _day(case, name):
    if name == "reference":
        return sm.reference_day(case)
    return next(d for split in ("test", "val") for d in sm.days(case, split) if d.name == name)


def test_the_table_covers_the_benchmark_days_and_is_small(case, table):
    """The reference day, every test day (the benchmark's yardstick) and every validation day (model
    selection) are in the table, and nothing else; it stays a few hundred kB."""
    needed = {"reference"} | {d.name for split in ("test", "val") for d in sm.days(case, split)}
    assert len(needed) == 1 + 49 + 42
    missing = sorted(needed - set(table.rows))
    assert not missing, f"no optimum for {missing}: run `stackelberg-mop optima --split test` (or val)"
    assert set(table.rows) == needed
    assert table_path(case.name).stat().st_size < 500_000


def test_every_row_is_certified(case, table):
    """Every row was verified for this case's data; its gap is its certificate: (J* − bound)/J*, and
    "optimal" means the requested 1e-4 was proven (a row that stopped at its time limit says so)."""
    for name, row in table.rows.items():
        assert row["case_fingerprint"] == case.fingerprint and row["verified"], name
        assert row["status"] in ("optimal", "time_limit"), name
        assert row["bound"] <= row["objective"] and len(row["prices"]) == 24, name
        assert row["gap"] == pytest.approx((row["objective"] - row["bound"]) / abs(row["objective"]), rel=1e-9)
        assert (row["status"] == "optimal") == (row["gap"] <= row["requested_gap"]), name
        assert row["requested_gap"] <= 1e-4, name


def test_shipped_prices_rescore_to_their_optimum(case, table):
    """A sample of days re-scored through `evaluate`: J* must come back to 1e-6 (else the table is stale)."""
    names = sorted(table.rows)
    sample = ["reference"] + [n for n in names if n != "reference"][::13]
    for name in sample:
        day = _day(case, name)
        opt = table.get(day)
        out = sm.evaluate(case, day, opt.prices)
        assert out.status == "optimal"
        assert out.dno_objective == pytest.approx(opt.objective, rel=1e-6, abs=1e-6), name
        assert price_bounds(case, day).violation(opt.prices) <= 1e-6, name
        # the stored MOP set-points are admissible and score the same day on the AC power flow
        fixed = sm.evaluate(case, day, opt.prices, mop=np.asarray(opt.mop_setpoints))
        assert fixed.status == "optimal" and fixed.dno_objective >= opt.bound - 1e-6 * abs(opt.bound)


def test_optimal_prices_follow_the_papers_figure_6(case, table):
    """Lou et al. (2025) §5.2 (Fig. 6) on the reference day at λ*: at night the price is capped by time of use,
    through the PV hours it sits at the floor, at 18–20 h at the maximum, and at 22–23 h it is the
    time-of-use price; the full strategy (scenario 3) keeps voltages within [0.96, 1.04] p.u. with a
    relaxation gap below 1e-6."""
    day = sm.reference_day(case)
    lam = table.get(day).prices
    bounds = price_bounds(case, day)
    night = np.r_[0:7, 23]
    assert np.all(lam[night] <= bounds.upper[night] + 1e-9)
    # night: at the TOU cap (450) in most hours; the batteries make one or two of them cheap (docs)
    assert np.sum(np.isclose(lam[night], bounds.upper[night], atol=1e-6)) >= 5
    np.testing.assert_allclose(lam[11:17], bounds.lower[11:17], atol=1.0)  # PV hours: the floor
    np.testing.assert_allclose(lam[18:21], case.price_rules.price_max, atol=1.0)  # evening peak: the maximum
    np.testing.assert_allclose(lam[22:24], day.buy_price[22:24], atol=1e-6)  # late evening: the TOU price
    out = sm.evaluate(case, day, lam)
    others = np.arange(case.buses.size) != case.bus_position(case.slack_bus)
    v = out.voltages_ac[others]
    assert v.min() >= 0.96 and v.max() <= 1.04 and out.violation_rate == 0
    assert np.nanmax(out.relaxation_gap) <= 1e-6


def test_missing_or_stale_rows_are_refused_with_the_command(case, day, tmp_path):
    path = tmp_path / "t.jsonl"
    row = dict(OptimumTable(case).rows["reference"])
    path.write_text(json.dumps(row) + "\n")
    assert OptimumTable(case, path).get(day).objective == row["objective"]
    test_day = sm.days(case, "test")[0]
    with pytest.raises(sm.OptimumError, match=rf"stackelberg-mop optima --case ieee33-mop --split test --out {path}"):
        sm.optimum(case, test_day, path)
    other = case.replace(objective=dataclasses.replace(case.objective, loss_cost=400.0))
    with pytest.raises(sm.OptimumError, match="other case data"):
        sm.optimum(other, day, path)
    sampled = dataclasses.replace(day, buy_price=day.buy_price * 1.01)
    with pytest.raises(sm.OptimumError, match="other day data"):
        sm.optimum(case, sampled, path)
    path.write_text(json.dumps(row) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"t\.jsonl:2"):
        read_table(path)


def test_compute_writes_rows_as_they_come_and_resumes(case, tmp_path, monkeypatch):
    """The bookkeeping of `optima.compute` (the solver replaced by a stub that records its calls):
    one row per day appended, a rerun skips finished days (not those whose certificate failed its
    verification), retry re-solves the non-optimal ones."""
    calls = []

    def fake(case_, day, time_limit, gap, threads=None):
        calls.append(day.name)
        status = "time_limit" if day.name == calls[0] and len(calls) == 1 else "optimal"
        return {"case": case_.name, "day": day.name, "status": status, "objective": 1.0, "bound": 1.0, "gap": 0.0,
                "solve_time": 0.1, "threads": 1, "case_fingerprint": case_.fingerprint, "day_hash": day_hash(day),
                "prices": [500.0] * 24, "verified": len(calls) != 2, "version": sm.__version__,
                "mop_setpoints": [[[0.0] * 24] * 4] * 2}

    monkeypatch.setattr(optima, "solve_row", fake)
    out = tmp_path / "opt.jsonl"
    rows = optima.compute("ieee33-mop", "test", out=out, limit=3, backend="serial", progress=False)
    assert len(rows) == 3 and len(out.read_text().splitlines()) == 3 and len(calls) == 3
    optima.compute("ieee33-mop", "test", out=out, limit=3, backend="serial", progress=False)
    assert calls[3:] == [calls[1]]  # only the day whose verification failed is solved again
    rows = optima.compute("ieee33-mop", "test", out=out, limit=3, backend="serial", progress=False, retry=True)
    assert calls[4:] == [calls[0]] and all(r["status"] == "optimal" for r in rows.values())
    with pytest.raises(ValueError, match="split"):
        optima.compute("ieee33-mop", "winter", out=out, backend="serial")
    # a run killed while writing leaves a line cut short: it is dropped and that day solved again
    cut = tmp_path / "cut.jsonl"
    lines = out.read_text().splitlines(keepends=True)[:3]
    cut.write_text("".join(lines[:2]) + lines[2][:40])
    assert len(read_table(cut)) == 2
    rows = optima.compute("ieee33-mop", "test", out=cut, limit=3, backend="serial", progress=False)
    # solved again: the day whose line was cut, and the unverified day (its first row is in the copy)
    assert len(rows) == 3 and sorted(calls[5:]) == sorted([calls[2], calls[1]]) and len(cut.read_text().splitlines()) == 4


def test_day_ahead_info_carries_the_regret(case, table):
    env = sm.StackelbergMOPEnv(case=case, split="reference")
    env.reset(options={"day": 0})
    _, _, _, _, info = env.step(np.zeros(24, dtype=np.float32))
    opt = table.get(sm.reference_day(case))
    assert info["optimum_objective"] == opt.objective
    assert info["regret"] == pytest.approx(info["dno_objective"] - opt.objective)
    assert info["dno_objective"] >= opt.bound - 1e-6 * abs(opt.bound)  # nothing beats the proven bound
    stakes = info["tariff_objective"] - opt.objective
    assert info["normalised_regret"] == pytest.approx((info["dno_objective"] - opt.objective) / stakes)
    assert info["optimum_bound"] == opt.bound
    off = sm.StackelbergMOPEnv(case=case, split="reference", mop="off")
    off.reset(options={"day": 0})
    other = off.step(np.zeros(24, dtype=np.float32))[4]  # another game: no J*, the tariff's J is there
    assert "regret" not in other and "optimum_objective" not in other
    assert other["tariff_objective"] == pytest.approx(other["reward_baseline"])


def test_the_training_labels_rescore_to_their_objective(case):
    """The behaviour-cloning labels (benchmarks/agents/labels): a sample of rows re-scored through
    `evaluate` gives each row's objective to 1e-6, within the price rules; each used row was verified
    and its bound is below its objective."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "agents" / "labels" / "ieee33-mop-train.jsonl"
    labels = OptimumTable(case, path)
    train = {d.name: d for d in sm.days(case, "train")}
    assert set(labels.rows) == set(train)
    for name in sorted(labels.rows)[::60]:
        row = labels.rows[name]
        if not row["verified"]:
            continue
        opt = labels.get(train[name])
        out = sm.evaluate(case, train[name], opt.prices)
        assert out.status == "optimal" and out.dno_objective == pytest.approx(opt.objective, rel=1e-6, abs=1e-6)
        assert price_bounds(case, train[name]).violation(opt.prices) <= 1e-6
        assert not opt.bound > opt.objective


def _run_row(day, objective, bound, prices, solve_time=1.0, fingerprint="f", requested=1e-4, **extra):
    return {"case": "c", "day": day, "status": "optimal" if (objective - bound) / objective <= requested else "time_limit",
            "objective": objective, "bound": bound, "gap": (objective - bound) / objective, "solve_time": solve_time,
            "requested_gap": requested, "verified": True, "case_fingerprint": fingerprint, "day_hash": "h",
            "threads": 1, "version": "0.1.0", "mop_setpoints": [[[0.0] * 24] * 4] * 2,
            "time_to_gap": {"0.001": solve_time / 2, "0.0001": solve_time if (objective - bound) / objective <= 1e-4 else None},
            "prices": [float(prices)] * 24, **extra}


@settings(max_examples=40, deadline=None)
@given(j=st.floats(1e3, 3e4), runs=st.lists(st.tuples(st.floats(0, 2e-3), st.floats(0, 2e-3)), min_size=1, max_size=4),
       seed=st.integers(0, 2**16))
def test_a_days_runs_combine_into_their_best_certificate(j, runs, seed, tmp_path_factory):
    """Runs of one day (each: a verified score J(1+u) above the true J*, a proven bound J(1−v) below
    it), in any order, read back as one certificate: the lowest score with its own prices, the highest
    bound, a gap no larger than any run's and "optimal" exactly when it is within the requested gap."""
    rows = [_run_row("2016-01-04", j * (1 + u), j * (1 - v), prices=400 + k, solve_time=10.0 + k) for k, (u, v) in enumerate(runs)]
    order = np.random.default_rng(seed).permutation(len(rows))
    path = tmp_path_factory.mktemp("runs") / "t.jsonl"
    path.write_text("".join(json.dumps(rows[k]) + "\n" for k in order))
    got = read_table(path)["2016-01-04"]
    best = min(reversed([rows[k] for k in order]), key=lambda r: r["objective"])  # a tie: the later run
    assert got["objective"] == best["objective"] and got["prices"] == best["prices"]
    assert got["solve_time"] == best["solve_time"]
    assert got["bound"] == max(r["bound"] for r in rows)
    assert got["gap"] == pytest.approx((got["objective"] - got["bound"]) / got["objective"], rel=1e-12, abs=1e-15)
    assert got["gap"] <= min(r["gap"] for r in rows) + 1e-15
    assert (got["status"] == "optimal") == (got["gap"] <= 1e-4)
    assert got.get("runs", 1) == len(rows)
    assert got["time_to_gap"]["0.001"] == min(r["time_to_gap"]["0.001"] for r in rows)


def test_combining_refuses_contradicting_runs_and_drops_stale_ones(tmp_path):
    path = tmp_path / "t.jsonl"
    stale = _run_row("2016-01-04", 90.0, 89.99, prices=1, fingerprint="old")  # other case data: superseded
    unverified = dict(_run_row("2016-01-04", 95.0, 94.0, prices=2), verified=False)  # no certificate at all
    good = [_run_row("2016-01-04", 100.0, 99.0, prices=3), _run_row("2016-01-04", 100.5, 99.995, prices=4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in (stale, unverified, *good)))
    got = read_table(path)["2016-01-04"]
    assert (got["objective"], got["bound"], got["prices"][0], got["runs"]) == (100.0, 99.995, 3, 2)
    assert got["status"] == "optimal" and got["gap"] == pytest.approx(5e-5)
    # a later run whose verification failed hides nothing; with no verified run the last row stands
    path.write_text("".join(json.dumps(r) + "\n" for r in (good[0], unverified)))
    assert read_table(path)["2016-01-04"] == good[0]
    path.write_text(json.dumps(unverified) + "\n" + json.dumps(dict(unverified, objective=None)) + "\n")
    assert read_table(path)["2016-01-04"]["objective"] is None
    # a bound above another run's verified score: one of them is wrong, and the table says which day
    path.write_text("".join(json.dumps(r) + "\n" for r in (good[0], _run_row("2016-01-04", 101.0, 100.2, prices=5))))
    with pytest.raises(ValueError, match="day '2016-01-04'.*bound 100.2"):
        read_table(path)


def test_merge_folds_other_runs_into_the_table(tmp_path):
    """`stackelberg-mop optima --merge B --out A`: one row per day, each day's best certificate, days in
    A's order then B's new ones; tables made for other data are refused and A is left as it was."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps(_run_row(d, 100.0, 99.0, prices=1)) + "\n" for d in ("2016-01-05", "2016-01-06")))
    b.write_text(json.dumps(_run_row("2016-01-06", 99.5, 99.499, prices=2)) + "\n" + json.dumps(_run_row("2016-01-07", 50.0, 49.0, prices=3)) + "\n")
    optima.merge(a, b)
    lines = [json.loads(line) for line in a.read_text().splitlines()]
    assert [r["day"] for r in lines] == ["2016-01-05", "2016-01-06", "2016-01-07"]
    assert (lines[1]["objective"], lines[1]["bound"], lines[1]["status"]) == (99.5, 99.499, "optimal")
    assert lines[0] == _run_row("2016-01-05", 100.0, 99.0, prices=1)  # a day with one run is copied as it was
    before = a.read_text()
    c = tmp_path / "c.jsonl"
    c.write_text(json.dumps(_run_row("2016-01-05", 99.0, 98.0, prices=4, fingerprint="other")) + "\n")
    with pytest.raises(ValueError, match=r"day '2016-01-05' in .*c\.jsonl was made for other case or day data"):
        optima.merge(a, c)
    with pytest.raises(ValueError, match="no table"):
        optima.merge(a, tmp_path / "missing.jsonl")
    assert a.read_text() == before


def test_merge_refuses_rows_of_another_case_or_malformed_ones_before_writing(tmp_path, case):
    """`stackelberg-mop optima --merge`: a source row of another case, of a day the case does not
    have, of other day data or failing the row schema is refused by name; the output table is then
    byte for byte what it was. A --out that is a directory is named."""
    from stackelberg_mop import cli

    shipped = [json.loads(line) for line in table_path(case.name).read_text().splitlines()[:3]]
    out = tmp_path / "table.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in shipped[:2]))
    before = out.read_bytes()
    bad = {"foreign": dict(shipped[2], case_fingerprint="0000000000000000"),
           "no such day": dict(shipped[2], day="2016-13-45"),
           "other data": dict(shipped[2], day_hash="ffffffffffffffff"),
           "schema": {"day": shipped[2]["day"], "hello": 1}}
    for why, row in bad.items():
        source = tmp_path / f"{why}.jsonl"
        source.write_text(json.dumps(row) + "\n")
        with pytest.raises(SystemExit) as exit_:
            cli.main(["optima", "--merge", str(source), "--out", str(out)])
        assert exit_.value.code == 2, why
        assert out.read_bytes() == before, why
    with pytest.raises(SystemExit):
        cli.main(["optima", "--merge", str(out), "--out", str(tmp_path)])
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(shipped[2]) + "\n")
    cli.main(["optima", "--merge", str(good), "--out", str(out)])
    assert [json.loads(line)["day"] for line in out.read_text().splitlines()] == [r["day"] for r in shipped]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_table_rows_round_trip_and_any_corrupted_field_is_named(data, tmp_path_factory, case):
    """A shipped row written and read back is the same row; one field corrupted at random (wrong
    type, NaN, a list one short, removed, an unknown key) gives a ValueError naming the file, the
    line and that field — never another exception, never an accepted row."""
    rows = [json.loads(line) for line in table_path(case.name).read_text().splitlines()]
    row = data.draw(st.sampled_from(rows))
    folder = tmp_path_factory.mktemp("rows")
    path = folder / "t.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert read_table(path)[row["day"]] == row
    field = data.draw(st.sampled_from(["prices", "objective", "bound", "gap", "solve_time", "threads", "version",
                                       "case_fingerprint", "day_hash", "mop_setpoints", "verified", "day", "status"]))
    how = data.draw(st.sampled_from(["text", "nan", "short", "drop", "extra", "out of range"]))
    bad = dict(row)
    value = bad[field]
    if how == "text":
        bad[field] = 12345 if isinstance(value, str) else "abc"
    elif how == "nan":
        bad[field] = [float("nan")] * 24 if field == "prices" else float("nan")
    elif how == "short":
        bad[field] = value[:-1] if isinstance(value, list) else [value]
    elif how == "drop":
        del bad[field]
    elif how == "extra":
        bad[field + "_x"] = value
    else:  # out of range: a negative number, an empty name
        bad[field] = "" if isinstance(value, str) else -1 if not isinstance(value, list | bool) else "-1"
    if how == "nan" and field in ("objective", "bound", "gap") and row["status"] != "optimal":
        return  # an unproven row may carry a NaN score; nothing to detect
    if how == "drop" and field == "verified":
        return  # optional: rows older than the verification flag count as verified
    if how == "out of range" and field in ("objective", "bound"):
        return  # any real number is a DNO objective
    path.write_text(json.dumps(bad) + "\n")  # with its newline: a bad row, not a line torn by a kill
    with pytest.raises(ValueError, match=rf"t\.jsonl:1: .*{field}"):
        read_table(path)
