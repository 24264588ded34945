"""Write the shipped feeders (``stackelberg_mop/cases/networks/*.json``, pandapower's JSON format) from
MATPOWER's case files, which give the published data with its source.

    python scripts/make_feeders.py PATH/TO/matpower/data

MATPOWER (BSD-3) states each feeder's branch impedances in ohms and loads in kW and converts them at
the end of the file; this script reads the matrices, applies the same conversion (ohms → per unit
on the file's base, kW → MW) and builds the network with pandapower's own converter
(`pandapower.converter.pypower.from_ppc`: lines of 1 km with the branch's ohms, loads in MW), its
buses numbered from 0 as in pandapower's own ``case33bw`` (MATPOWER's bus k is bus k − 1). The
published power flows these files are checked against live in `tests/test_feeders.py`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

FEEDERS = {  # file name → what the network says it is
    "case69": "IEEE 69-bus feeder (Baran & Wu 1989), from MATPOWER data/case69.m",
    "case118zh": "118-bus feeder (Zhang, Fu & Zhang 2007), from MATPOWER data/case118zh.m",
}
OUT = Path(__file__).resolve().parent.parent / "stackelberg_mop" / "cases" / "networks"


def matrix(text: str, name: str) -> np.ndarray:
    """The numeric matrix ``mpc.<name> = [ ... ];`` of a MATPOWER file (comments dropped)."""
    body = re.search(rf"mpc\.{name}\s*=\s*\[(.*?)\];", text, re.DOTALL)
    if body is None:
        raise ValueError(f"no mpc.{name} matrix")
    rows = [line.split("%")[0].strip().rstrip(";") for line in body.group(1).splitlines()]
    return np.array([[float(v) for v in row.split()] for row in rows if row])


def ppc(path: Path) -> dict:
    """The MATPOWER case as a PYPOWER dict, in per unit and MW as MATPOWER's own conversion leaves it."""
    text = path.read_text()
    base_mva = float(re.search(r"mpc\.baseMVA\s*=\s*([0-9.]+)", text).group(1))
    bus, gen, branch = matrix(text, "bus"), matrix(text, "gen"), matrix(text, "branch")
    if "converted to p.u. below" in text:  # r, x in ohms
        z_base = (bus[0, 9] * 1e3) ** 2 / (base_mva * 1e6)
        branch[:, 2:4] /= z_base
    if "converted to MW & MVAr below" in text:  # Pd, Qd in kW
        bus[:, 2:4] /= 1e3
    return {"version": "2", "baseMVA": base_mva, "bus": bus, "gen": gen, "branch": branch}


def main(matpower_data: str) -> None:
    import pandapower as pp
    from pandapower.converter.pypower import from_ppc

    OUT.mkdir(exist_ok=True)
    for name, title in FEEDERS.items():
        net = from_ppc(ppc(Path(matpower_data) / f"{name}.m"), f_hz=50)
        net.name = title
        pp.toolbox.create_continuous_bus_index(net, start=0)  # 0-based, as pandapower's own case33bw
        net.ext_grid["vm_pu"] = 1.0
        pp.runpp(net)
        losses = net.res_line.pl_mw.sum() * 1e3
        print(f"{name}: {len(net.bus)} buses, {int(net.line.in_service.sum())} lines in service "
              f"({len(net.line)} in all), {net.load.p_mw.sum():.3f} MW load; AC power flow: minimum voltage "
              f"{net.res_bus.vm_pu.min():.4f} pu at bus {int(net.res_bus.vm_pu.idxmin())}, losses {losses:.2f} kW")
        pp.to_json(net, str(OUT / f"{name}.json"))


if __name__ == "__main__":
    main(*sys.argv[1:])
