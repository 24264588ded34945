"""Reading a case file: the JSON layout (units in the key names), `extends`, and the shipped cases."""

from __future__ import annotations

import copy
import functools
import json
import os
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from .. import _validate
from .case import Case
from .fields import field_number, field_values
from .parties import MOP, Batteries, DSAMarket, Generators, Grid, Prosumers, Sharing
from .rules import Objective, PriceRules, Tariff
from .schema import SCHEMA_SUFFIX, CaseError, check_layout


# --- loading ------------------------------------------------------------------------------------
def case_from_dict(spec: dict, net=None, root: str | Path | None = None) -> Case:
    """Build a `Case` from the JSON layout of ``cases/ieee33-mop.json`` (units in the key names).

    The network is ``network.pandapower_case`` (a function of ``pandapower.networks``) or
    ``network.file`` (a network saved by ``pandapower.to_json``, a path relative to `root`: the case
    file's folder; default the working directory); ``net`` overrides both.
    Batteries name their owner by bus (``owner_bus``). The sections ``batteries``, ``mop``,
    ``generators`` (DGs: ``bus``, ``p_min_mw`` (default 0), ``p_max_mw``, ``q_min_mvar``, ``q_max_mvar``,
    ``cost_quadratic_cny_per_mw2h``, ``cost_linear_cny_per_mwh``, ``cost_fixed_cny_per_h`` (default 0)) and
    ``grid`` (``import_limit_mw``, ``export_limit_mw``, absent = none) and ``p2p`` (the sharing
    platform: ``pairs_bus`` [[bus, bus], ...], ``caps_mw`` one per pair, ``trade_cost_cny_per_mw2h``,
    default 10), ``dsa`` (Wang et al.'s (2024) substation areas, `DSAMarket`: ``comfort_cost_cny_per_mwh``,
    ``import_max_mw``, ``export_max_mw``, ``curtailable``, ``admm_penalty_cny_per_mw2h``; needs ``p2p``)
    are optional. ``network.load_scale`` (default 1) scales the network's own loads. ``price_rules`` may give each hour's own
    bounds, ``lower_cny_per_mwh`` / ``upper_cny_per_mwh``: a number, 24 numbers, or "sell" / "buy"
    (the day's HV tariff). ``"extends": "<shipped case>"`` or ``"extends": "<path>.json"`` (relative
    to `root`) starts from that case's layout and replaces the top-level sections given
    (``cases/ieee33-mop-flatcap.json``). A missing section or
    field, or one of the wrong type, raises `CaseError` naming it.
    """
    if not isinstance(spec, dict):
        raise CaseError(f"the case: expected a JSON object of sections, got {type(spec).__name__}")
    spec = _json_values(spec)
    root = Path.cwd() if root is None else Path(root)
    if "extends" in spec:
        check_layout(spec, partial=True)  # the file's own sections first: an error names what the user wrote
    spec = _resolve_extends(_absolute_network(spec, root), root)
    check_layout(spec)
    try:
        optional = ("batteries", "mop", "generators", "grid", "p2p", "dsa")
        sections = {k: _section(spec, k, optional=k in optional)
                    for k in ("network", "prosumers", "batteries", "mop", "tariff", "price_rules", "objective",
                              "voltage", "reference_profiles", *optional[2:])}
        pros, bat, mop = sections["prosumers"], sections["batteries"], sections["mop"]
        shift = pros["shift_fraction"]
        kappa = pros.get("kappa_cny_per_mw2h")
        if kappa is None and isinstance(shift, list) and not any(shift):  # no shiftable load: κ unused
            kappa = [1.0] * len(shift)
        optional = {"wind_capacity": "wind_capacity_mw", "fixed_load_peak": "fixed_load_peak_mw",
                    "elastic_max": "elastic_max_mw", "utility_quadratic": "utility_quadratic_cny_per_mw2h",
                    "utility_linear": "utility_linear_cny_per_mwh", "bid_min": "bid_min_mw",
                    "bid_max": "bid_max_mw", "curtailable": "curtailable"}
        prosumers = Prosumers(bus=pros["bus"], pv_capacity=pros["pv_capacity_mw"],
                              kappa=kappa if kappa is not None else pros["kappa_cny_per_mw2h"], shift_fraction=shift,
                              **{k: pros.get(key) for k, key in optional.items()})
        owner_bus = field_values("batteries.owner_bus", bat.get("owner_bus", []), int)
        unknown = [int(b) for b in owner_bus if b not in prosumers.bus]
        if unknown:
            raise CaseError(f"batteries.owner_bus: no prosumer at bus {unknown}")
        owner = [int(np.flatnonzero(prosumers.bus == b)[0]) for b in owner_bus]
        power = bat.get("power_mw", [])
        batteries = Batteries(
            owner=owner, p_charge_max=bat.get("p_charge_max_mw", power),
            p_discharge_max=bat.get("p_discharge_max_mw", power), capacity=bat.get("capacity_mwh", []),
            soc_min=bat.get("soc_min", []), soc_max=bat.get("soc_max", []), soc_init=bat.get("soc_init", []),
            eta_charge=bat.get("eta_charge", []), eta_discharge=bat.get("eta_discharge", []),
            degradation_cost=bat.get("degradation_cny_per_mwh", []),
            regularisation=bat.get("regularisation_cny_per_mw2h", []))
        tar = sections["tariff"]
        tariff = Tariff(buy_price=tar["buy_price_cny_per_mwh"], sell_price=tar["sell_price_cny_per_mwh"])
        rules = sections["price_rules"]
        cap = rules["mean_cap"]
        cap = float(np.mean(tariff.buy_price)) if cap == "mean_buy_price" else cap
        obj, volt, ref = sections["objective"], sections["voltage"], sections["reference_profiles"]
        objective = Objective(obj["omega_economic"], obj["omega_voltage"], obj["voltage_cost_cny_per_pu"],
                              obj["loss_cost_cny_per_mwh"])
        mop = MOP(bus=mop.get("bus", []), s_max=mop.get("s_max_mva", []), loss_coefficient=mop.get("loss_coefficient", []))
        gen, grid = sections["generators"], sections["grid"]
        n_gen = len(field_values("generators.bus", gen.get("bus", []), int))
        generators = Generators(
            bus=gen.get("bus", []), p_min=gen.get("p_min_mw", [0.0] * n_gen),
            p_max=gen.get("p_max_mw", []), q_min=gen.get("q_min_mvar", []), q_max=gen.get("q_max_mvar", []),
            cost_quadratic=gen.get("cost_quadratic_cny_per_mw2h", []),
            cost_linear=gen.get("cost_linear_cny_per_mwh", []),
            cost_fixed=gen.get("cost_fixed_cny_per_h", [0.0] * n_gen))
        grid = Grid(import_limit=grid.get("import_limit_mw"), export_limit=grid.get("export_limit_mw"))
        p2p = sections["p2p"]
        sharing = None if "p2p" not in spec else Sharing.from_pairs(prosumers.bus, p2p["pairs_bus"], p2p["caps_mw"],
                                                         p2p.get("trade_cost_cny_per_mw2h", 10.0))
        dsa = sections["dsa"]
        dsa = None if "dsa" not in spec else DSAMarket(
            comfort_cost=dsa["comfort_cost_cny_per_mwh"], import_max=dsa["import_max_mw"],
            export_max=dsa["export_max_mw"], curtailable=dsa.get("curtailable", [False] * len(prosumers)),
            admm_penalty=dsa["admm_penalty_cny_per_mw2h"])
        price_rules = PriceRules(rules["price_min_cny_per_mwh"], rules["price_max_cny_per_mwh"], cap,
                                 lower=rules.get("lower_cny_per_mwh"), upper=rules.get("upper_cny_per_mwh"))
        profiles = {f"reference_{k}": field_values(f"reference_profiles.{k}", ref[k]) for k in ("load", "pv")}
        if "wind" in ref:
            profiles["reference_wind"] = field_values("reference_profiles.wind", ref["wind"])
        for k in ("pv", "wind"):  # shares of an installed capacity
            share = profiles.get(f"reference_{k}")
            if share is not None and (np.any(share < 0) or np.any(share > 1)):
                raise CaseError(f"reference_profiles.{k}: shares of the capacity lie in [0, 1], got max "
                                f"{share.max():g}, min {share.min():g}")
        limits = {f"v_{k}": field_number(f"voltage.v_{k}_pu", volt[f"v_{k}_pu"]) for k in ("min", "max", "slack")}
        s_base = field_number("network.s_base_mva", sections["network"].get("s_base_mva", 10.0))
        load_scale = field_number("network.load_scale", sections["network"].get("load_scale", 1.0), lo=0)
        if net is None:  # last: the other fields are checked without building the network
            network = sections["network"]
            net = (_network_file(network["file"]) if network.get("file") is not None
                   else _pandapower_network(network.get("pandapower_case")))
        if load_scale != 1.0:  # the network's own loads scaled (0: a feeder that carries only the case's parties)
            net = copy.deepcopy(net)
            net.load["scaling"] = net.load["scaling"] * load_scale
        return Case(name=spec.get("name"), net=net, prosumers=prosumers, batteries=batteries, mop=mop, tariff=tariff,
                    price_rules=price_rules, objective=objective, generators=generators, grid=grid, sharing=sharing,
                    dsa=dsa, s_base=s_base,
                    **profiles, **limits)
    except _MissingField as err:
        raise CaseError(f"{err.args[0]}: missing field {err.args[1]!r}") from None


