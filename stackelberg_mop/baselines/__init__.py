"""Pricing baselines scored by the one scorer `evaluate`: the exact bi-level optimum (`kkt`)."""

from .kkt import KKTPolicy, KKTResult, Verification, solve

__all__ = ["KKTPolicy", "KKTResult", "Verification", "solve"]
