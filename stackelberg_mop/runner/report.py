"""The benchmark's report: every policy's rows judged by the one yardstick, as a table and figures.

    table = report("results/benchmark/rows.csv")      # one dict per policy
    print(format_report(table))
    plot_benchmark(rows, "results/benchmark", runs=["results/train/ppo"])

A day is judged when the optimum's row there is scored and proven (`proved`: its solve closed its gap,
or its proven gap J* − bound is at most `CERTIFICATE_SHARE` of J_tariff − J*) and the tariff's row
is scored; a policy's row is judged when it solved and its prices keep the price rules. The headline
is the aggregate normalised regret Σ(J − J*)/Σ(J_tariff − J*) over the judged days
(`yardstick.aggregate_regret`) with its bootstrap 95 % interval over days.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .. import _validate
from ..scoring.yardstick import NO_STAKES, aggregate_regret, bootstrap_interval

#: a day counts as solved when its proven gap J* − LB is at most this share of J_tariff − J* (every
#: normalised regret is then exact to ±5 points), or when it closed its requested gap
CERTIFICATE_SHARE = 0.05
#: ¥/MWh: a row whose prices break the price rules by more is not compared with the optimum
PRICE_TOLERANCE = 1e-6
#: the policies that give J* when `report` is not told: the shipped optimum, and on days it does not
#: hold, a "kkt" solve
YARDSTICKS = ("optimum", "kkt")


#: the columns of a benchmark rows file that hold numbers (empty when the row's solve failed)
NUMERIC = ("dno_objective", "dno_cost", "grid_cost", "revenue", "prosumer_cost", "welfare", "violation_rate",
           "price_violation", "max_relaxation_gap", "decision_time")


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a benchmark CSV ([] if it does not exist), each checked before any is used: the
    columns policy, day and status filled, numeric columns numbers (or empty), prices a JSON list of
    numbers; ValueError names the file, line and column. A directory in its place is named too."""
    path = Path(path)
    if not path.exists():
        return []
    if not path.is_file():
        raise ValueError(f"{path}: is not a file (a benchmark's rows are a CSV file)")
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path}: not a CSV file of benchmark rows ({err})") from None
    for k, row in enumerate(rows, 2):  # line 1 is the header
        _check_row(row, f"{path}:{k}")
    return rows


def checked_rows(rows) -> list[dict]:
    """Benchmark rows as given to `report`, `per_day_markdown` and `plot_benchmark`: a CSV path (read and
    checked by `read_rows`) or a list of row dicts (as `benchmark.run` returns), each checked the same
    way; ValueError naming ``rows[i]`` and the column."""
    if isinstance(rows, str | Path):
        return read_rows(rows)
    _validate.instance("rows", rows, list | tuple, "a CSV path or a list of benchmark rows (dicts)")
    for i, row in enumerate(rows):
        _check_row(_validate.instance(f"rows[{i}]", row, dict, "a benchmark row (a dict)"), f"rows[{i}]")
    return list(rows)


def _check_row(row: dict, where: str) -> None:
    if None in row or any(v is None for v in row.values()):
        raise ValueError(f"{where}: the row does not have the header's columns")
    for key in ("policy", "day", "status"):
        if not row.get(key):
            raise ValueError(f"{where}: {key}: missing")
    for key in NUMERIC:
        value = row.get(key)
        if value not in (None, ""):
            try:
                float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {key}: expected a number, got {value!r:.40}") from None
    if not isinstance(row.get("prices", ""), str | type(None)):
        raise ValueError(f"{where}: prices: expected a JSON list of numbers as text, got {type(row['prices']).__name__}")  # noqa: TRY004
    if solved(row) and not np.isfinite(_num(row, "dno_objective")):
        raise ValueError(f"{where}: dno_objective: a solved row needs a finite objective, got {row['dno_objective']!r}")
    if row.get("prices"):
        try:
            prices = np.asarray(json.loads(row["prices"]), dtype=float)
        except (json.JSONDecodeError, TypeError, ValueError):
            raise ValueError(f"{where}: prices: expected a JSON list of numbers (¥/MWh)") from None
        if prices.shape[-1:] != (24,):
            raise ValueError(f"{where}: prices: expected 24 hours, got shape {prices.shape}")
        if not np.all(np.isfinite(prices)):
            raise ValueError(f"{where}: prices: must be finite ¥/MWh")


def keeps_rules(row: dict) -> bool:
    """Whether a row's prices keep the price rules (to `PRICE_TOLERANCE`); rows without the column do."""
    value = row.get("price_violation")
    return value in (None, "") or not float(value) > PRICE_TOLERANCE


def details(row: dict) -> dict:
    try:
        return json.loads(row.get("details") or "{}")
    except json.JSONDecodeError:
        return {}


def solved(row: dict) -> bool:
    return str(row.get("status", "")).startswith("optimal")


