"""Iterative pricing algorithms compared with the optimum: the LMP fixed point with peer-to-peer
sharing (`fixed_point`) and welfare-maximising ADMM clearing with Nash bargaining (`admm`)."""

from . import admm, fixed_point

__all__ = ["admm", "fixed_point"]
