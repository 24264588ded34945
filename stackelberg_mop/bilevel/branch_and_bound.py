"""Branching on the prices: the Lagrangian bound (`lagrangian`) on boxes of prices that cover the whole
price box, split until the smallest bound over the leaves is within a gap of the incumbent. This closes
the duality gap that the Lagrangian bound alone leaves (its price copies keep disagreeing)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import _validate
from ..cases import Case
from ..data import Day
from ..market import project_prices
from ..powerflow import check_market_options
from ..scoring import evaluate
from . import kkt
from .lagrangian import lagrangian_bound


@dataclass
class BranchAndBound:
    """A proven bound from Lagrangian bounds on boxes of prices that cover the whole price box.

    bound: the smallest bound over the leaves (¥, a lower bound on the bi-level optimum over the
    whole box); objective: the incumbent the gap is measured against; gap = (objective − bound) /
    |objective|; status: "optimal" (gap reached), "time_limit", "node_limit" or "failed: …";
    nodes: Lagrangian runs (the root included); leaves: (bound, price_lower, price_upper) of every
    leaf; history: (seconds, bound, objective) after the root and each branching; prices: the
    incumbent's prices (the given ones, or better ones found among the nodes' price copies, scored
    by `evaluate`); states: each leaf's multipliers (β, π, price copies, prox), so that `resume`
    can go on where the run stopped.
    """

    bound: float
    objective: float
    gap: float
    status: str
    nodes: int
    solve_time: float
    leaves: list
    history: list
    prices: np.ndarray | None = None
    states: list = field(default_factory=list, repr=False)


def _solve_node(case, day, prices, lo, hi, start, prox, evaluations, target, options):
    """One node (in a worker process): the Lagrangian bound on the box [lo, hi]."""
    lb = lagrangian_bound(case, day, prices=np.clip(prices, lo, hi), price_lower=lo, price_upper=hi,
                          time_limit=np.inf, max_evaluations=evaluations, start=start, target=target,
                          **({} if prox is None else {"prox": prox}), **options)
    return lb.bound, (lb.beta, lb.pi, lb.prices, lb.prox), lb.status


def _candidates(case, day, copies, lo, hi, mop, voltage_limits):
    """The nodes' price copies as candidate incumbents: their mean and each copy, projected onto the
    price rules within [lo, hi], scored by `evaluate`. Returns [(score, prices)]."""
    out, seen = [], set()
    for c in [copies.mean(axis=0), *copies]:
        try:
            p = project_prices(case, day, np.clip(c, lo, hi), lo, hi)
        except ValueError:  # the box and the mean cap admit no prices
            return out
        key = tuple(np.round(p, 6))
        if key not in seen:
            seen.add(key)
            out.append((kkt.scored_objective(evaluate(case, day, p, mop=mop, voltage_limits=voltage_limits),
                                             voltage_limits), p))
    return out


def branch_and_bound(case: Case, day: Day, prices: np.ndarray, objective: float, gap: float = 1e-3,
                     time_limit: float = 3600.0, root_evaluations: int = 30, node_evaluations: int = 14,
                     max_nodes: int = 200, min_width: float = 25.0, workers: int | None = None,
                     start: tuple | None = None, prox: tuple | None = None, resume: BranchAndBound | None = None,
                     verbose: bool = False, **options) -> BranchAndBound:
    """Branch on the prices with the Lagrangian bound at every node, to prove `gap` for `objective`.

    prices/objective: the incumbent (e.g. `kkt.solve`'s prices and objective). The root is the
    Lagrangian over the whole price box (`root_evaluations`, from `start` if given); then, best
    bound first, a leaf is split in half at the hour where the prosumers' price copies disagree most
    (among hours wider than `min_width` ¥/MWh), and both children are solved from the leaf's
    multipliers and proximal weights (`node_evaluations`, stopping early once a child reaches the target objective ×
    (1 − gap)), on `workers` processes (default: the cores, at most 2). The children's price copies
    are scored by `evaluate` as candidate incumbents; a better one lowers the objective (and the
    target). The leaves always cover the box, so the smallest leaf bound is a proven bound.
    `time_limit` (seconds of this call) is checked between branchings. resume: a previous result
    (of the same case, day and options) to go on from its leaves instead of solving the root.
    options: those of `LagrangianDual` (price_lower, price_upper, mop, voltage_limits, …).
    """
    import concurrent.futures as cf
    import multiprocessing as mp

    from .._system import available_cpus

    check_market_options(case, day, options.get("mop", "opf"), options.get("voltage_limits", "hard"))
    gap = _validate.number("gap", gap, lo=0, hi=1)
    time_limit = _validate.number("time_limit", time_limit, lo=0, lo_open=True, unit="s", allow_inf=True)
    objective = _validate.number("objective", objective, unit="¥")
    for name, value in (("root_evaluations", root_evaluations), ("node_evaluations", node_evaluations),
                        ("max_nodes", max_nodes)):
        _validate.integer(name, value, lo=1)
    if workers is not None:
        workers = _validate.integer("workers", workers, lo=1)
    t0 = time.perf_counter()
    elapsed = lambda: time.perf_counter() - t0
    lo, hi = kkt.price_box(case, day, options.pop("price_lower", None), options.pop("price_upper", None))
    mop, voltage_limits = options.get("mop", "opf"), options.get("voltage_limits", "hard")
    workers = min(2, available_cpus()) if workers is None else workers
    incumbent = (float(objective), np.array(prices, float))
    if resume is not None:
        if len(resume.states) != len(resume.leaves) or not resume.leaves:
            raise ValueError("resume: the result holds no leaf states to go on from")
        if resume.objective < incumbent[0] and resume.prices is not None:
            incumbent = (resume.objective, np.array(resume.prices, float))
        leaves = [(b, l_lo, l_hi, st) for (b, l_lo, l_hi), st in zip(resume.leaves, resume.states)]
        offset, nodes, history = resume.solve_time, resume.nodes, list(resume.history)
    else:
        offset, nodes = 0.0, 1
        root = _solve_node(case, day, prices, lo, hi, start, prox, root_evaluations,
                           incumbent[0] - gap * abs(incumbent[0]), options)
        leaves = [(root[0], lo, hi, root[1])]  # bound, lo, hi, (β, π, price copies, prox)
        history = [(elapsed(), root[0], incumbent[0])]
    status = "time_limit"
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        while True:
            target = incumbent[0] - gap * abs(incumbent[0])
            leaves.sort(key=lambda leaf: leaf[0])
            if leaves[0][0] >= target:
                status = "optimal"
                break
            if elapsed() >= time_limit:
                break
            if nodes + 2 > max_nodes:
                status = "node_limit"
                break
            bound, l_lo, l_hi, state = leaves.pop(0)
            beta, pi, copies, l_prox = state
            spread = np.abs(copies - copies.mean(axis=0)).max(axis=0)
            spread[l_hi - l_lo <= min_width] = -1.0
            t = int(np.argmax(spread))
            if spread[t] < 0:
                status = "failed: every hour of the weakest leaf is narrower than min_width"
                leaves.append((bound, l_lo, l_hi, state))
                break
            mid = 0.5 * (l_lo[t] + l_hi[t])
            boxes = []
            for side in (0, 1):
                c_lo, c_hi = l_lo.copy(), l_hi.copy()
                (c_hi if side == 0 else c_lo)[t] = mid
                boxes.append((c_lo, c_hi))
            futures = [pool.submit(_solve_node, case, day, incumbent[1], c_lo, c_hi, (beta, pi), l_prox,
                                   node_evaluations, target, options) for c_lo, c_hi in boxes]
            children = []
            for (c_lo, c_hi), fut in zip(boxes, futures):
                try:
                    c_bound, c_state, _ = fut.result()
                except (RuntimeError, ValueError, cf.BrokenExecutor) as err:  # a part failed: report, keep the leaf
                    status = f"failed: {type(err).__name__}: {err}"
                    break
                if not np.all(np.isfinite(c_state[2])):  # the child failed before its first evaluation
                    c_state = state
                else:
                    for score, cand in _candidates(case, day, c_state[2], c_lo, c_hi, mop, voltage_limits):
                        if score < incumbent[0]:
                            incumbent = (score, cand)
                # a child's box is inside its parent's: the parent's bound holds there too
                children.append((max(c_bound, bound), c_lo, c_hi, c_state))
            if len(children) < 2:
                leaves.append((bound, l_lo, l_hi, state))
                break
            leaves += children
            nodes += 2
            history.append((offset + elapsed(), min(leaf[0] for leaf in leaves), incumbent[0]))
            if verbose:
                print(f"branch on hour {t} at {mid:.1f} ¥/MWh: children {[round(x[0], 1) for x in leaves[-2:]]}, "
                      f"bound {history[-1][1]:.2f}, incumbent {incumbent[0]:.2f}, {len(leaves)} leaves "
                      f"({offset + elapsed():.0f} s)", flush=True)
    bound = min(leaf[0] for leaf in leaves)
    objective = incumbent[0]
    return BranchAndBound(bound=bound, objective=objective, gap=(objective - bound) / abs(objective), status=status,
                          nodes=nodes, solve_time=offset + elapsed(), leaves=[(b, l, h) for b, l, h, _ in leaves],
                          history=history, prices=incumbent[1], states=[st for *_, st in leaves])
