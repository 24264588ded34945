"""Pricing policies scored by `evaluate`: the LMP fixed point and ADMM market clearing."""

from . import admm, fixed_point

__all__ = ["admm", "fixed_point"]
