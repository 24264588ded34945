"""A case generator: prosumers and a soft open point placed on any radial feeder, from a seed.

    layout = generate_case("case69.json", prosumers=20, seed=0)        # a case file's JSON layout
    write_case(layout, "my69.json")                                     # then load_case("my69.json")
    stackelberg-mop case --new my69.json --network case69.json --prosumers 20 --seed 0

The feeder is a shipped network file (``case69.json``, ``case118zh.json``, beside the shipped cases in
``networks/``), a pandapower JSON file, or a function of ``pandapower.networks`` (``case33bw``). The
layout written ``extends`` a base case (default ``ieee33-mop``: its tariff, price rules, objective,
voltage limits and reference profiles) and gives its own ``network``, ``prosumers``, ``batteries`` and
``mop``, drawn as the default case is built (MODEL.md), scaled to the feeder:

- the feeder's own loads are scaled (``network.load_scale``) so that its lowest AC voltage at nominal
  load, with no party connected, is `target_v_min` (0.91 p.u. by default; the IEEE 33-bus feeder's
  is 0.913, so it keeps its loads): a large feeder at its published loading (0.87 p.u. on the 118-bus one) cannot keep 0.95
  p.u. with any price, and the game would be about load shedding, not pricing. A feeder already
  above the target keeps its loads (``load_scale`` 1); ``load_scale`` fixes the factor instead.
- `prosumers` distinct buses drawn among the loaded ones; each prosumer's PV capacity is
  ``pv_share`` × the feeder's nominal load / N × U(0.5, 1.5), its shifting cost κ U(2,000, 3,500)
  ¥/(MW²h), 30 % of its fixed load shiftable (the default case's values).
- a share `battery_share` of them (rounded; 0 for none) own a battery of 0.3–0.4 × their PV capacity, for
  3.3–4 hours, with the default case's efficiencies, limits and costs.
- the MOP's `mop_terminals` terminals sit at the feeder's ends (leaf buses) with the lowest voltage
  at nominal load, each rated `mop_share` × the nominal load (on the 33-bus feeder: its four ends,
  as in the default case).

Every draw comes from ``numpy.random.default_rng(seed)``, so a seed gives the same case on every
machine; the layout is checked by building the case before it is returned.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np

from .. import _validate
from .schema import CaseError

#: the default case's battery parameters, per battery
_BATTERY = {"soc_min": 0.1, "soc_max": 0.9, "soc_init": 0.5, "eta_charge": 0.95, "eta_discharge": 0.95,
            "degradation_cny_per_mwh": 20.0, "regularisation_cny_per_mw2h": 1.0}


def _network(network: str | Path, root: Path):
    """(the network's entry in a case file written to folder `root`, the pandapower network, checked
    radial): a .json path as given (relative to the working directory) is named relative to `root`;
    a name not found there is a shipped network; any other string a function of pandapower.networks."""
    from .loader import _network_file, _pandapower_network, network_path
    from .topology import check_radial

    _validate.instance("network", network, (str, Path), "a network file (.json) or a pandapower.networks name")
    path = Path(network)
    if path.is_dir():
        raise ValueError(f"network: {str(network)!r} is a directory; a network file (.json) is meant")
    if path.suffix != ".json":
        entry, net = {"pandapower_case": str(network)}, _pandapower_network(str(network))
    elif path.is_file():
        entry, net = {"file": os.path.relpath(path.resolve(), root.resolve())}, _network_file(str(path.resolve()))
    else:
        entry, net = {"file": str(network)}, _network_file(network_path(str(network), root))
    try:
        check_radial(net)
    except CaseError as err:
        raise ValueError(f"network: {str(network)!r}: {err}") from None
    return entry, net


def _solved_feeder(net, scale: float):
    """A copy of the feeder with its loads × `scale` and nothing else connected, its AC power flow
    solved; None where it does not converge (a load the feeder cannot carry)."""
    import pandapower as pp

    net = copy.deepcopy(net)
    net.load["scaling"] = net.load["scaling"] * scale
    net.sgen.drop(net.sgen.index, inplace=True)
    net.gen.drop(net.gen.index, inplace=True)
    try:
        pp.runpp(net, numba=False)
    except pp.LoadflowNotConverged:
        return None
    return net


def _minimum_voltage(net, scale: float) -> float:
    """The feeder's lowest AC voltage (p.u.) at `scale` (`_solved_feeder`); 0 where it does not converge."""
    solved = _solved_feeder(net, scale)
    return 0.0 if solved is None else float(solved.res_bus.vm_pu.min())


