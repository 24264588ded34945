"""The exact bi-level optimum and its certificates: the KKT/Big-M single-level model solved by SCIP
(`kkt`, with its Big-M bounds in `bigm`) and an independent Lagrangian lower bound (`lagrangian`)."""

from . import bigm, kkt, lagrangian
from .kkt import KKTResult, Verification

__all__ = ["KKTResult", "Verification", "bigm", "kkt", "lagrangian"]
