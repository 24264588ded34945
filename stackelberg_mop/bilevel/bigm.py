"""Valid bounds on every follower multiplier: the Big-M values of the KKT reformulation.

A Big-M that is too small silently cuts off the follower's true response (Pineda & Morales 2019), so
every M here is derived, not guessed. Follower n in standard form (`market.follower_qp`):

    min ½xᵀQx + cᵀx + λᵀ(Gx + h)   s.t.  Ex = d (ν),   l <= x <= u (μ_l, μ_u >= 0)
    stationarity:  Qx + c + Gᵀλ + Eᵀν − μ_l + μ_u = 0

The primal x is unique (Q > 0 on P^tr, P^ch, P^dis; E is then fixed by the dynamics), but the
multipliers need not be: where they are not unique any one KKT multiplier will do, so it is enough
to show that *some* KKT multiplier always lies in the box below; restricting the multipliers to the
box then never cuts off the follower's response. Prices are boxed, λ_t ∈ [λ̲_t, λ̄_t].

1. **Shift balance ν₀** (row Σ_t P^tr_t = 0). P^tr_t(ν₀) = clip(−(λ_t + ν₀)/2κ, −hi_t, hi_t) is
   non-increasing in ν₀, ≥ 0 at ν₀ = −max_t λ_t and ≤ 0 at ν₀ = −min_t λ_t, so a root lies in
   ν₀ ∈ [−max_t λ̄_t, −min_t λ̲_t].
2. **Battery energy values w_t** (the dynamics rows; w_t is the marginal value of stored energy in
   hour t). The dual function of the battery problem is
       D(w) = Σ_t φ_t(w_t) + ψ_t(w_t) − (E_max − E_init)·Σ_t (w_{t+1} − w_t)⁺ − (E_init − E_min)·Σ_t (w_t − w_{t+1})⁺,
   with φ_t(w) = min_{0<=c<=c̄} εc² + (δ + λ_t − η_c w)c (concave, non-increasing) and
   ψ_t(w) = min_{0<=e<=ē} εe² + (δ − λ_t + w/η_d)e (concave, non-decreasing). Clip any dual optimum
   w* to [a, b] with
       a = η_d (min_t λ̲_t − δ − 2ε ē),   b = (max_t λ̄_t + δ + 2ε c̄) / η_c.
   Clipping is monotone and non-expansive, so neither total-variation term grows; above b the
   charge is at c̄ whatever w is (φ_t has slope −η_c c̄ < 0) and the discharge is 0 (ψ_t flat), so
   lowering w_t to b raises D; below a symmetrically. The clipped w is dual optimal, hence with the
   unique x a KKT point: w_t ∈ [a, b] is valid.
3. **Bound multipliers μ_l, μ_u.** With λ and ν boxed, stationarity gives the net multiplier
   μ_u − μ_l = −(Qx + c + Gᵀλ + Eᵀν) in an interval (interval arithmetic, x at the bound in question):
       μ_u,i <= max(0, −Q_i u_i − c_i − min(Gᵀλ)_i − min(Eᵀν)_i),
       μ_l,i <= max(0,  Q_i l_i + c_i + max(Gᵀλ)_i + max(Eᵀν)_i).
   E.g. for the shift load μ_u,t <= max λ̄ − λ̲_t − 2κ hi_t; for the charge power μ_u,t <= λ̄ − λ̲ on
   a flat price box. A variable with l = u (the end state E_23) keeps a free net multiplier boxed by
   the same interval.
4. **Slacks**: x_i − l_i <= u_i − l_i and u_i − x_i <= u_i − l_i.
5. **Meter rows of Song et al.'s (2024) prosumers** (`FollowerQP.hourly`: P_t − P^tr_t − d_t − c_t = h_t, its
   multiplier −θ_t with θ_t = λ_t + μ_t the effective price, μ_t the bid limits' net multiplier).
   With d(θ) = clip((b − θ)/2a, 0, d̄) and c(θ) = R (θ < 0), 0 (θ > 0), [0, R] (θ = 0), the meter
   P(θ) = h + d(θ) + c(θ) is constant above θ_hi = max(b, 0) (d = c = 0 there) and below
   θ_lo = min(b − 2a d̄, 0) (d = d̄, c = R). A KKT θ solves P(θ) = T for the limit T met, with
   θ ≥ λ_t if T is the upper limit, θ ≤ λ_t if the lower one, θ = λ_t if neither; a root above
   max(θ_hi, λ_t) can be replaced by max(θ_hi, λ_t), which meets the same T with the same sign of μ,
   and one below min(θ_lo, λ_t) by min(θ_lo, λ_t). So some KKT multiplier has
   θ_t ∈ [min(λ̲_t, b − 2a d̄, 0), max(λ̄_t, b, 0)], i.e. ν_t = −θ_t in the negated box. The shift
   P^tr is fixed at 0 for these prosumers: ν₀ is then any value (the fixed variable's free net
   multiplier, boxed by 3., absorbs it), so the box of 1. is kept. The box is widened by
   METER_MARGIN on each side: at prices on the box's edge a valid KKT point can reach the bound
   that 3. derives from it exactly (curtailing at θ = 0 with the bid floor binding, the floor's
   multiplier μ_l = λ − θ = λ̄ when min(λ̲, b − 2a d̄, 0) = 0), which the verification would read as
   a Big-M that cuts (it flags multipliers within BIGM_TOL of their Big-M).

Every solution is nevertheless checked: the multipliers must stay strictly inside their boxes
(`max_bigm_ratio` in the verification) and the followers are re-solved at λ*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cases import HOURS, Case
from ..market import FollowerQP

#: ¥/MWh added on each side of the meter rows' box (item 5), so that a valid KKT point never sits at it
METER_MARGIN = 1.0


@dataclass(frozen=True, eq=False)
class MultiplierBounds:
    """Boxes for one follower's multipliers (¥/MWh) and the slack Big-Ms (MW or MWh).

    nu_lo, nu_hi: (ne,) box of the equality multipliers ν. mu_l_max, mu_u_max: (nx,) upper bounds of
    the bound multipliers (0 where that bound can never carry a positive multiplier); for fixed
    variables (l = u) net_lo/net_hi box the free net multiplier μ_u − μ_l. slack: (nx,) u − l.
    """

    nu_lo: np.ndarray
    nu_hi: np.ndarray
    mu_l_max: np.ndarray
    mu_u_max: np.ndarray
    net_lo: np.ndarray
    net_hi: np.ndarray
    slack: np.ndarray


def _interval_matvec(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range of Aᵀy for y in the box [lo, hi]: (min, max) per column of A."""
    pos, neg = np.maximum(a, 0.0), np.minimum(a, 0.0)
    return pos.T @ lo + neg.T @ hi, pos.T @ hi + neg.T @ lo


