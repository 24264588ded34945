"""The schema of an optimum table's rows (JSON lines): every field's type, length and range, checked
before a row is used (pydantic, extra keys refused).

A row is either a solved day (`SolvedRow`: the prices, their score and certificate, what made it) or
a failed solve (`FailedRow`: case, day and a status that says why; rewritten by a later ``--retry``).
`check_row(row, where)` returns the row as read or raises ``ValueError("<where>: <field>: <why>")``.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

HOURS = 24
#: statuses of a failed solve's row (`optima._worker`, `optima._error_row`)
FAILED_PREFIXES = ("error", "worker_error")

Real = Annotated[float, Field(allow_inf_nan=True)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    case: str = Field(min_length=1)
    day: str = Field(min_length=1)
    status: str = Field(min_length=1)

    @field_validator("day")
    @classmethod
    def _day_name(cls, v: str) -> str:
        if v != "reference":
            try:
                date.fromisoformat(v)
            except ValueError:
                raise ValueError("a day is 'reference' or a date YYYY-MM-DD") from None
        return v


class FailedRow(_Row):
    """A solve that failed: the status names the error."""

    split: str | None = None


class SolvedRow(_Row):
    """A solved day: λ* (24 prices, ¥/MWh), J* = `evaluate`'s score of them (¥), the proven bound (¥),
    the relative gap, the solve's time (s) and threads, what made the row (package version, case
    fingerprint, day hash) and the MOP set-points (2 × K × 24, MW/Mvar)."""

    split: Literal["reference", "train", "val", "test"] | None = None
    objective: float | None  # ¥, finite (None: the solve found no prices)
    bound: Real | None  # ¥, finite or -inf (no bound proven)
    gap: Real | None
    solve_time: float = Field(ge=0, le=1e7)
    threads: int = Field(ge=1, le=1024)
    time_limit: float | None = Field(default=None, gt=0, le=1e7)
    requested_gap: float | None = Field(default=None, gt=0, lt=1)
    iterations: int | None = Field(default=None, ge=0)
    verified: bool = True
    version: str = Field(min_length=1)
    case_fingerprint: str = Field(min_length=1)
    day_hash: str = Field(min_length=1)
    time_to_gap: dict[str, float | None] | None = None
    runs: int = Field(default=1, ge=1)
    prices: list[float] = Field(min_length=HOURS, max_length=HOURS)
    mop_setpoints: list[list[list[float]]]

    @field_validator("prices")
    @classmethod
    def _finite_prices(cls, v: list[float]) -> list[float]:
        bad = [t for t, x in enumerate(v) if not math.isfinite(x)]
        if bad:
            raise ValueError(f"must be finite ¥/MWh; not at hours {bad}")
        return v

    @field_validator("mop_setpoints")
    @classmethod
    def _setpoint_shape(cls, v: list) -> list:
        if len(v) != 2 or any(len(block) != len(v[0]) for block in v) or any(
                len(hours) != HOURS for block in v for hours in block):
            raise ValueError("expected [P; Q], each K rows of 24 hours (2 × K × 24)")
        if not all(math.isfinite(x) for block in v for hours in block for x in hours):
            raise ValueError("must be finite MW / Mvar")
        return v

    @model_validator(mode="after")
    def _certificate(self) -> SolvedRow:
        if self.status == "optimal" and self.verified:
            for name in ("objective", "bound", "gap"):
                value = getattr(self, name)
                if value is None or not math.isfinite(value):
                    raise ValueError(f"{name}: a verified optimal row needs a finite number, got {value}")
        if self.gap is not None and self.gap < 0:
            raise ValueError(f"gap: must be >= 0, got {self.gap}")
        if self.objective is not None and not math.isfinite(self.objective):
            raise ValueError(f"objective: must be a finite number of ¥ (or null), got {self.objective}")
        if self.bound is not None and (math.isnan(self.bound) or self.bound == math.inf):
            raise ValueError(f"bound: must be finite or -Infinity (nothing proven), got {self.bound}")
        finite = [x is not None and math.isfinite(x) for x in (self.objective, self.bound)]
        if all(finite) and self.bound > self.objective + 1e-6 * max(1.0, abs(self.objective)):
            raise ValueError(f"bound: {self.bound} lies above the objective {self.objective}; a lower bound cannot")
        if self.objective is not None and self.bound is not None and self.gap is not None:
            proven = (max(0.0, (self.objective - self.bound) / max(abs(self.objective), 1e-12))
                      if math.isfinite(self.bound) else math.inf)
            if not (proven == self.gap or abs(self.gap - proven) <= 1e-6 + 1e-3 * proven):
                raise ValueError(f"gap: {self.gap:.3g} is not (objective − bound)/|objective| = {proven:.3g}")
        if (self.status == "optimal" and self.requested_gap is not None and self.gap is not None
                and self.gap > self.requested_gap * (1 + 1e-3)):
            raise ValueError(f"status: 'optimal' with gap {self.gap:.3g} above the requested {self.requested_gap:.3g}")
        return self

    @field_validator("time_to_gap")
    @classmethod
    def _gap_keys(cls, v):
        for key, seconds in (v or {}).items():
            try:
                ok = 0 < float(key) < 1
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"keys must be relative gaps in (0, 1) like '0.001', got {key!r}")
            if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
                raise ValueError(f"seconds must be finite and >= 0, got {seconds}")
        return v


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "row"
    text = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        text = "unknown field (a row holds only the fields of `SolvedRow`)"
    elif first["type"] == "missing":
        text = "missing field"
    got = first.get("input")
    shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:57] + "..."
    return f"{where}: {text}" + ("" if first["type"] in ("missing", "extra_forbidden") else f" (got {shown})")


def check_row(row: Any, where: str) -> dict:
    """`row` if it is a valid table row; else ValueError naming `where` (file:line) and the field."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object (one table row), got {type(row).__name__}")  # noqa: TRY004 - bad input is a ValueError
    status = row.get("status")
    model = FailedRow if isinstance(status, str) and status.startswith(FAILED_PREFIXES) else SolvedRow
    try:
        model.model_validate(row)
    except ValidationError as err:
        raise ValueError(f"{where}: {_describe(err)}") from None
    return row


__all__ = ["FailedRow", "SolvedRow", "check_row"]
