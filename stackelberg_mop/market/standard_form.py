"""The follower problem in standard form, and its KKT residuals.

Prosumer n's problem, for prices λ (MODEL.md, "Single level"):

    min ½ xᵀQx + cᵀx + λᵀ(Gx + h)   s.t.  Ex = d  (ν),   l <= x <= u  (μ_l, μ_u >= 0)

with x = (P^tr, P^ch, P^dis, E) (96 values) for a prosumer with a battery, x = P^tr (24) without;
P_n = Gx + h is the exchange power. E rows: Σ_t P^tr_t = 0, then E_t − E_{t−1} − η_c P^ch_t +
P^dis_t/η_d = 0 with E_{−1} = E_init; the end state is the bound l = u = E_init on E_23.
A prosumer of Song et al.'s (2024) kind (`Prosumers.hourly`) has x = (P^tr, d, c, P) (96): the shift fixed
at 0, the elastic load d (Q = 2a, c = −b), the curtailment c and the meter P with its bid limits as
bounds (`follower.exchange_bounds`); E rows: Σ P^tr = 0, then the meter rows P − P^tr − d − c = h
(multiplier −θ, θ the effective price of `follower`); P_n = P (G picks it, h_G = 0).

KKT: Qx + c + Gᵀλ + Eᵀν − μ_l + μ_u = 0, primal feasibility, μ >= 0, μ_l(x − l) = μ_u(u − x) = 0.
Strong duality then gives λᵀP_n = λᵀh − xᵀQx − cᵀx − dᵀν + lᵀμ_l − uᵀμ_u, the identity the bi-level
reformulation uses to remove the bilinear revenue term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate
from ..cases import HOURS, Case, check_case
from ..data import Day
from ..data.days import check_day
from .follower import BestResponse, exchange_bounds


@dataclass(frozen=True, eq=False)
class FollowerQP:
    """Standard form of one prosumer's problem (price-independent part). Units: MW, MWh, ¥."""

    Q: np.ndarray  # (nx,) diagonal of Q, ¥/(MW²h)
    c: np.ndarray  # (nx,) ¥/MWh
    G: np.ndarray  # (24, nx): P_n = G x + h
    h: np.ndarray  # (24,) MW
    E: np.ndarray  # (ne, nx)
    d: np.ndarray  # (ne,)
    lower: np.ndarray  # (nx,)
    upper: np.ndarray  # (nx,)
    has_battery: bool
    hourly: bool = False  # Song et al.'s (2024) kind: x = (P^tr, d, c, P), meter rows

    @property
    def size(self) -> int:
        return self.c.size