class _MissingField(KeyError):
    """A required key of a section: (section, key)."""


class _Section(dict):
    """A section of a case file whose missing keys raise `_MissingField` naming the section."""

    def __init__(self, name: str, data: dict):
        super().__init__(data)
        self.name = name

    def __missing__(self, key):
        raise _MissingField(self.name, key)


def _section(spec: dict, key: str, optional: bool = False) -> _Section:
    if key not in spec:
        if optional:
            return _Section(key, {})
        raise CaseError(f"missing section {key!r}")
    if not isinstance(spec[key], dict):
        raise CaseError(f"{key}: expected a JSON object of fields, got {type(spec[key]).__name__}")
    return _Section(key, spec[key])


def _pandapower_network(name):
    """A fresh copy of the feeder ``pandapower.networks.<name>()``; CaseError naming the field for an
    unknown name. Built once per process (pandapower takes ~1.4 s for case33bw, a copy ~0.05 s)."""
    import pandapower.networks as pn

    if not isinstance(name, str) or not name.isidentifier() or not callable(getattr(pn, name, None)):
        raise CaseError(f"network.pandapower_case: {name!r} is not a network of pandapower.networks "
                        "(e.g. 'case33bw')")
    return copy.deepcopy(_built_network(name))


@functools.lru_cache(maxsize=8)
def _built_network(name: str):
    import pandapower.networks as pn

    try:
        return getattr(pn, name)()
    except TypeError as err:
        raise CaseError(f"network.pandapower_case: {name!r} could not be built without arguments ({err})") from None


