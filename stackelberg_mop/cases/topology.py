"""The network check of every case: a radial tree of in-service lines below one substation."""

from __future__ import annotations

from .schema import CaseError


def check_radial(net) -> None:
    """A case network must be a tree of in-service lines rooted at its single ext_grid."""
    if net is None or not hasattr(net, "bus"):
        raise CaseError("case.net: expected a pandapower network")
    if len(net.ext_grid[net.ext_grid.in_service]) != 1:
        raise CaseError(f"case.net: needs exactly one in-service ext_grid (substation), "
                        f"found {int(net.ext_grid.in_service.sum())}")
    if len(net.trafo[net.trafo.in_service]) or len(net.trafo3w[net.trafo3w.in_service]):
        raise CaseError("case.net: transformers are not supported; model the feeder below the substation")
    buses = net.bus.index[net.bus.in_service]
    lines = net.line[net.line.in_service]
    if len(lines) != len(buses) - 1:
        kind = "meshed" if len(lines) > len(buses) - 1 else "disconnected"
        raise CaseError(f"case.net: the network is {kind}: {len(lines)} in-service lines for "
                        f"{len(buses)} buses (a radial feeder has buses - 1)")
    parent = {int(b): int(b) for b in buses}

    def root(b):
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    for f, t in zip(lines.from_bus.to_numpy(), lines.to_bus.to_numpy()):
        if int(f) not in parent or int(t) not in parent:
            raise CaseError(f"case.net: line {f}-{t} ends at an out-of-service or unknown bus")
        a, b = root(int(f)), root(int(t))
        if a == b:
            raise CaseError(f"case.net: the network is meshed: line {f}-{t} closes a loop")
        parent[a] = b