def proved(row: dict, tariff_objective: float = float("nan"), share: float = CERTIFICATE_SHARE) -> bool:
    """Whether an optimum's row carries a proof good enough to judge against: its details' status is
    "optimal", or its bound is within `share` × (J_tariff − J*) of its objective. Rows without details
    (a policy that reports no bound) count as proven."""
    d = details(row)
    if d.get("status", "optimal") == "optimal":
        return True
    try:
        objective, bound = float(row["dno_objective"]), float(d["best_bound"])
    except (KeyError, TypeError, ValueError):
        return False
    return objective - bound <= share * (tariff_objective - objective)


def default_optimum(rows: list[dict]) -> str:
    """The policy named as J*: "optimum" (the shipped table) if it scored any day, else "kkt"."""
    return "optimum" if any(r["policy"] == "optimum" and solved(r) for r in rows) else "kkt"


def _num(row: dict, key: str) -> float:
    return float(row[key]) if row.get(key) not in (None, "") else float("nan")


def _by_policy(rows: list[dict]) -> dict[str, dict[str, dict]]:
    by: dict[str, dict[str, dict]] = {}
    for r in rows:
        by.setdefault(r["policy"], {})[r["day"]] = r
    return by


def yardstick_days(rows: list[dict], optimum: str | None = None, tariff: str = "tariff",
                   share: float = CERTIFICATE_SHARE) -> tuple[dict[str, float], dict[str, float], dict[str, dict]]:
    """(J* by judged day, J_tariff by day, the optimum's rows by day): the days `report` judges."""
    by = _by_policy(rows)
    sources = YARDSTICKS[::-1] if optimum is None else (optimum,)  # later sources win
    base = {d: _num(r, "dno_objective") for d, r in by.get(tariff, {}).items() if solved(r)}
    scored = {d: r for src in sources for d, r in by.get(src, {}).items() if solved(r)}
    best = {d: _num(r, "dno_objective") for d, r in scored.items() if d in base and proved(r, base[d], share)}
    return best, base, scored


def report(rows: list[dict] | str | Path, optimum: str | None = None, tariff: str = "tariff",
           share: float = CERTIFICATE_SHARE) -> list[dict]:
    """Per policy, over the judged days (see the module docstring): the aggregate normalised regret
    Σ_d (J_d − J*_d)/Σ_d (J_tariff,d − J*_d) with its bootstrap 95 % interval (``aggregate_ci_low``,
    ``aggregate_ci_high``), mean regret J − J* (¥/day), the mean of the per-day ratios, mean relative
    gap (J − J*)/|J*|, means of the DNO objective, DNO cost, prosumer cost, welfare, violation rate,
    decision time, and the median decision time. `optimum`: the policy giving J* (default: the
    shipped table's "optimum" rows, "kkt" rows on days it did not score). The optimum's own row also
    gives ``proven_days`` and ``certificate``, the mean of its proven gap over J_tariff − J*. Without
    rows of the optimum and the tariff, regrets are NaN (`benchmark.run` always scores both)."""
    rows = checked_rows(rows)
    chosen = default_optimum(rows) if optimum is None else optimum
    best, base, scored = yardstick_days(rows, optimum, tariff, share)
    certificate = [(_num(r, "dno_objective") - float(details(r).get("best_bound", "nan")))
                   / (base[d] - _num(r, "dno_objective")) for d, r in scored.items() if d in base]
    table = []
    for policy, per_day in _by_policy(rows).items():
        ok = {d: r for d, r in per_day.items() if solved(r)}
        # prices that break the rules (e.g. "admm:raw") are outside the leader's feasible set: no regret
        common = [d for d in ok if d in best and keeps_rules(ok[d])]
        j = np.array([_num(ok[d], "dno_objective") for d in common])
        star = np.array([best[d] for d in common])
        tar = np.array([base[d] for d in common])
        stakes = tar - star
        normal = (j - star)[stakes > NO_STAKES] / stakes[stakes > NO_STAKES]
        low, high = bootstrap_interval(j, star, tar)
        mean = lambda key, ok=ok: float(np.mean([_num(r, key) for r in ok.values()])) if ok else float("nan")
        times = [_num(r, "decision_time") for r in ok.values()]
        table.append({"policy": policy, "days": len(per_day), "failed": len(per_day) - len(ok),
                      "days_vs_optimum": len(common),
                      "aggregate_regret": aggregate_regret(j, star, tar), "aggregate_ci_low": low,
                      "aggregate_ci_high": high,
                      "regret": float((j - star).mean()) if common else float("nan"),
                      "normalised_regret": float(normal.mean()) if normal.size else float("nan"),
                      "relative_gap": float(((j - star) / np.abs(star)).mean()) if common else float("nan"),
                      "dno_objective": mean("dno_objective"), "dno_cost": mean("dno_cost"),
                      "prosumer_cost": mean("prosumer_cost"), "welfare": mean("welfare"),
                      "violation_rate": mean("violation_rate"), "decision_time": mean("decision_time"),
                      "decision_time_median": float(np.nanmedian(times)) if np.isfinite(times).any() else float("nan")})
        if policy == chosen:
            finite = [c for c in certificate if np.isfinite(c)]
            table[-1].update(proven_days=len(best), certificate=float(np.mean(finite)) if finite else float("nan"))
    return table