def follower_qp(case: Case, day: Day, n: int, bid_limits: bool = True) -> FollowerQP:
    """Standard form of prosumer n's problem on `day`; bid_limits=False leaves the meter P of a
    Song et al. (2024) prosumer without its bid limits (the sharing market puts them on the exchange after trades)."""
    day.check(case)
    pros, bat = case.prosumers, case.batteries
    eye, zero = np.eye(HOURS), np.zeros((HOURS, HOURS))
    hi = pros.shift_fraction[n] * day.fixed_load[n]
    h = day.net_load[n]
    m = case.battery_of[n]
    if pros.hourly[n]:
        lower, upper = (x[n] for x in exchange_bounds(case, day, bid_limits))
        r = pros.curtailable[n] * day.renewables[n]
        z = np.zeros(HOURS)
        return FollowerQP(
            Q=np.concatenate([np.full(HOURS, 2 * pros.kappa[n]), np.full(HOURS, 2 * pros.utility_quadratic[n]), z, z]),
            c=np.concatenate([z, np.full(HOURS, -pros.utility_linear[n]), z, z]),
            G=np.hstack([zero, zero, zero, eye]), h=z.copy(),
            E=np.vstack([np.concatenate([np.ones(HOURS), np.zeros(3 * HOURS)]), np.hstack([-eye, -eye, -eye, eye])]),
            d=np.concatenate([[0.0], h]), lower=np.concatenate([z, z, z, lower]),
            upper=np.concatenate([z, np.full(HOURS, pros.elastic_max[n]), r, upper]), has_battery=False, hourly=True)
    if m < 0:
        return FollowerQP(Q=np.full(HOURS, 2 * pros.kappa[n]), c=np.zeros(HOURS), G=eye.copy(), h=h,
                          E=np.ones((1, HOURS)), d=np.zeros(1), lower=-hi, upper=hi, has_battery=False)
    eps, delta = bat.regularisation[m], bat.degradation_cost[m]
    e_min, e_max, e0 = bat.e_min[m], bat.e_max[m], bat.e_init[m]
    shift = np.eye(HOURS, k=-1)  # picks E_{t-1}
    dyn = np.hstack([zero, -bat.eta_charge[m] * eye, eye / bat.eta_discharge[m], eye - shift])
    E = np.vstack([np.concatenate([np.ones(HOURS), np.zeros(3 * HOURS)]), dyn])
    d = np.zeros(HOURS + 1)
    d[1] = e0
    e_lo, e_hi = np.full(HOURS, e_min), np.full(HOURS, e_max)
    e_lo[-1] = e_hi[-1] = e0
    return FollowerQP(
        Q=np.concatenate([np.full(HOURS, 2 * pros.kappa[n]), np.full(2 * HOURS, 2 * eps), np.zeros(HOURS)]),
        c=np.concatenate([np.zeros(HOURS), np.full(2 * HOURS, delta), np.zeros(HOURS)]),
        G=np.hstack([eye, eye, -eye, zero]), h=h, E=E, d=d,
        lower=np.concatenate([-hi, np.zeros(2 * HOURS), e_lo]),
        upper=np.concatenate([hi, np.full(HOURS, bat.p_charge_max[m]), np.full(HOURS, bat.p_discharge_max[m]),
                              e_hi]),
        has_battery=True)


def standard_solution(case: Case, response: BestResponse, n: int):
    """(x, ν, μ_l, μ_u) of prosumer n in the standard form, from a single (unbatched) `BestResponse`.

    The battery's multipliers come from the eliminated form (rows = cumulative energy): with y the
    row multipliers, ν_t = −Σ_{k>=t} y_k and the E_t bound multiplier is y_t.
    """
    split = lambda net: (np.maximum(-net, 0.0), np.maximum(net, 0.0))
    if case.prosumers.hourly[n]:
        theta = response.prices[n] + response.bid_bound[n]
        x = np.concatenate([response.transfer[n], response.elastic[n], response.curtailed[n], response.exchange_power[n]])
        nu = np.concatenate([np.atleast_1d(response.shift_balance[n]), -theta])
        nets = np.concatenate([response.transfer_bound[n], response.elastic_bound[n], response.curtail_bound[n],
                               response.bid_bound[n]])
        return (x, nu, *split(nets))
    x = [response.transfer[n]]
    nu = [np.atleast_1d(response.shift_balance[n])]
    nets = [response.transfer_bound[n]]
    if case.battery_of[n] >= 0:
        y = response.energy_bound[n]
        x += [response.charge[n], response.discharge[n], response.stored_energy[n]]
        nu.append(-np.cumsum(y[::-1])[::-1])
        nets += [response.charge_bound[n], response.discharge_bound[n], y]
    mu_l, mu_u = split(np.concatenate(nets))
    return np.concatenate(x), np.concatenate(nu), mu_l, mu_u