def multiplier_bounds(case: Case, qp: FollowerQP, n: int, price_lo: np.ndarray, price_hi: np.ndarray,
                      scale: float = 1.0) -> MultiplierBounds:
    """The derived boxes of prosumer n's multipliers for prices in [price_lo, price_hi] (each (24,)).

    `scale` multiplies every multiplier bound; it exists only so that tests can show that a too
    small Big-M is caught by the verification (use 1.0).
    """
    price_lo, price_hi = np.asarray(price_lo, float), np.asarray(price_hi, float)
    nu_lo = np.empty(qp.d.size)
    nu_hi = np.empty(qp.d.size)
    nu_lo[0], nu_hi[0] = -price_hi.max(), -price_lo.min()  # shift balance (1.)
    if qp.hourly:  # meter rows (5.)
        pros = case.prosumers
        a, b, d_max = pros.utility_quadratic[n], pros.utility_linear[n], pros.elastic_max[n]
        nu_lo[1:] = -np.maximum(np.maximum(price_hi, b), 0.0) - METER_MARGIN
        nu_hi[1:] = -np.minimum(np.minimum(price_lo, b - 2 * a * d_max), 0.0) + METER_MARGIN
    if qp.has_battery:  # energy values (2.)
        bat, m = case.batteries, case.battery_of[n]
        eps, delta = bat.regularisation[m], bat.degradation_cost[m]
        nu_lo[1:] = bat.eta_discharge[m] * (price_lo.min() - delta - 2 * eps * bat.p_discharge_max[m])
        nu_hi[1:] = (price_hi.max() + delta + 2 * eps * bat.p_charge_max[m]) / bat.eta_charge[m]
    assert nu_lo.size == 1 + (HOURS if qp.has_battery or qp.hourly else 0)
    g_min, g_max = _interval_matvec(qp.G, price_lo, price_hi)
    e_min, e_max = _interval_matvec(qp.E, nu_lo, nu_hi)
    # (3.): net multiplier μ_u − μ_l = −(Qx + c + Gᵀλ + Eᵀν) evaluated at the bound in question
    mu_u_max = np.maximum(0.0, -qp.Q * qp.upper - qp.c - g_min - e_min)
    mu_l_max = np.maximum(0.0, qp.Q * qp.lower + qp.c + g_max + e_max)
    net_lo = -(qp.Q * qp.upper + qp.c + g_max + e_max)
    net_hi = -(qp.Q * qp.lower + qp.c + g_min + e_min)
    return MultiplierBounds(nu_lo=nu_lo, nu_hi=nu_hi, mu_l_max=scale * mu_l_max, mu_u_max=scale * mu_u_max,
                            net_lo=scale * net_lo, net_hi=scale * net_hi, slack=qp.upper - qp.lower)