def format_report(table: list[dict]) -> str:
    """The report as a text table, the headline (aggregate regret and its 95 % interval) first; the
    policy column as wide as the longest name (none is cut)."""
    w = max([len("policy")] + [len(t["policy"]) for t in table]) + 2
    head = (f"{'policy':<{w}}{'days':>5}{'fail':>5}{'vs J*':>6}{'aggr. regret [95% CI]':>24}{'regret ¥':>10}"
            f"{'norm.':>8}{'DNO obj ¥':>11}{'pros. ¥':>10}{'viol.':>7}{'time s':>9}")
    lines, footer = [head], ""
    for t in table:
        interval = (f"{t['aggregate_regret']:.3f} [{t['aggregate_ci_low']:.3f}, {t['aggregate_ci_high']:.3f}]"
                    if np.isfinite(t["aggregate_regret"]) else "– (not judged)")
        lines.append(f"{t['policy']:<{w}}{t['days']:>5}{t['failed']:>5}{t['days_vs_optimum']:>6}{interval:>24}"
                     f"{t['regret']:>10.1f}{t['normalised_regret']:>8.3f}{t['dno_objective']:>11.1f}"
                     f"{t['prosumer_cost']:>10.1f}{t['violation_rate']:>7.3f}{t['decision_time']:>9.3f}")
        if "proven_days" in t:
            footer = (f"{t['policy']}: proven on {t['proven_days']} of {t['days']} days (solve closed its gap, or "
                      f"proven gap <= {CERTIFICATE_SHARE:.0%} of J_tariff - J*); mean proven gap = "
                      + (f"{t['certificate']:.1%}" if np.isfinite(t["certificate"]) else "– (no bound recorded)")
                      + " of J_tariff - J*")
    notes = [("aggr. regret: sum(J - J*) / sum(J_tariff - J*) over the judged days (0 = the optimum, 1 = the "
              "tariff), 95 % bootstrap interval over days; norm.: mean of the per-day ratios")]
    return "\n".join(lines + ([footer] if footer else []) + notes)


