"""Reading one case field: a number, an array of numbers or flags, each refused with a `CaseError`
naming the field when it cannot work."""

from __future__ import annotations

import numpy as np

from .. import _validate
from .schema import CaseError


def field_values(label: str, raw, dtype=float, length: int | None = None, allow_inf: bool = False) -> np.ndarray:
    """`raw` as a read-only 1-D array (of `length` if given) of finite numbers (`_validate.array`); with
    dtype int, of whole numbers (bus 6.5 is an error, not bus 6). Strings, booleans and nested lists
    are refused with a `CaseError` naming the field."""
    try:
        value = _validate.array(label, raw, allow_inf=allow_inf)
    except ValueError as err:
        raise CaseError(str(err)) from None
    if value.ndim > 1:
        raise CaseError(f"{label}: expected a flat list of numbers, got shape {value.shape}")
    value = value.reshape(-1)
    if dtype is int:
        if not np.all(value == np.round(value)):
            raise CaseError(f"{label}: expected whole numbers, got {value.tolist()}")
        value = value.astype(int)
    if length is not None and value.shape != (length,):
        raise CaseError(f"{label}: expected {length} values, got {value.size}")
    value.setflags(write=False)
    return value


def field_array(owner, name: str, dtype=float, length: int | None = None, allow_inf: bool = False) -> np.ndarray:
    """The dataclass field `owner.name` replaced by its checked array (`field_values`), which is returned."""
    value = field_values(f"{type(owner).__name__.lower()}.{name}", getattr(owner, name), dtype, length, allow_inf)
    object.__setattr__(owner, name, value)
    return value


def field_number(label: str, value, **limits) -> float:
    """A finite number (`_validate.number`), its error a `CaseError` naming the field."""
    try:
        return _validate.number(label, value, **limits)
    except ValueError as err:
        raise CaseError(str(err)) from None


def field_flags(label: str, raw, length: int | None = None) -> np.ndarray:
    """`raw` as a read-only bool array (of `length` if given) from true/false or 0/1 values; CaseError
    naming the field otherwise."""
    try:
        value = np.asarray(raw)
    except ValueError:  # ragged nesting
        value = np.asarray(raw, dtype=object)
    shape_ok = value.ndim == 1 and value.dtype != object and (length is None or value.shape == (length,))
    if not shape_ok or not (value.dtype == bool or np.isin(value, (0, 1)).all()):
        want = f"{length} values" if length is not None else "values"
        raise CaseError(f"{label}: expected {want} true or false, got {value.tolist()}")
    value = value.astype(bool)
    value.setflags(write=False)
    return value


def require(ok, label: str, what: str, value) -> None:
    if not np.all(ok):
        raise CaseError(f"{label}: {what}, got {np.asarray(value).tolist()}")
