"""The peer-to-peer sharing market's data and answer: its terms (`P2PMarket`, built from a case's `Sharing`
section by `p2p_market`) and the prosumers' equilibrium (`P2PResult`) with its costs. Solved in `p2p`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _validate
from ..cases import Case, check_case
from .follower import check_prices


@dataclass(frozen=True, eq=False)
class P2PMarket:
    """The sharing platform's rules.

    cap: (N, N) MW, symmetric, zero diagonal: the largest |p_nm| (0 = the pair cannot trade).
    trade_cost: γ, ¥/(MW²h), > 0; each side of a trade pays (γ/2) p².
    exchange_limit: (N,) MW bound on |g_n,t| (the bid limit), or None for none; or one-sided and
    asymmetric limits exchange_lower <= g_n,t <= exchange_upper ((N,) MW each, ±inf = none).
    """

    cap: np.ndarray
    trade_cost: float = 10.0
    exchange_limit: np.ndarray | None = None
    exchange_lower: np.ndarray | None = None
    exchange_upper: np.ndarray | None = None

    def __post_init__(self):
        cap = _validate.array("cap", self.cap, "MW", finite=False)
        if cap.ndim != 2 or cap.shape[0] != cap.shape[1]:
            raise ValueError(f"cap: expected a square (N, N) matrix in MW, got shape {cap.shape}")
        if not np.all(np.isfinite(cap)) or np.any(cap < 0) or not np.allclose(cap, cap.T):
            raise ValueError("cap: must be finite, >= 0 and symmetric (MW)")
        np.fill_diagonal(cap, 0.0)
        cap.setflags(write=False)
        object.__setattr__(self, "cap", cap)
        _validate.number("trade_cost", self.trade_cost, lo=0, lo_open=True, unit="¥/(MW²h)")
        if self.exchange_limit is not None:
            lim = _validate.array("exchange_limit", self.exchange_limit, "MW", finite=False).reshape(-1)
            if lim.shape != (cap.shape[0],) or np.any(lim <= 0) or not np.all(np.isfinite(lim)):
                raise ValueError(f"exchange_limit: expected {cap.shape[0]} positive values in MW, got {lim}")
            lim.setflags(write=False)
            object.__setattr__(self, "exchange_limit", lim)
            for name, value in (("exchange_lower", -lim), ("exchange_upper", lim)):
                given = getattr(self, name)  # set already when the market is copied (dataclasses.replace)
                if given is not None and not np.array_equal(np.asarray(given, float), value):
                    raise ValueError("exchange_limit: give it or exchange_lower/exchange_upper, not both")
                object.__setattr__(self, name, value)
        n = cap.shape[0]
        for name, default in (("exchange_lower", -np.inf), ("exchange_upper", np.inf)):
            value = getattr(self, name)
            value = np.full(n, default) if value is None else _validate.array(name, value, "MW", allow_inf=True).reshape(-1)
            if value.shape != (n,):
                raise ValueError(f"{name}: expected {n} values in MW, got shape {value.shape}")
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        if np.any(self.exchange_lower > self.exchange_upper) or np.any(self.exchange_lower == np.inf) or np.any(
                self.exchange_upper == -np.inf):
            raise ValueError(f"exchange_lower: must lie below exchange_upper, got {self.exchange_lower} and "
                             f"{self.exchange_upper}")

    @property
    def size(self) -> int:
        return self.cap.shape[0]

    @property
    def limited(self) -> bool:
        """Whether any exchange limit is finite (the trades then couple with the schedules)."""
        return bool(np.isfinite(self.exchange_lower).any() or np.isfinite(self.exchange_upper).any())

    def limit_constraints(self, n: int, g) -> list:
        """cvxpy constraints on prosumer n's exchange g (24,) after trades: its finite limits."""
        lo, hi = self.exchange_lower[n], self.exchange_upper[n]
        return ([g >= lo] if np.isfinite(lo) else []) + ([g <= hi] if np.isfinite(hi) else [])

    def key(self) -> tuple:
        return (self.cap.tobytes(), float(self.trade_cost), self.exchange_lower.tobytes(),
                self.exchange_upper.tobytes())


