"""The prosumers' (followers') exact best response to clearing prices, single and batched.

Prosumer n, given prices λ (¥/MWh), minimises (MODEL.md, "Lower level")

    C_n = Σ_t [ λ_t P_nt + κ_n (P^tr_nt)² + δ (P^ch_t + P^dis_t) + ε (P^ch_t² + P^dis_t²) ] · 1 h
    P_nt = P^fix_nt + P^tr_nt + P^ch_t − P^dis_t − P^PV_nt            (> 0: buys from the DNO)

Prosumers of Song et al.'s (2024) kind (`Prosumers.hourly`: no shiftable load, no battery) instead have an
elastic load d (utility b d − a d²), curtailable renewables c and bid limits on P, hour by hour:

    min λ_t P_t − (b d_t − a d_t²)   s.t.  P_t = h_t + d_t + c_t,  0 <= d_t <= d̄,  0 <= c_t <= R_t,
                                         P_min <= P_t <= P_max                      (h = fixed − PV − wind)

solved exactly by its effective price θ_t = λ_t + μ_t (μ the bid limit's net multiplier): d(θ) =
clip((b − θ)/2a, 0, d̄), c(θ) = R where θ < 0 and 0 where θ > 0, and P(θ) = h + d(θ) + c(θ) is
non-increasing; θ = λ where P(λ) keeps the limits, else the root of P(θ) = the limit crossed, which
lies on the linear piece of d (θ = b − 2a(T − h − c)) or at θ = 0 (c between 0 and R) (`_hourly_response`).

The objective and constraints of the other prosumers separate into two exact sub-problems:
- shiftable load: min Σ λ_t x_t + κ x_t², lo_t <= x_t <= hi_t, Σ x_t = 0. Its solution is
  x_t(ν) = clip(−(λ_t + ν) / 2κ, lo_t, hi_t) with ν the root of the piecewise-linear Σ_t x_t(ν); the
  root is found exactly on the breakpoints, vectorised over prosumers and price vectors;
- battery: a strictly convex QP in (charge, discharge) with the state-of-energy limits written as
  cumulative sums; solved by DAQP (a dual active-set solver: exact, not iterative-approximate).
Both return their multipliers, so the KKT conditions of the full follower problem can be checked
(`kkt_residuals`) in the standard form that the bi-level reformulation also uses (`follower_qp`).
"""

from __future__ import annotations

from dataclasses import dataclass

import daqp
import numpy as np

from .. import _validate
from ..cache import cached
from ..cases import HOURS, Case, check_case
from ..data import Day
from ..data.days import check_day

