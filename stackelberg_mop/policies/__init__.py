"""Pricing policies behind one interface ``policy(case, day) -> (prices, mop)``: the baselines
(`baselines`: tariff, flat, fixed point, ADMM, the shipped and the solved optimum) and saved RL agents
(`agent`)."""

from .baselines import CallablePolicy, Policy

__all__ = ["CallablePolicy", "Policy"]