def qp_kkt_residuals(qp: FollowerQP, prices: np.ndarray, x, nu, mu_l, mu_u) -> dict[str, float]:
    """Largest violation of each KKT condition of `qp` at prices (24,) ¥/MWh.

    stationarity (¥/MWh), equality and bounds (MW or MWh), dual_sign (¥/MWh), complementarity
    (¥/h), and strong_duality: |λᵀP − (λᵀh − xᵀQx − cᵀx − dᵀν + lᵀμ_l − uᵀμ_u)| in ¥.
    For a bound with l = u only the net multiplier μ_u − μ_l matters, so its sign is not checked.
    """
    lam = np.asarray(prices, dtype=float)
    grad = qp.Q * x + qp.c + qp.G.T @ lam + qp.E.T @ nu - mu_l + mu_u
    fixed = qp.lower == qp.upper
    exchange = qp.G @ x + qp.h
    dual_value = (lam @ qp.h - x @ (qp.Q * x) - qp.c @ x - qp.d @ nu + qp.lower @ mu_l - qp.upper @ mu_u)
    return {
        "stationarity": float(np.abs(grad).max()),
        "equality": float(np.abs(qp.E @ x - qp.d).max()),
        "bounds": float(max(np.max(qp.lower - x), np.max(x - qp.upper), 0.0)),
        "dual_sign": float(max(-np.min(np.where(fixed, 0.0, mu_l)), -np.min(np.where(fixed, 0.0, mu_u)), 0.0)),
        "complementarity": float(max(np.abs(np.where(fixed, 0.0, mu_l * (x - qp.lower))).max(),
                                     np.abs(np.where(fixed, 0.0, mu_u * (qp.upper - x))).max())),
        "strong_duality": float(abs(lam @ exchange - dual_value)),
    }


def kkt_residuals(case: Case, day: Day, response: BestResponse) -> dict[str, float]:
    """Largest KKT violation of each kind over all prosumers of a single `BestResponse`.

    A response is exact when every value is below 1e-6 (units as in `qp_kkt_residuals`); the cost
    and exchange power reported by the response are also checked against the standard form.
    """
    check_case(case)
    check_day(case, day)
    exchange = getattr(response, "exchange_power", None)
    if exchange is None:
        raise ValueError(f"response: expected a BestResponse, got {type(response).__name__}")
    if np.ndim(exchange) != 2:
        raise ValueError(f"response: expected one day's BestResponse (exchange power N × 24), got arrays of "
                         f"shape {np.shape(exchange)} (a batch from best_response_batch: check one price "
                         "vector at a time with best_response)")
    if np.shape(exchange) != (len(case.prosumers), 24):
        raise ValueError(f"response: holds {np.shape(exchange)[0]} prosumers, case {case.name!r} has "
                         f"{len(case.prosumers)} (a response of another case)")
    n_pros = len(case.prosumers)
    for name in ("prices", "exchange_power", "transfer", "charge", "discharge", "stored_energy", "elastic",
                 "curtailed", "transfer_bound", "charge_bound", "discharge_bound", "energy_bound", "elastic_bound",
                 "curtail_bound", "bid_bound", "cost", "shift_balance"):
        # NaN passes here and shows in the residuals (a NaN residual is not an exact response)
        value = _validate.array(f"response.{name}", getattr(response, name, None), finite=False)
        want = (n_pros,) if name in ("cost", "shift_balance") else (n_pros, HOURS)
        if value.shape != want:
            raise ValueError(f"response.{name}: expected shape {want}, got {value.shape}")
    found: dict[str, list[float]] = {}
    for n in range(len(case.prosumers)):
        qp = follower_qp(case, day, n)
        x, nu, mu_l, mu_u = standard_solution(case, response, n)
        res = qp_kkt_residuals(qp, response.prices[n], x, nu, mu_l, mu_u)
        exchange = qp.G @ x + qp.h
        res["exchange"] = float(np.abs(exchange - response.exchange_power[n]).max())
        cost = 0.5 * x @ (qp.Q * x) + qp.c @ x + response.prices[n] @ exchange
        res["cost"] = float(abs(cost - response.cost[n]))
        for key, value in res.items():
            found.setdefault(key, []).append(value)
    return {key: float(np.max(values)) for key, values in found.items()}  # NaN stays NaN
