"""SCIP's set-up for every KKT model: parameters, threads and the Ipopt options of its NLP heuristics.

What was tried and what each setting bought is in the lab notebook.
"""

from __future__ import annotations

from ..._system import THREADS_ENV, available_cpus, threads_from_env

#: the default number of SCIP threads is the machine's cores up to this. One: under the paper's price
#: rule SCIP's concurrent solve on two threads is slower (the reference day's 1e-4 not reached in
#: 300 s, against ~130 s on one thread); it helped the flat-cap variant
MAX_DEFAULT_THREADS = 1
#: THREADS_ENV (STACKELBERG_MOP_THREADS, `_system`) sets the default number of SCIP threads instead (a
#: positive integer): for processes that share the machine, e.g. the benchmark's workers (`benchmark.run`)
__all__ = ["MAX_DEFAULT_THREADS", "THREADS_ENV", "default_threads", "new_scip_model"]
#: Ipopt options for SCIP's NLP heuristics (subnlp, MPEC, ...): MUMPS ordered with AMD instead of
#: METIS. METIS corrupts the heap in the PySCIPOpt wheel (scipopt/scip#211, PySCIPOpt#1234): the
#: process aborts ("free(): invalid pointer"), which no Python code can catch. The MPEC heuristic hit
#: it within 3 s on the KKT master with indicator constraints; with AMD the same runs go through, and
#: the heuristics stay on (switched off, the reference day's incumbent was 3 ¥ worse)
IPOPT_OPTIONS_FILE = "ipopt.opt"
#: SCIP parameters of the models: few separation rounds (root only) and cheap strong branching give
#: many more nodes per second; best-bound node selection, because the incumbent comes from the local
#: search and only the bound is left to prove; no restart after root fixings (SCIP's restart presolves
#: again and re-solves the root: 1e-4 sooner on each of six days without it). Every model also gets
#: the Ipopt options file first (`IPOPT_OPTIONS_FILE`), whatever the caller passes
SCIP_PARAMS: dict = {"separating/maxroundsroot": 5, "separating/maxrounds": 0,
                     "branching/relpscost/maxreliable": 2.0, "branching/relpscost/sbiterquot": 0.2,
                     "nodeselection/bfs/stdpriority": 1_000_000, "presolving/maxrestarts": 0}


def ipopt_params() -> dict:
    """The SCIP parameter that points Ipopt at the package's options file."""
    from importlib import resources

    return {"nlpi/ipopt/optfile": str(resources.files("stackelberg_mop.bilevel.kkt") / IPOPT_OPTIONS_FILE)}


def default_threads() -> int:
    """Threads for SCIP when the caller does not say: `THREADS_ENV` if set, else the CPUs this
    process may use, at most `MAX_DEFAULT_THREADS`."""
    env = threads_from_env()
    return env if env is not None else max(1, min(MAX_DEFAULT_THREADS, available_cpus()))


def new_scip_model(name: str, threads: int, verbose: bool, params: dict | None):
    """A PySCIPOpt model with the package's settings: `threads` (SCIP's deterministic concurrent
    solve above one), feasibility tolerance 1e-7, the Ipopt options, then `params`."""
    from pyscipopt import Model

    m = Model(name)
    if not verbose:
        m.hideOutput()
    m.setParam("parallel/maxnthreads", threads)
    m.setParam("lp/threads", threads)
    m.setParam("parallel/mode", 1)  # deterministic concurrent solve: as fast here, and reproducible
    m.setParam("numerics/feastol", 1e-7)
    for key, value in {**ipopt_params(), **(params or {})}.items():
        m.setParam(key, value)
    return m


def scip_status(m) -> str:
    return str(m.getStatus())