def _load_scale(net, target: float) -> float:
    """The largest factor on the 3-digit grid (k / 1000, k <= 1000) on the feeder's loads whose lowest
    voltage is >= `target` (the voltage falls as the load grows); ValueError where none is."""
    lo, hi = 0, 1000  # invariant: lo / 1000 keeps the target (0: no load), hi / 1000 may not
    if _minimum_voltage(net, 1.0) >= target:
        return 1.0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _minimum_voltage(net, mid / 1000) >= target else (lo, mid)
    if lo == 0:
        raise ValueError(f"target_v_min: {target:g} p.u. is not reached even with the feeder's loads × 0.001 "
                         f"(its no-load voltage is the slack's); give a lower target or --load-scale")
    return lo / 1000


def _leaves(net) -> list[int]:
    """The buses at the feeder's ends: in service, touched by exactly one in-service line."""
    lines = net.line[net.line.in_service]
    ends = np.concatenate([lines.from_bus.to_numpy(), lines.to_bus.to_numpy()])
    buses, count = np.unique(ends, return_counts=True)
    root = int(net.ext_grid.bus.iloc[0])
    return [int(b) for b, c in zip(buses, count) if c == 1 and int(b) != root]


def _base(base: str, root: Path) -> str:
    """The `extends` entry of a case file written to `root`: a shipped case's name as it is, a case
    file path (relative to the working directory) named relative to `root`."""
    from .loader import available_cases

    _validate.instance("base", base, (str, Path), "a shipped case name or a case file path")
    if str(base).endswith(".json"):
        if not Path(base).is_file():
            raise ValueError(f"base: {str(base)!r}: no such case file")
        return os.path.relpath(Path(base).resolve(), root.resolve())
    if base not in available_cases():
        raise ValueError(f"base: {base!r} is neither a shipped case ({available_cases()}) nor a .json path")
    return str(base)


