"""The README's code runs as written: its API example in the default run, its RL quick start (training
and a 49-day benchmark, minutes) among the slow tests. The numbers it prints are checked here."""

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _block(heading: str) -> str:
    """The first ```python block after `heading` in the README."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", after, re.DOTALL).group(1)


def test_readme_api_example_runs_and_prints_the_tariff_and_the_optimum():
    code = _block("## The Python API in ten lines")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own code, run as a user would
    tariff_objective, optimum_objective, gap = (float(x) for x in out.getvalue().split())
    assert optimum_objective < tariff_objective and 0 <= gap < 0.05


@pytest.mark.slow
def test_readme_quick_start_runs_as_written(tmp_path, monkeypatch):
    code = _block("## RL quick start")
    monkeypatch.chdir(ROOT)  # the shipped agent's path is relative to the repository
    code = code.replace('out="results/mine/rows.csv"', f'out={str(tmp_path / "rows.csv")!r}')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own code, run as a user would
    printed = out.getvalue()
    assert re.search(r"^\s*-?\d+\.\d+", printed, re.MULTILINE)  # the day's normalised regret
    assert "bc-regret" in printed and os.path.exists(tmp_path / "rows.csv")