def _network_file(path: str):
    """A fresh copy of the pandapower network saved at `path` (resolved by `network_path`); CaseError naming the
    field for a missing file or one that is not a pandapower network. Read once per process and
    file version. The file is trusted input: pandapower's JSON names the classes it rebuilds."""
    file = Path(path)
    if not file.is_file():
        raise CaseError(f"network.file: {path!r}: " + ("is a directory" if file.is_dir() else "no such file"))
    return copy.deepcopy(_read_network(str(file.resolve()), file.stat().st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _read_network(path: str, version: int):
    import pandapower as pp

    try:
        net = pp.from_json(path)
    except Exception as err:  # noqa: BLE001 - pandapower raises many kinds for a file that is not its JSON
        raise CaseError(f"network.file: {path!r} is not a pandapower network saved by pandapower.to_json "
                        f"({type(err).__name__}: {err})") from None
    if not hasattr(net, "bus") or not hasattr(net, "line"):
        raise CaseError(f"network.file: {path!r} is not a pandapower network saved by pandapower.to_json")
    return net


def network_path(file: str, root: Path) -> str:
    """The network file a case file names: `file` itself if absolute, else relative to `root` (the
    case file's folder), else a shipped network of that name (``networks/``: case69.json, ...);
    CaseError naming the field where none exists."""
    path = Path(file)
    if path.is_absolute():
        return str(path)
    for where in (Path(os.path.normpath(Path(root) / path)), SHIPPED / "networks" / path):
        if where.exists():  # normpath: "../x.json" from a folder not made yet
            return str(where.resolve())
    raise CaseError(f"network.file: {file!r}: no such file relative to {str(root)!r}, and no shipped network of "
                    f"that name ({shipped_networks()})")


def shipped_networks() -> list[str]:
    """The network files shipped with the package (``cases/networks/``), by file name."""
    return sorted(p.name for p in (SHIPPED / "networks").glob("*.json"))


def _absolute_network(spec: dict, root: Path) -> dict:
    """`spec` with a relative ``network.file`` resolved (`network_path`) against `root`, its case
    file's folder, so that it still names the same file once another file extends this one."""
    network = spec.get("network")
    if isinstance(network, dict) and isinstance(network.get("file"), str):
        return {**spec, "network": {**network, "file": network_path(network["file"], root)}}
    return spec


def _resolve_extends(spec: dict, root: Path, seen: tuple = ()) -> dict:
    """The layout with its ``extends`` chain applied: top-level sections of `spec` replace the parent's.
    The parent is a shipped case by name or a case file by path (``.json``, relative to `root`)."""
    parent = spec.get("extends")
    if parent is None:
        return spec
    if parent.endswith(".json"):
        path = (root / parent).resolve()
        key, where = str(path), path.parent
        if key in seen:
            raise CaseError(f"extends: {parent!r} closes a cycle of files that extend each other")
        if not path.is_file():
            why = "is a directory, not a case file" if path.is_dir() else "no such case file"
            raise CaseError(f"extends: {parent!r}: {why} (looked at {str(path)!r})")
        try:
            base = json.loads(path.read_text(), object_pairs_hook=_unique_keys)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CaseError(f"extends: {parent!r} is not a JSON case file ({err})") from None
        except CaseError as err:
            raise CaseError(f"extends: {parent!r}: {err}") from None
        try:
            check_layout(base, partial="extends" in base)
        except CaseError as err:
            raise CaseError(f"extends: {parent!r}: {err}") from None
    else:
        if parent in RENAMED:
            warnings.warn(f"extends: case {parent!r} is now called {RENAMED[parent]!r}", DeprecationWarning,
                          stacklevel=3)
            parent = RENAMED[parent]
        if parent in seen or parent not in available_cases():
            why = "extends itself" if parent in seen else f"is neither a shipped case ({available_cases()}) nor a .json path"
            raise CaseError(f"extends: {parent!r}, which {why}")
        key, where = parent, SHIPPED
        base = json.loads(resources.files(__package__).joinpath(f"{parent}.json").read_text())
    try:
        base = _absolute_network(base, where)
    except CaseError as err:
        raise CaseError(f"extends: {parent!r}: {err}") from None
    base = _resolve_extends(base, where, seen + (key,))
    return {**base, **{k: v for k, v in spec.items() if k != "extends"}}


def _json_values(value):
    """A layout built in Python with NumPy values (arrays, numpy integers, floats and booleans) as the
    JSON types a file would hold, so that the schema judges the numbers, not their Python class."""
    if isinstance(value, dict):
        return {k: _json_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_values(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unique_keys(pairs: list) -> dict:
    """A JSON object whose keys are all different: a key given twice (the second silently winning in
    plain JSON) is a CaseError naming it."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise CaseError(f"{key}: given twice in one JSON object (which value is meant?)")
        seen[key] = value
    return seen


#: the folder of the shipped cases (and of their network files, ``networks/``)
SHIPPED = Path(str(resources.files(__package__)))
#: the shipped cases' former names (the source papers' index numbers) → their names
RENAMED = {"seed001-dsa": "substation-areas", "seed003-p2p": "p2p-sharing"}


def available_cases() -> list[str]:
    """Names of the cases shipped with the package."""
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir()
                  if p.name.endswith(".json") and not p.name.endswith(SCHEMA_SUFFIX))


def load_case(name: str = "ieee33-mop") -> Case:
    """Load a shipped case by name, or a case JSON file by path. A file that does not exist, is not
    valid JSON or holds a bad field raises `CaseError` naming the file (and the field)."""
    if not isinstance(name, str | Path):
        raise CaseError(f"case name: expected a shipped case name or a .json path, got {name!r}")
    path, root = Path(name), SHIPPED
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise CaseError(f"case file {str(path)!r}: " + ("is a directory, not a file" if path.is_dir() else "no such file"))
        try:
            where, text, root = str(path), path.read_text(), path.parent
        except UnicodeDecodeError:
            raise CaseError(f"case file {str(path)!r}: not a text (UTF-8) file") from None
    else:
        if name in RENAMED:
            warnings.warn(f"case {name!r} is now called {RENAMED[name]!r}", DeprecationWarning, stacklevel=2)
            name = RENAMED[name]
        if name not in available_cases():
            raise CaseError(f"case name: unknown case {name!r}; shipped cases are {available_cases()} "
                            "(or pass the path of a .json file)")
        where, text = f"{name}.json", resources.files(__package__).joinpath(f"{name}.json").read_text()
    try:
        spec = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise CaseError(f"case file {where!r}: not valid JSON: {err}") from None
    except CaseError as err:
        raise CaseError(f"case file {where!r}: {err}") from None
    try:
        return case_from_dict(spec, root=root)
    except CaseError as err:
        raise CaseError(f"case file {where!r}: {err}") from None


def as_case(case, name: str = "case") -> Case:
    """A `Case` given as itself or as a shipped name / case file path (`load_case`)."""
    if isinstance(case, Case):
        return case
    _validate.instance(name, case, (str, Path), "a Case, a shipped case name or a case file path (load_case)")
    return load_case(case)