def p2p_market(case: Case, cap_mw: float | np.ndarray | None = None, trade_cost: float | None = None,
               exchange_limit_mw: float | np.ndarray | None = None) -> P2PMarket:
    """A sharing platform for `case`: every pair may trade up to `cap_mw` (scalar or (N, N) matrix),
    at γ = `trade_cost` ¥/(MW²h), with |g_n| <= `exchange_limit_mw` if given. Defaults: the case's own
    platform (`case.sharing`: its caps and γ), else 0.2 MW and γ = 10. The prosumers' bid limits (if
    any) always bound their exchange after trades, intersected with `exchange_limit_mw`."""
    n = len(check_case(case).prosumers)
    own, pros = case.sharing, case.prosumers
    if cap_mw is None:
        cap_mw = 0.2 if own is None else np.array(own.cap)
    if trade_cost is None:
        trade_cost = 10.0 if own is None else own.trade_cost
    cap = _validate.array("cap_mw", cap_mw, "MW")
    if cap.shape not in ((), (n, n)):
        raise ValueError(f"cap_mw: expected one value or an ({n}, {n}) matrix in MW, got shape {cap.shape}")
    if cap.ndim == 0:
        cap = np.full((n, n), float(cap))
    limit = None
    if exchange_limit_mw is not None:
        limit = _validate.array("exchange_limit_mw", exchange_limit_mw, "MW")
        if limit.shape not in ((), (n,)):
            raise ValueError(f"exchange_limit_mw: expected one value or {n}, got shape {limit.shape}")
        limit = np.broadcast_to(limit, (n,))
    # the prosumers' own bid limits (±inf: none) always bound their exchange after trades (their meter is free)
    lim = np.full(n, np.inf) if limit is None else limit
    return P2PMarket(cap=cap, trade_cost=trade_cost, exchange_lower=np.maximum(-lim, pros.bid_min),
                     exchange_upper=np.minimum(lim, pros.bid_max))


@dataclass(frozen=True, eq=False)
class P2PResult:
    """Outcome of the sharing market for one day. MW, ¥/MWh, ¥.

    prices: (N, 24) clearing prices faced. exchange_power: (N, 24) g_n, the exchange with the DNO
    (> 0 buys), what the DNO's dispatch sees. consumption: (N, 24) P_n, the own schedule before trades.
    trades: (N, N, 24) p_nm (> 0: n buys from m). sharing_price: (N, N, 24) π_nm = π_mn.
    own_cost: (N,) discomfort + degradation (+ ε). cost: (N,) own cost + payments to the DNO and peers
    + trading cost. joint_cost: the centralised objective (Σ cost; the peer payments cancel).
    status: "optimal", "max_iter" (ADMM stopped at its cap) or a solver failure.
    iterations, primal_residual, dual_residual, rho: the ADMM log (empty for the direct methods).
    """

    method: str
    status: str
    prices: np.ndarray
    exchange_power: np.ndarray
    consumption: np.ndarray
    trades: np.ndarray
    sharing_price: np.ndarray
    own_cost: np.ndarray
    cost: np.ndarray
    joint_cost: float
    solve_time: float
    iterations: int = 0
    primal_residual: list = field(default_factory=list)
    dual_residual: list = field(default_factory=list)
    rho: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "optimal"


def sharing_costs(prices, exchange, trades, sharing_price, own, gamma):
    pay_dno = (prices * exchange).sum(-1)
    pay_peers = (sharing_price * trades).sum((-2, -1))
    trading = 0.5 * gamma * (trades**2).sum((-2, -1))
    cost = own + pay_dno + pay_peers + trading
    return cost, float(own.sum() + pay_dno.sum() + trading.sum())


def check_market(case: Case, prices, market: P2PMarket) -> np.ndarray:
    lam = check_prices(case, prices, batched=False)[0]
    if market.size != len(case.prosumers):
        raise ValueError(f"market: built for {market.size} prosumers, the case has {len(case.prosumers)}")
    return lam