def generate_case(network: str | Path = "case69.json", prosumers: int = 20, seed: int = 0, *,
                  battery_share: float = 0.4, pv_share: float = 0.6, mop_terminals: int = 4,
                  mop_share: float = 0.25, target_v_min: float = 0.91, load_scale: float | None = None,
                  base: str = "ieee33-mop", name: str | None = None, root: str | Path = ".") -> dict:
    """A case file's layout (a dict, see the module's docstring) for `prosumers` prosumers and an MOP
    of `mop_terminals` terminals on `network`, drawn with `seed`. `root`: the folder the case file
    will be written to (`write_case` checks it): a network or base file is named relative to it. The
    base's own sections that name buses (``p2p``, ``dsa``, ``generators``) must fit the feeder too."""
    from .loader import case_from_dict

    n = _validate.integer("prosumers", prosumers, lo=1)
    seed = _validate.integer("seed", seed, lo=0)
    k = _validate.integer("mop_terminals", mop_terminals, lo=0)
    battery_share = _validate.number("battery_share", battery_share, lo=0, hi=1)
    pv_share = _validate.number("pv_share", pv_share, lo=0, lo_open=True)
    mop_share = _validate.number("mop_share", mop_share, lo=0, lo_open=True)
    target_v_min = _validate.number("target_v_min", target_v_min, lo=0, lo_open=True, hi=1)
    if name is not None:
        _validate.instance("name", name, str, "the case's name")
        if not name.strip():
            raise ValueError("name: expected a non-empty name, got an empty string")
    root = Path(_validate.instance("root", root, (str, Path), "a folder"))
    extends = _base(base, root)
    entry, net = _network(network, root)
    scale = _load_scale(net, target_v_min) if load_scale is None else _validate.number(
        "load_scale", load_scale, lo=0, lo_open=True)
    rng = np.random.default_rng(seed)

    feeder_root = int(net.ext_grid.bus.iloc[0])
    loads = net.load[net.load.in_service & net.bus.in_service.reindex(net.load.bus).to_numpy()]
    p_bus = (loads.p_mw * loads.scaling * scale).groupby(loads.bus).sum()
    loaded = np.sort(p_bus.index[(p_bus > 0) & (p_bus.index != feeder_root)].to_numpy().astype(int))
    if n > loaded.size:
        raise ValueError(f"prosumers: the feeder has {loaded.size} loaded buses below its substation, fewer than "
                         f"{n} prosumers")
    total = float(p_bus.sum())
    bus = np.sort(rng.choice(loaded, size=n, replace=False))
    pv = pv_share * total / n * rng.uniform(0.5, 1.5, n)
    kappa = rng.uniform(2000, 3500, n)
    owners = np.sort(rng.choice(n, size=round(battery_share * n), replace=False))
    power = pv[owners] * rng.uniform(0.3, 0.4, owners.size)
    hours = rng.uniform(3.3, 4.0, owners.size)

    leaves = _leaves(net)
    if k > len(leaves):
        raise ValueError(f"mop_terminals: the feeder has {len(leaves)} ends, fewer than {k} terminals")
    ends = []
    if k:
        flow = _solved_feeder(net, scale)
        if flow is None:
            raise ValueError(f"load_scale: the feeder's power flow does not converge with its loads × {scale:g}")
        ends = sorted(leaves, key=lambda b: (flow.res_bus.vm_pu[b], b))[:k]
    r3 = lambda x: [round(float(v), 3) for v in np.atleast_1d(x)]
    feeder = Path(str(network)).name
    how = (f"the feeder's loads × {scale:g}, its lowest voltage at nominal load then >= {target_v_min:g} p.u."
           if load_scale is None and scale < 1 else f"the feeder's loads × {scale:g}")
    layout = {
        "name": name or f"{Path(str(network)).stem}-{n}p-s{seed}",
        "description": (f"Generated by stackelberg_mop.cases.generate_case: {n} prosumers ({owners.size} with a battery) "
                        f"and a {k}-terminal MOP on {feeder}, seed {seed}; {how}; the rest from {base}."),
        "extends": extends,
        "network": {**entry, "s_base_mva": 10.0, "load_scale": scale},
        "prosumers": {"bus": [int(b) for b in bus], "pv_capacity_mw": r3(pv), "kappa_cny_per_mw2h": r3(kappa),
                      "shift_fraction": [0.3] * n},
        "batteries": {"owner_bus": [int(bus[i]) for i in owners], "power_mw": r3(power),
                      "capacity_mwh": r3(power * hours), **{key: [v] * owners.size for key, v in _BATTERY.items()}},
        "mop": {"bus": [int(b) for b in ends], "s_max_mva": r3([mop_share * total] * k), "loss_coefficient": [0.02] * k},
    }
    case_from_dict(layout, root=root)  # every field checked before the layout is handed out
    return layout


def check_output(path: str | Path, overwrite: bool = False) -> Path:
    """The case file `write_case` may write: a .json path that is not a folder, whose parent is not a
    file, and that does not exist unless `overwrite`; ValueError naming it otherwise (nothing written)."""
    _validate.flag("overwrite", overwrite)
    out = _validate.writable_path("path", path)
    if out.suffix != ".json":
        raise ValueError(f"path: a case file ends in .json, got {str(path)!r}")
    if out.is_dir():
        raise ValueError(f"path: {str(out)!r} is a directory; a case file is meant")
    if out.exists() and not overwrite:
        raise ValueError(f"path: {str(out)!r} exists (pass overwrite=True, or --force, to replace it)")
    return out


def _dumps(value, indent: str = "") -> str:
    """JSON with a case file's layout: objects one key per line, lists of numbers on one line."""
    if isinstance(value, dict):
        inner = indent + "  "
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}" if items else "{}"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def write_case(layout: dict, path: str | Path, overwrite: bool = False) -> Path:
    """Write a case layout (`generate_case`, generated with ``root`` = this file's folder) as a JSON
    case file; an existing file only with `overwrite`. The layout is checked as the file will be read
    (its relative network and base files from the file's folder) before anything is written."""
    from .loader import case_from_dict

    out = check_output(path, overwrite)
    _validate.instance("layout", layout, dict, "a case layout (a dict, generate_case)")
    try:
        text = _dumps(layout) + "\n"
    except (TypeError, ValueError) as err:
        raise ValueError(f"layout: not a JSON case layout ({err})") from None
    case_from_dict(json.loads(text), root=out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
