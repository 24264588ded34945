"""Pricing baselines scored by the one scorer `evaluate`: the exact bi-level optimum (`kkt`), the LMP
fixed point (`fixed_point`), ADMM market clearing with Nash bargaining (`admm`), and simple policies
(`policies`: tariff pass-through, flat price) behind one interface."""

from . import admm, fixed_point, kkt, policies
from .kkt import KKTPolicy, KKTResult, Verification

__all__ = ["KKTPolicy", "KKTResult", "Verification", "admm", "fixed_point", "kkt", "policies"]
