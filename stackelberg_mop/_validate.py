"""Generic input checks: a bad argument raises `ValueError` naming it. Imports nothing of the package.

Each check returns the value in its working form (a float, an int, an array) or raises
``ValueError("<name>: <what was expected>, got <what came>")``, so that a wrong type, NaN, an
out-of-range number or a non-integer where a count is meant is named where it enters, not discovered
three calls later as an `AttributeError` or a silently truncated value. Booleans are not numbers here
(``True`` is not a count of days). The domain's own checks sit beside what they check:
`cases.check_case` / `cases.as_case`, `data.check_day`, `powerflow.check_market_options`.
"""


from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np


def instance(name: str, value, kind, what: str):
    """`value` if it is a `kind`; else ValueError "<name>: expected <what>, got <type>". (ValueError, not
    TypeError: every bad input to the package is a ValueError, so one `except` serves a caller.)"""
    if not isinstance(value, kind):
        raise ValueError(f"{name}: expected {what}, got {_show(value)}")  # noqa: TRY004
    return value


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def number(name: str, value, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False, unit: str = "", allow_inf: bool = False) -> float:
    """`value` as a finite float within [lo, hi] (open ends with lo_open/hi_open; +inf too with
    allow_inf, e.g. "no time limit"); ValueError naming `name`."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number{f' ({unit})' if unit else ''}, got {_show(value)}")  # noqa: TRY004
    instance(name, value, numbers.Real, f"a number{f' ({unit})' if unit else ''}")
    x = float(value)
    if not (math.isfinite(x) or (allow_inf and x == math.inf)):
        raise ValueError(f"{name}: must be finite, got {x}")
    if lo is not None and (x <= lo if lo_open else x < lo):
        raise ValueError(f"{name}: must be {'>' if lo_open else '>='} {lo:g}{f' {unit}' if unit else ''}, got {x:g}")
    if hi is not None and (x >= hi if hi_open else x > hi):
        raise ValueError(f"{name}: must be {'<' if hi_open else '<='} {hi:g}{f' {unit}' if unit else ''}, got {x:g}")
    return x


def integer(name: str, value, *, lo: int | None = None, hi: int | None = None) -> int:
    """`value` as an int within [lo, hi]; a float is accepted only when it is a whole number."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected an integer, got {_show(value)}")  # noqa: TRY004
    instance(name, value, numbers.Real, "an integer")
    whole = isinstance(value, numbers.Integral) or (math.isfinite(float(value)) and float(value).is_integer())
    if not whole:
        raise ValueError(f"{name}: expected an integer, got {_show(value)}")
    n = int(value)
    if lo is not None and n < lo:
        raise ValueError(f"{name}: must be >= {lo}, got {n}")
    if hi is not None and n > hi:
        raise ValueError(f"{name}: must be <= {hi}, got {n}")
    return n


def choice(name: str, value, choices):
    """`value` if it is one of `choices` (compared by equality, strings by value); else ValueError."""
    options = tuple(choices)
    if not any(value is c or (type(value) is type(c) and value == c) for c in options):
        raise ValueError(f"{name}: must be one of {options}, got {_show(value)}")
    return value


def flag(name: str, value) -> bool:
    """`value` if it is a bool (numpy's included); ValueError otherwise (the string "False" is truthy)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ValueError(f"{name}: expected True or False, got {_show(value)}")
    return bool(value)


def array(name: str, value, unit: str = "", allow_inf: bool = False, finite: bool = True) -> np.ndarray:
    """`value` as a float array of finite numbers (any shape; ±inf too with allow_inf, never NaN);
    strings, None, booleans and ragged lists raise ValueError naming `name`. Shapes are the caller's
    to check; finite=False leaves the values unchecked (for a caller with its own message)."""
    try:
        kind = np.asarray(value).dtype.kind
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        kind = "O"
    if kind not in "iuf":
        raise ValueError(f"{name}: expected numbers{f' ({unit})' if unit else ''}, got {_show(value)}")
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if finite and bad.any():
        where = np.argwhere(bad)[0] if arr.ndim else ()
        raise ValueError(f"{name}: must be {'a number' if allow_inf else 'finite'}{f' ({unit})' if unit else ''}; found {arr[tuple(where)]}"
                         + (f" at index {tuple(int(i) for i in where)}" if arr.ndim else ""))
    return arr


def path(name: str, value, what: str = "a file path"):
    """`value` (a str or `os.PathLike`) as a `pathlib.Path`; ValueError naming `name` for another type, an
    empty path or a NUL byte (which the operating system would refuse later without a name)."""
    instance(name, value, str | Path, what)
    if not str(value).strip() or "\x00" in str(value):
        raise ValueError(f"{name}: expected {what}, got {_show(value)}")
    return Path(value)


def writable_path(name: str, value, what: str = "a file path") -> Path:
    """`path` checked for writing, nothing made yet: ValueError naming `name` when one of the folders
    above it is a file (the operating system would refuse later with "Not a directory")."""
    target = path(name, value, what)
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{name}: {parent} is a file, so {target} cannot be written")
    return target