#: DAQP's default primal tolerance (1e-6) would let E_t sit that far outside its limits on degenerate prices
DAQP_SETTINGS = {"primal_tol": 1e-11, "dual_tol": 1e-11}
#: a schedule with charge and discharge both above this (MW) in one hour is flagged `simultaneous`
SIMULTANEOUS_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class BestResponse:
    """The prosumers' optimal schedules for one price vector (arrays N × 24) or a batch (S × N × 24).

    prices: ¥/MWh each prosumer faced. transfer: shifted load P^tr, MW. charge, discharge: battery
    power, MW (zero for prosumers without one). stored_energy: MWh at the end of each hour (zero
    without a battery). exchange_power: P_n,t, MW, > 0 when the prosumer buys from the DNO.
    cost: (N,) or (S, N) ¥ per day, the minimised objective (ε term included).
    Multipliers (net: > 0 at an upper bound, < 0 at a lower bound): shift_balance ν (¥/MWh) of
    Σ_t P^tr = 0; transfer_bound, charge_bound, discharge_bound (¥/MWh); energy_bound (¥/MWh) of
    the state-of-energy limits E_t (hour 23: the fixed end state).
    status: (N,) or (S, N) "optimal", "solver_failed" or "infeasible" (bid limits no schedule can
    keep); simultaneous: charge and discharge > 0 in the same hour (never optimal for
    λ > −δ(1+η²)/(1−η²); checked, not assumed).
    Song et al.'s (2024) prosumers (zero for the others): elastic d and curtailed c, MW; their net bound
    multipliers elastic_bound, curtail_bound and bid_bound (of P's limits), ¥/MWh.
    """

    prices: np.ndarray
    transfer: np.ndarray
    charge: np.ndarray
    discharge: np.ndarray
    stored_energy: np.ndarray
    exchange_power: np.ndarray
    cost: np.ndarray
    shift_balance: np.ndarray
    transfer_bound: np.ndarray
    charge_bound: np.ndarray
    discharge_bound: np.ndarray
    energy_bound: np.ndarray
    status: np.ndarray
    simultaneous: np.ndarray
    elastic: np.ndarray
    curtailed: np.ndarray
    elastic_bound: np.ndarray
    curtail_bound: np.ndarray
    bid_bound: np.ndarray

    @property
    def ok(self) -> bool:
        """All solves optimal and no simultaneous charge/discharge."""
        return bool(np.all(self.status == "optimal") and not np.any(self.simultaneous))

    @property
    def failure(self) -> str:
        """Why the response is not `ok` ("" when it is): which prosumers' solves failed, or where a
        battery charges and discharges in the same hour (prices so negative that cycling pays)."""
        infeasible = np.argwhere(self.status == "infeasible")
        if infeasible.size:
            return (f"no schedule of prosumer(s) {sorted({int(i[-1]) for i in infeasible})} keeps its bid limits "
                    "(bid_min above fixed load − renewables + elastic load + curtailment, or bid_max below "
                    "fixed load − renewables)")
        bad = np.argwhere(self.status != "optimal")
        if bad.size:
            return f"the battery QP failed for prosumer(s) {sorted({int(i[-1]) for i in bad})}"
        both = np.argwhere(np.atleast_2d(self.simultaneous))
        if both.size:
            return (f"prosumer(s) {sorted({int(i[-1]) for i in both})} charge and discharge in the same hour "
                    "(prices below −δ(1+η²)/(1−η²) make cycling pay; the response model assumes they do not)")
        return ""

    def __getitem__(self, index) -> BestResponse:
        """One element of a batch: ``batch[s]`` is the response to price vector s."""
        return BestResponse(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


# --- input checks -------------------------------------------------------------------------------
def check_prices(case: Case, prices, batched: bool) -> np.ndarray:
    """Prices as a float array (S, N, 24); ValueError naming the problem for NaN/inf/shape/type."""
    check_case(case)
    lam = _validate.array("prices", prices, "¥/MWh", finite=False)
    n = len(case.prosumers)
    want = "(S, 24) or (S, N, 24)" if batched else "(24,) or (N, 24)"
    if not batched:
        lam = lam[None]
    if lam.ndim == 2 and lam.shape[-1] == HOURS:
        lam = np.broadcast_to(lam[:, None, :], (lam.shape[0], n, HOURS))
    if lam.ndim != 3 or lam.shape[1:] != (n, HOURS):
        raise ValueError(f"prices: expected shape {want} with N = {n} prosumers, got {np.shape(prices)}")
    bad = ~np.isfinite(lam)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise ValueError(f"prices: must be finite (¥/MWh); found {lam[tuple(where)]} at hour {where[-1]}"
                         + (f" of price vector {where[0]}" if batched else ""))
    return lam


# --- the shiftable load: exact breakpoint solve ---------------------------------------------------
def _shift_response(lam: np.ndarray, kappa: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Exact minimiser of Σ λ x + κ x², lo <= x <= hi, Σ x = 0, for arrays (S, N, 24).

    Returns x (S, N, 24), ν (S, N) and the net bound multiplier (S, N, 24).
    """
    two_k = 2.0 * kappa[None, :, None]
    # ν at which x_t leaves its upper / lower bound; Σ_t x_t(ν) is linear between sorted breakpoints
    bps = np.sort(np.concatenate([-lam - two_k * hi, -lam - two_k * lo], axis=-1), axis=-1)  # (S,N,48)
    x_at = np.clip(-(lam[..., None, :] + bps[..., :, None]) / two_k[..., None], lo[None, :, None, :],
                   hi[None, :, None, :])
    g = x_at.sum(-1)  # (S,N,48), non-increasing in ν
    k = np.clip((g >= 0).sum(-1) - 1, 0, bps.shape[-1] - 2)  # last breakpoint with g >= 0
    take = lambda a, i: np.take_along_axis(a, i[..., None], -1)[..., 0]
    nu0, nu1, g0, g1 = take(bps, k), take(bps, k + 1), take(g, k), take(g, k + 1)
    slope = np.where(g0 != g1, g1 - g0, 1.0)
    nu = np.where(g0 != g1, nu0 - g0 * (nu1 - nu0) / slope, nu0)
    x = np.clip(-(lam + nu[..., None]) / two_k, lo[None], hi[None])
    # stationarity λ + 2κx + ν + μ = 0 defines the net multiplier; it is zero off the bounds
    mu = np.where((x >= hi[None]) | (x <= lo[None]), -(lam + two_k * x + nu[..., None]), 0.0)
    return x, nu, mu


# --- the battery: DAQP on (charge, discharge) ---------------------------------------------------
@dataclass(frozen=True)
class _BatteryQP:
    """min ½ zᵀHz + fᵀz, z = (charge, discharge) ∈ R^48; rows: cumulative energy change per hour."""

    H: np.ndarray
    A: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    sense: np.ndarray
    eta_c: float
    eta_d: float
    delta: float
    e_init: float


def _battery_qp(case: Case, m: int) -> _BatteryQP:
    b = case.batteries
    eta_c, eta_d = float(b.eta_charge[m]), float(b.eta_discharge[m])
    cum = np.tril(np.ones((HOURS, HOURS)))
    A = np.hstack([eta_c * cum, -cum / eta_d])  # E_t − E_init, MWh
    e0 = float(b.e_init[m])
    rows_up = np.full(HOURS, b.e_max[m] - e0)
    rows_lo = np.full(HOURS, b.e_min[m] - e0)
    rows_up[-1] = rows_lo[-1] = 0.0  # the day ends where it started
    upper = np.concatenate([np.full(HOURS, b.p_charge_max[m]), np.full(HOURS, b.p_discharge_max[m]), rows_up])
    lower = np.concatenate([np.zeros(2 * HOURS), rows_lo])
    sense = np.zeros(upper.size, dtype=np.int32)
    sense[-1] = 5  # equality
    return _BatteryQP(H=2.0 * b.regularisation[m] * np.eye(2 * HOURS), A=A, upper=upper, lower=lower,
                      sense=sense, eta_c=eta_c, eta_d=eta_d, delta=float(b.degradation_cost[m]), e_init=e0)


def _battery_qps(case: Case) -> list[_BatteryQP]:
    """The case's battery QPs, built once and cached on the case (like its feeder and dispatch models)."""
    return cached(case, "battery_qps", lambda: [_battery_qp(case, m) for m in range(len(case.batteries))])


def _solve_battery(qp: _BatteryQP, lam: np.ndarray, fixed: tuple[np.ndarray, np.ndarray] | None = None):
    """Returns (charge, discharge, net bound duals of charge/discharge, net row duals, ok).

    fixed: (charge, discharge) of the first hours, already carried out (receding-horizon re-planning).
    """
    f = np.concatenate([lam + qp.delta, qp.delta - lam])
    upper, lower, sense = qp.upper, qp.lower, qp.sense
    if fixed is not None and fixed[0].size:
        h = fixed[0].size
        upper, lower, sense = upper.copy(), lower.copy(), sense.copy()
        for block, values in ((0, fixed[0]), (HOURS, fixed[1])):
            upper[block:block + h] = lower[block:block + h] = values
            sense[block:block + h] = 5  # equality
    z, _, flag, info = daqp.solve(qp.H, f, qp.A, upper, lower, sense, **DAQP_SETTINGS)
    if flag != 1:
        nan = np.full(HOURS, np.nan)
        return nan, nan, nan, nan, nan, False
    lam_dual = np.asarray(info["lam"])
    return z[:HOURS], z[HOURS:], lam_dual[:HOURS], lam_dual[HOURS:2 * HOURS], lam_dual[2 * HOURS:], True


# --- Song et al.'s (2024) prosumers: elastic load, curtailment, bid limits, hour by hour ---------------------
def exchange_bounds(case: Case, day: Day, bid_limits: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) (N, 24) MW of each prosumer's exchange P: what its schedule can reach,
    [h, h + d̄ + R] (h the net load, R the curtailable renewables), intersected with its bid limits
    unless bid_limits=False (the sharing market, where they bound the exchange after trades); finite."""
    pros = case.prosumers
    h = day.net_load
    reach = h + pros.elastic_max[:, None] + pros.curtailable[:, None] * day.renewables
    if not bid_limits:
        return h, reach
    return np.maximum(pros.bid_min[:, None], h), np.minimum(pros.bid_max[:, None], reach)


def _hourly_response(lam: np.ndarray, a, b, d_max, h, r, lower, upper):
    """Exact response of the hourly prosumers, arrays (S, M, 24) (a, b, d̄ as (M, 1)): (d, c, θ, ok).

    θ is the effective price λ + μ (μ the net multiplier of P's limits). P(θ) = h + d(θ) + c(θ) is
    non-increasing; the limit T = clip(P(λ), lower, upper) is met at θ = λ if P(λ) = T, else at
    θ = 0 if h + d(0) <= T <= h + d(0) + R (curtailing T − h − d(0)), else on d's linear piece,
    θ = b − 2a(T − h − c) with c = 0 above θ = 0 and c = R below it.
    """
    d_of = lambda theta: np.clip((b - theta) / (2 * a), 0.0, d_max)
    p_lam = h + d_of(lam) + np.where(lam < 0, r, 0.0)
    target = np.clip(p_lam, lower, upper)
    d0 = d_of(0.0) + 0 * lam
    at_zero = (h + d0 <= target) & (target <= h + d0 + r)
    c_side = np.where(target > h + d0, r, 0.0)  # below θ = 0 all of R is curtailed, above it none
    theta = np.where(p_lam == target, lam, np.where(at_zero, 0.0, b - 2 * a * (target - h - c_side)))
    d = d_of(theta)
    c = np.where(theta < 0, r, np.where(theta > 0, 0.0, np.clip(target - h - d, 0.0, r)))
    ok = (lower <= upper + 1e-12) & (np.abs(h + d + c - target) <= 1e-9)
    return d, c, theta, ok


# --- public API -------------------------------------------------------------------------------
def _respond(case: Case, day: Day, lam: np.ndarray, committed: BestResponse | None = None,
             hours: int = 0) -> BestResponse:
    """Best response for prices lam (S, N, 24); all outputs carry the batch axis.

    committed, hours: the first `hours` hours of `committed` (an (N, 24) response) are fixed.
    """
    check_day(case, day)
    s, n = lam.shape[0], len(case.prosumers)
    pros = case.prosumers
    hi = pros.shift_fraction[:, None] * day.fixed_load
    lo = -hi
    if hours:
        lo, hi = lo.copy(), hi.copy()
        lo[:, :hours] = hi[:, :hours] = committed.transfer[:, :hours]
    transfer, nu, mu_tr = _shift_response(lam, pros.kappa, lo, hi)

    zeros = np.zeros((s, n, HOURS))
    charge, discharge, energy = zeros.copy(), zeros.copy(), zeros.copy()
    mu_ch, mu_dis, mu_e = zeros.copy(), zeros.copy(), zeros.copy()
    status = np.full((s, n), "optimal", dtype=object)
    for m, qp in enumerate(_battery_qps(case)):
        owner = case.batteries.owner[m]
        for i in range(s):
            fixed = None if not hours else (committed.charge[owner, :hours], committed.discharge[owner, :hours])
            c, d, dc, dd, rows, ok = _solve_battery(qp, lam[i, owner], fixed)
            charge[i, owner], discharge[i, owner] = c, d
            mu_ch[i, owner], mu_dis[i, owner], mu_e[i, owner] = dc, dd, rows
            energy[i, owner] = qp.e_init + np.cumsum(qp.eta_c * c - d / qp.eta_d)
            if not ok:
                status[i, owner] = "solver_failed"
    # solver noise can leave |z| ~ 1e-16 outside [0, max]; clip for clean outputs (residuals are checked)
    charge, discharge = np.maximum(charge, 0.0), np.maximum(discharge, 0.0)

    elastic, curtailed = zeros.copy(), zeros.copy()
    mu_d, mu_c, mu_p = zeros.copy(), zeros.copy(), zeros.copy()
    hourly = np.flatnonzero(pros.hourly)
    if hourly.size:
        lower, upper = (x[hourly] for x in exchange_bounds(case, day))
        if hours:
            lower, upper = lower.copy(), upper.copy()
            lower[:, :hours] = upper[:, :hours] = committed.exchange_power[hourly, :hours]
        col = lambda x: x[hourly, None]
        r = (pros.curtailable[:, None] * day.renewables)[hourly]
        a, d_max = col(pros.utility_quadratic), col(pros.elastic_max)
        d, c, theta, ok = _hourly_response(lam[:, hourly], a, col(pros.utility_linear), d_max,
                                           day.net_load[hourly], r, lower, upper)
        elastic[:, hourly], curtailed[:, hourly] = d, c
        # net multipliers from stationarity: 2a d − b + θ + μ_d = 0, θ + μ_c = 0, θ = λ + μ_P; zero off the bounds
        mu_d[:, hourly] = np.where((d <= 0) | (d >= d_max), -(2 * a * d - col(pros.utility_linear) + theta), 0.0)
        mu_c[:, hourly] = np.where((c <= 0) | (c >= r), -theta, 0.0)
        mu_p[:, hourly] = theta - lam[:, hourly]
        transfer[:, hourly], nu[:, hourly] = 0.0, 0.0
        mu_tr[:, hourly] = -theta  # the shift (fixed at 0) sits in the meter row, whose multiplier is −θ
        status[:, hourly] = np.where(ok.all(-1), "optimal", "infeasible")

    exchange = day.net_load[None] + transfer + charge - discharge + elastic + curtailed
    kappa = pros.kappa[None, :, None]
    eps = np.zeros(n)
    delta = np.zeros(n)
    eps[case.batteries.owner] = case.batteries.regularisation
    delta[case.batteries.owner] = case.batteries.degradation_cost
    a, b = pros.utility_quadratic[None, :, None], pros.utility_linear[None, :, None]
    cost = (lam * exchange + kappa * transfer**2 + delta[None, :, None] * (charge + discharge)
            + eps[None, :, None] * (charge**2 + discharge**2) + a * elastic**2 - b * elastic).sum(-1)
    simultaneous = np.minimum(charge, discharge).max(-1) > SIMULTANEOUS_TOL
    return BestResponse(prices=lam, transfer=transfer, charge=charge, discharge=discharge,
                        stored_energy=energy, exchange_power=exchange, cost=cost, shift_balance=nu,
                        transfer_bound=mu_tr, charge_bound=mu_ch, discharge_bound=mu_dis, energy_bound=mu_e,
                        status=status, simultaneous=simultaneous, elastic=elastic, curtailed=curtailed,
                        elastic_bound=mu_d, curtail_bound=mu_c, bid_bound=mu_p)


def best_response(case: Case, day: Day, prices) -> BestResponse:
    """Each prosumer's exact optimal schedule and cost for one price vector.

    prices: (24,) ¥/MWh, one clearing price per hour for everyone, or (N, 24), one row per prosumer.
    Returns a `BestResponse` with arrays (N, 24) and costs (N,). Raises ValueError for NaN/inf prices
    or a wrong shape.
    """
    return _respond(case, day, check_prices(case, prices, batched=False))[0]


def replan(case: Case, day: Day, prices, committed: BestResponse, hours: int) -> BestResponse:
    """Receding-horizon best response: hours 0..hours−1 are carried out as in `committed` (their shifted
    load, charge and discharge are fixed, so the battery's energy and the remaining shift budget carry
    over) and the prosumers re-optimise the rest of the day against `prices` (24,) or (N, 24) ¥/MWh.

    `hours` = 0 is `best_response`; the result's arrays cover the whole day (N, 24).
    """
    hours = _validate.integer("hours", hours, lo=0, hi=HOURS)
    _validate.instance("committed", committed, BestResponse, "a BestResponse")
    return _respond(case, day, check_prices(case, prices, batched=False), committed, hours)[0]


def best_response_batch(case: Case, day: Day, prices) -> BestResponse:
    """`best_response` for S price vectors at once: prices (S, 24) or (S, N, 24); arrays (S, N, 24)."""
    return _respond(case, day, check_prices(case, prices, batched=True))
