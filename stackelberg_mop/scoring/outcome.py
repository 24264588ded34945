"""What scoring returns: a day's `Outcome`, one hour's `HourOutcome`, and the expectation over HV price
scenarios (`ExpectedOutcome`). Money in ¥, power in MW/Mvar, voltage in p.u."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..market import BestResponse
from ..powerflow import DispatchResult


@dataclass(frozen=True, eq=False)
class Outcome:
    """The score of one price vector on one day. Money in ¥ per day, power in MW/Mvar, voltage in p.u.

    dno_objective: F = ω_1·dno_cost + ω_2·voltage_deviation_cost (the leader's objective, lower is better).
    dno_cost = grid_cost + dg_cost − revenue + line_loss_cost + mop_loss_cost (C_op of MODEL.md, with the
    generation cost of the case's DGs, `cases.Generators`; dg_cost = 0 for a case without any).
    voltage_deviation_cost: c_V Σ_t Σ_i |v_i,t − 1| with v = |V|² (before ω_2).
    prosumer_costs: (N,) each follower's minimised cost; total_cost = dno_cost + Σ prosumer_costs
    (the revenue cancels: what the society pays), welfare = −total_cost.
    exchange_power: (N, 24); grid_power: (24,); mop_p, mop_q: (K, 24) injections at the terminals;
    dg_p, dg_q: (G, 24) the DGs' output.
    line_loss: (24,) MW; mop_loss: (K, 24) MW of converter losses.
    voltages_ac: (B, 24) from the AC power flow; voltages_model: (B, 24) the dispatch model's √v.
    relaxation_gap: (24,) max ℓv − P² − Q² (p.u.²; NaN when no relaxation was solved).
    ac_mismatch: (24,) max_i |V_AC − √v| (NaN when the network was not dispatched by a model).
    violation_rate: share of bus-hours (substation excluded) outside [v_min, v_max] in the AC check.
    price_violation: how far the prices break the day's price rules (`market.price_bounds`), ¥/MWh (0 when kept).
    hourly_objective: (24,) ¥, each hour's share of dno_objective (hours are separable given the
    exchange power; they sum to dno_objective).
    price_gradient: dJ/dλ, ¥ per ¥/MWh, the shape of the prices (`evaluate(..., gradient=True)`, else None);
    gradient_kinks: (24,) bool, the hours where J may not be differentiable (`scoring.gradient`).
    status: "optimal" ("optimal_inaccurate" when the dispatch solver reached only its reduced accuracy), or what failed (``"follower_failed: <why>"``, "infeasible", "solver_error: …",
    "ac_not_converged"); on failure the costs are NaN.
    """

    status: str
    prices: np.ndarray
    dno_objective: float
    dno_cost: float
    grid_cost: float
    revenue: float
    line_loss_cost: float
    mop_loss_cost: float
    voltage_deviation_cost: float
    prosumer_costs: np.ndarray
    exchange_power: np.ndarray
    grid_power: np.ndarray
    mop_p: np.ndarray
    mop_q: np.ndarray
    line_loss: np.ndarray
    mop_loss: np.ndarray
    voltages_ac: np.ndarray
    voltages_model: np.ndarray
    relaxation_gap: np.ndarray
    ac_mismatch: np.ndarray
    violation_rate: float
    price_violation: float
    response: BestResponse
    dispatch: DispatchResult | None = None
    hourly_objective: np.ndarray | None = None
    dg_cost: float = 0.0
    dg_p: np.ndarray | None = None
    dg_q: np.ndarray | None = None
    price_gradient: np.ndarray | None = None
    gradient_kinks: np.ndarray | None = None

    @property
    def total_cost(self) -> float:
        return self.dno_cost + float(self.prosumer_costs.sum())

    @property
    def welfare(self) -> float:
        return -self.total_cost

    @property
    def loss_cost(self) -> float:
        return self.line_loss_cost + self.mop_loss_cost

    def summary(self) -> dict[str, float | str]:
        """The scalar results, e.g. for a table row or an environment's ``info``."""
        return {"status": self.status, "dno_objective": self.dno_objective, "dno_cost": self.dno_cost,
                "grid_cost": self.grid_cost, "dg_cost": self.dg_cost, "revenue": self.revenue, "line_loss_cost": self.line_loss_cost,
                "mop_loss_cost": self.mop_loss_cost, "voltage_deviation_cost": self.voltage_deviation_cost,
                "prosumer_cost": float(self.prosumer_costs.sum()), "welfare": self.welfare,
                "violation_rate": self.violation_rate, "max_relaxation_gap": float(np.nanmax(self.relaxation_gap))
                if np.isfinite(self.relaxation_gap).any() else float("nan"),
                "max_ac_mismatch": float(np.nanmax(self.ac_mismatch)) if np.isfinite(self.ac_mismatch).any()
                else float("nan"), "price_violation": self.price_violation}


@dataclass(frozen=True, eq=False)
class HourOutcome:
    """One hour of a day's score (`evaluate_hour`): what the hourly game needs after each step.

    objective: ¥, the hour's share of the DNO objective (= `Outcome.hourly_objective[hour]` of the
    whole day's `evaluate` to solver tolerance: hours are separable given the exchange power).
    violations: buses (substation excluded) outside [v_min, v_max] in the AC check of that hour.
    voltages_ac: (B,) p.u.; exchange_power: (N,) MW; dispatch: the one-hour `DispatchResult` (None for
    set-points). status as `Outcome.status`; on failure objective is NaN.
    """

    hour: int
    status: str
    objective: float
    violations: int
    voltages_ac: np.ndarray
    exchange_power: np.ndarray
    dispatch: DispatchResult | None = None


@dataclass(frozen=True, eq=False)
class ExpectedOutcome:
    """`evaluate` over weighted HV price scenarios: one `Outcome` per scenario and their expectations.

    The prosumers face the same clearing prices in every scenario (so they respond once); the DNO
    re-dispatches the network for each scenario's HV prices. Expected values are weighted sums.
    """

    outcomes: list
    weight: np.ndarray
    #: ¥/MWh, the prices' breach of the rules of the day they are posted on (its own HV tariff); each
    #: scenario's `Outcome.price_violation` measures against that scenario's sampled tariff instead
    price_violation: float = 0.0

    def expected(self, name: str) -> float:
        """Probability-weighted mean of an `Outcome.summary()` entry, e.g. "dno_objective"."""
        return float(sum(w * o.summary()[name] for w, o in zip(self.weight, self.outcomes)))

    @property
    def status(self) -> str:
        bad = [o.status for o in self.outcomes if o.status != "optimal"]
        return "optimal" if not bad else bad[0]

    @property
    def dno_objective(self) -> float:
        return self.expected("dno_objective")

    @property
    def prosumer_cost(self) -> float:
        return self.expected("prosumer_cost")

    @property
    def welfare(self) -> float:
        return self.expected("welfare")

    @property
    def violation_rate(self) -> float:
        return self.expected("violation_rate")
