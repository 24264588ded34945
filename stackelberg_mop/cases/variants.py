"""Case variants used by the baselines: the line-capacity case of Wang et al. (2024)."""

from __future__ import annotations

import copy

import numpy as np

from .case import Case

#: Wang et al. (2024) limits the branch between (1-based) buses 2 and 3, i.e. pandapower buses 1 and 2
LIMITED_LINE = (1, 2)
#: default limit, MVA: below the branch's peak flow on the reference day (2.13 MVA for the response to
#: the HV tariff, MOP dispatched), so it binds; 1.8 MVA is already infeasible for that response
DEFAULT_LIMIT_MVA = 2.0


def line_limited_case(case: Case, limit_mva: float = DEFAULT_LIMIT_MVA, line: tuple[int, int] = LIMITED_LINE) -> Case:
    """A copy of `case` whose branch `line` (pandapower buses, either order) carries at most `limit_mva`.

    The limit is written as the line's current rating, max_i_ka = S / (√3 · V_n), which the network
    models read (SOCP: the branch's ℓ <= I_max²; LinDistFlow: its apparent flow <= I_max at 1 p.u.
    voltage). The original case is not modified.
    """
    if not limit_mva > 0:
        raise ValueError(f"limit_mva: must be > 0, got {limit_mva}")
    net = copy.deepcopy(case.net)
    a, b = line
    hit = net.line.index[((net.line.from_bus == a) & (net.line.to_bus == b))
                         | ((net.line.from_bus == b) & (net.line.to_bus == a))]
    if len(hit) != 1:
        raise ValueError(f"line: no single line between buses {a} and {b}")
    idx = hit[0]
    vn_kv = float(net.bus.loc[a, "vn_kv"])
    net.line.loc[idx, "max_i_ka"] = limit_mva / (np.sqrt(3) * vn_kv * net.line.loc[idx, "df"]
                                                 * net.line.loc[idx, "parallel"])
    return case.replace(net=net, name=f"{case.name}-line{a}-{b}-{limit_mva:g}MVA")