def per_day_markdown(rows: list[dict] | str | Path, optimum: str | None = None, tariff: str = "tariff",
                     share: float = CERTIFICATE_SHARE) -> str:
    """The per-day table of RESULTS.md (markdown): for each judged day, J* ¥, its proven gap
    (J* − bound)/|J*|, J_tariff − J* ¥, and per policy other than these two the normalised regret
    (J − J*)/(J_tariff − J*), "fail" for a failed solve and "rules" for prices outside the price rules."""
    rows = checked_rows(rows)
    optimum = default_optimum(rows) if optimum is None else optimum
    by = _by_policy(rows)
    best, base, _ = yardstick_days(rows, optimum, tariff, share)
    others = [p for p in by if p not in (optimum, tariff)]
    lines = [("| day | J* ¥ | proven gap | J_tariff − J* ¥ | " + " | ".join(others) + " |"),
             "|---" * (4 + len(others)) + "|"]
    for d in sorted(d for d in best if d in by.get(optimum, {})):
        j = best[d]
        bound = details(by[optimum][d]).get("best_bound")
        gap = f"{(j - float(bound)) / abs(j):.1e}" if bound is not None else "–"
        cells = []
        for p in others:
            r = by[p].get(d)
            stakes = base[d] - j
            if r is None:
                cells.append("")
            elif not solved(r):
                cells.append("fail")
            elif not keeps_rules(r):
                cells.append("rules")
            else:
                cells.append(f"{(float(r['dno_objective']) - j) / stakes:.2f}" if stakes > NO_STAKES else "–")
        lines.append(f"| {d} | {j:,.1f} | {gap} | {base[d] - j:,.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- figures: one metric per axis -------------------------------------------------------------------
def plot_benchmark(rows: list[dict] | str | Path, out_dir: str | Path, optimum: str | None = None,
                   tariff: str = "tariff", runs: list[str | Path] = (), price_days: int = 3) -> list[Path]:
    """Write the benchmark's figures to `out_dir`; returns their paths.

    aggregate.png: each policy's aggregate normalised regret with its 95 % interval (the headline).
    prices.png: on `price_days` judged days spread over the split, the optimum's prices (black), the
    tariff's (grey) and at most four other policies', within the day's price bounds (shaded).
    learning_curves.png: validation aggregate regret against environment steps for each training run
    folder in `runs` (its evaluations.csv); a run trained without environment steps (behaviour
    cloning) is drawn as the level of its best validation score.
    """
    from matplotlib.figure import Figure  # no pyplot: works without a display

    rows = checked_rows(rows)
    optimum = default_optimum(rows) if optimum is None else optimum
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    table = [t for t in report(rows, optimum, tariff) if t["policy"] != optimum and np.isfinite(t["aggregate_regret"])]
    table.sort(key=lambda t: t["aggregate_regret"])
    if table:
        fig = Figure(figsize=(9, 0.45 * len(table) + 1.5), dpi=90, layout="constrained")
        ax = fig.subplots()
        y = np.arange(len(table))
        values = np.array([t["aggregate_regret"] for t in table])
        err = np.array([[v - t["aggregate_ci_low"], t["aggregate_ci_high"] - v] for v, t in zip(values, table)]).T
        ax.barh(y, values, xerr=err, color="tab:blue", alpha=0.75, capsize=3)
        ax.set_yticks(y, [t["policy"] for t in table], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("aggregate normalised regret Σ(J − J*)/Σ(J_tariff − J*)  (0 = optimum, 1 = tariff)")
        ax.set_title(f"gap to the bi-level optimum, {len(yardstick_days(rows, optimum, tariff)[0])} days, 95 % interval")
        paths.append(out / "aggregate.png")
        fig.savefig(paths[-1])
    paths += _plot_prices(rows, out, optimum, tariff, price_days, table)
    paths += plot_learning_curves(runs, out / "learning_curves.png")
    return paths


def _plot_prices(rows, out: Path, optimum: str, tariff: str, price_days: int, table: list[dict]) -> list[Path]:
    from matplotlib.figure import Figure

    from ..envs.render import legend_outside

    by = _by_policy([r for r in rows if solved(r) and keeps_rules(r)])
    judged = sorted(d for d in yardstick_days(rows, optimum, tariff)[0] if d in by.get(optimum, {}))
    chosen = [judged[i] for i in np.linspace(0, len(judged) - 1, min(price_days, len(judged))).round().astype(int)]
    if not chosen:
        return []
    shown = [optimum, tariff] + [t["policy"] for t in table if t["policy"] != tariff][:4]
    fig = Figure(figsize=(11, 3.2 * len(chosen)), dpi=80, layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(chosen), 1, squeeze=False)[:, 0])
    for ax, d in zip(axes, chosen):
        for policy in shown:
            if d not in by.get(policy, {}):
                continue
            p = np.asarray(json.loads(by[policy][d]["prices"]), dtype=float)
            p = p.mean(axis=0) if p.ndim == 2 else p
            style = ({"color": "k", "lw": 2.5, "label": "optimum λ*"} if policy == optimum else
                     {"color": "0.6", "lw": 1.5, "ls": "--", "label": "tariff"} if policy == tariff else
                     {"lw": 1.2, "label": policy})
            ax.step(np.arange(24), p, where="mid", **style)
        ax.set(title=f"day {d}", ylabel="¥/MWh", xlim=(-0.5, 23.5))
        legend_outside(ax)
    axes[-1].set_xlabel("hour")
    fig.savefig(out / "prices.png")
    return [out / "prices.png"]


def plot_learning_curves(runs, path: Path, labels: list[str] | None = None) -> list[Path]:
    """Validation aggregate regret against environment steps, one line per run folder (its
    evaluations.csv); runs without environment steps (behaviour cloning: an ``epoch`` column) are drawn
    as a horizontal line at their best score. [] when no run has a curve."""
    from matplotlib.figure import Figure

    from ..envs.render import legend_outside

    curves = []
    for k, run in enumerate(runs):
        log = Path(run) / "evaluations.csv"
        rows = list(csv.DictReader(log.open(newline=""))) if log.is_file() else []
        if rows and "val_aggregate_regret" in rows[0]:
            curves.append((labels[k] if labels else Path(run).name, rows))
    if not curves:
        return []
    fig = Figure(figsize=(9, 4.2), dpi=90, layout="constrained")
    ax = fig.subplots()
    for name, rows in curves:
        values = [float(r["val_aggregate_regret"]) for r in rows]
        if "epoch" in rows[0]:
            ax.axhline(min(values), ls=":", lw=1.2, label=f"{name} (cloned, no env steps)", color="0.3")
        else:
            ax.plot([int(r["timesteps"]) for r in rows], values, marker=".", lw=1, label=name)
    ax.set(xlabel="environment steps", ylabel="validation aggregate regret", title="learning curves (42 validation days)")
    ax.set_ylim(bottom=0)
    legend_outside(ax, fontsize=8)
    fig.savefig(path)
    return [path]
